"""DIST (Huang et al. 2022, arXiv 2205.10536): match the teacher's class probabilities by correlation, not by
exact values, within each sample (inter-class) and within each class across the batch (intra-class).

    p = softmax(z / T);  d(a, b) = 1 - pearson(a, b)
    inter = T^2 * mean over samples i of d(p_s[i, :], p_t[i, :])
    intra = T^2 * mean over classes c of d(p_s[:, c], p_t[:, c])
    loss  = ce_weight * CE + beta * inter + gamma * intra

The paper's CIFAR-100 setting is beta = gamma = 2 and T = 4 (section 4.1); its ImageNet one beta = gamma = 1,
T = 1. Pearson's r here centres and divides by the norms (no epsilon but a tiny one against a flat row).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from paperlab.lab.distillers.base import Distiller, Params, register


def pearson_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 - Pearson's r between the rows of a and b, one value per row."""
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return 1 - (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-8)


def dist_terms(s: torch.Tensor, t: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    ps, pt = F.softmax(s / temperature, dim=1), F.softmax(t / temperature, dim=1)
    scale = temperature ** 2
    return scale * pearson_distance(ps, pt).mean(), scale * pearson_distance(ps.T, pt.T).mean()


@register("dist")
class DIST(Distiller):
    class Params(Params):
        beta: float = Field(2.0, ge=0)
        gamma: float = Field(2.0, ge=0)
        temperature: float = Field(4.0, gt=0, le=1000)
        ce_weight: float = Field(1.0, ge=0)

    def forward(self, s, t, b):
        inter, intra = dist_terms(s.logits, t.logits, self.p.temperature)
        ce = F.cross_entropy(s.logits, b.y)
        return self.p.ce_weight * ce + self.p.beta * inter + self.p.gamma * intra, \
            {"ce": ce, "inter": inter, "intra": intra}
