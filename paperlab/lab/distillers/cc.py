"""Correlation congruence (Peng et al. 2019, arXiv 1904.01802): besides each sample's output, match how the
samples of a batch correlate with one another, measured by a Gaussian kernel on embedded pooled features.

    e = L2-normalised linear embedding of the pooled features (one per net, both trained; dim 128)
    C_ij = exp(-gamma * ||e_i - e_j||^2)
    cc = mean over i, j of (C_s,ij - C_t,ij)^2
    loss = ce_weight * CE + beta * cc

The paper approximates the kernel by its Taylor series (order P = 2) for speed; on unit vectors
||e_i - e_j||^2 = 2 - 2 e_i.e_j, so the exact kernel costs no more and is used here. gamma = 0.4 is the
paper's CIFAR value; beta = 0.02 and CE weight 1 are CRD's benchmark's. The teacher's embedding trains
with the student (its gradient reaches the embedding, not the teacher), as in CRD's benchmark.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from paperlab.lab.distillers.base import Distiller, Params, probe, register


def correlation(e: torch.Tensor, gamma: float) -> torch.Tensor:
    return torch.exp(-gamma * torch.cdist(e, e).pow(2))


def cc_loss(es: torch.Tensor, et: torch.Tensor, gamma: float) -> torch.Tensor:
    return (correlation(es, gamma) - correlation(et, gamma)).pow(2).mean()


@register("cc")
class CorrelationCongruence(Distiller):
    class Params(Params):
        gamma: float = Field(0.4, gt=0)
        dim: int = Field(128, gt=0)
        beta: float = Field(0.02, ge=0)
        ce_weight: float = Field(1.0, ge=0)

    needs = frozenset({"pooled"})

    def __init__(self, params, student, teacher, info):
        super().__init__(params, student, teacher, info)
        s, t = probe(student, info).pooled, probe(teacher, info).pooled
        self.embed_s, self.embed_t = nn.Linear(s.shape[1], params.dim), nn.Linear(t.shape[1], params.dim)

    def forward(self, s, t, b):
        es = F.normalize(self.embed_s(s.pooled.flatten(1)), dim=1)
        et = F.normalize(self.embed_t(t.pooled.flatten(1)), dim=1)
        cc = cc_loss(es, et, self.p.gamma)
        ce = F.cross_entropy(s.logits, b.y)
        return self.p.ce_weight * ce + self.p.beta * cc, {"ce": ce, "cc": cc}
