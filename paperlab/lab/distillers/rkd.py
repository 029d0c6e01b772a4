"""Relational KD (Park et al. 2019, arXiv 1904.05068): match the geometry of the batch, not the points:
pairwise distances (scaled by their mean) and the angles of triplets, in the pooled feature space.

    distance: psi_D(i, j) = ||e_i - e_j|| / mu, mu = mean over i != j of ||e_i - e_j||
    angle:    psi_A(i, j, k) = < (e_i - e_j)/||.||, (e_k - e_j)/||.|| >
    rkd = w_d * huber(psi_D^s, psi_D^t) + w_a * huber(psi_A^s, psi_A^t)   (smooth-L1, means)
    loss = ce_weight * CE + beta * rkd

The paper's weights w_d = 25, w_a = 50; CRD's benchmark runs it with beta = 1, CE weight 1. The paper's
distances are of the embeddings as they are (no normalisation before).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from paperlab.lab.distillers.base import Distiller, Params, register


def distances(e: torch.Tensor) -> torch.Tensor:
    d = torch.cdist(e, e)
    off = ~torch.eye(len(e), dtype=torch.bool, device=e.device)
    return d / d[off].mean().clamp_min(1e-12)


def angles(e: torch.Tensor) -> torch.Tensor:
    diff = F.normalize(e[None, :, :] - e[:, None, :], dim=2)  # diff[j, i] = unit(e_i - e_j)
    return torch.bmm(diff, diff.transpose(1, 2)).flatten()    # [j, i, k] = <unit(e_i - e_j), unit(e_k - e_j)>


def rkd_terms(es: torch.Tensor, et: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    es, et = es.flatten(1), et.flatten(1)
    with torch.no_grad():
        dt, at = distances(et), angles(et)
    return F.smooth_l1_loss(distances(es), dt), F.smooth_l1_loss(angles(es), at)


@register("rkd")
class RKD(Distiller):
    class Params(Params):
        distance_weight: float = Field(25.0, ge=0)
        angle_weight: float = Field(50.0, ge=0)
        beta: float = Field(1.0, ge=0)
        ce_weight: float = Field(1.0, ge=0)

    needs = frozenset({"pooled"})

    def forward(self, s, t, b):
        dist, angle = rkd_terms(s.pooled, t.pooled)
        rkd = self.p.distance_weight * dist + self.p.angle_weight * angle
        ce = F.cross_entropy(s.logits, b.y)
        return self.p.ce_weight * ce + self.p.beta * rkd, {"ce": ce, "distance": dist, "angle": angle}
