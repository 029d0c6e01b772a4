"""Probabilistic knowledge transfer (Passalis & Tefas 2018, arXiv 1803.10837): turn each net's pooled
features into a distribution over the batch by cosine similarity, and match the student's to the teacher's.

    u_i = f_i / (||f_i|| + eps);  K_ij = (u_i . u_j + 1) / 2;  P_ij = K_ij / sum_j K_ij   (rows of the batch)
    pkt = mean over i AND j of P_t,ij * log((P_t,ij + eps) / (P_s,ij + eps))      (a sum / B^2)
    loss = ce_weight * CE + beta * pkt

Equal to CRD's benchmark (RepDistiller distiller_zoo/PKT.py, the authors' code; mdistiller's PKT is the
same), value and gradient: its `torch.mean` over the B x B matrix is why beta = 30000 there. The diagonal
(i = j) stays in; eps = 1e-7.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from paperlab.lab.distillers.base import Distiller, Params, register

EPS = 1e-7


def conditional(f: torch.Tensor) -> torch.Tensor:
    f = f.flatten(1)
    unit = f / (f.norm(dim=1, keepdim=True) + EPS)
    k = (unit @ unit.T + 1) / 2
    return k / k.sum(1, keepdim=True)


def pkt_loss(fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
    ps, pt = conditional(fs), conditional(ft)
    return (pt * torch.log((pt + EPS) / (ps + EPS))).mean()


@register("pkt")
class PKT(Distiller):
    class Params(Params):
        beta: float = Field(30000.0, ge=0)
        ce_weight: float = Field(1.0, ge=0)

    needs = frozenset({"pooled"})

    def forward(self, s, t, b):
        pkt = pkt_loss(s.pooled, t.pooled)
        ce = F.cross_entropy(s.logits, b.y)
        return self.p.ce_weight * ce + self.p.beta * pkt, {"ce": ce, "pkt": pkt}
