"""Similarity-preserving KD (Tung & Mori 2019, arXiv 1907.09682): within a batch, samples the teacher finds
alike should look alike to the student too.

    G = F F^T for the flattened feature map F (b x chw);  G_hat = G with each row L2-normalised
    sp = || G_hat_s - G_hat_t ||_F^2 / b^2
    loss = ce_weight * CE + beta * sp

CRD's benchmark runs it on the last feature map (before pooling) with beta = 3000, CE weight 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from paperlab.lab.distillers.base import Distiller, Params, feature_maps, register


def similarity(f: torch.Tensor) -> torch.Tensor:
    flat = f.flatten(1)
    return F.normalize(flat @ flat.T, dim=1)


def sp_loss(fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
    return (similarity(fs) - similarity(ft)).pow(2).sum() / len(fs) ** 2


@register("sp")
class SimilarityPreserving(Distiller):
    class Params(Params):
        beta: float = Field(3000.0, ge=0)
        ce_weight: float = Field(1.0, ge=0)

    needs = frozenset({"feats"})

    def __init__(self, params, student, teacher, info):
        super().__init__(params, student, teacher, info)
        feature_maps(student, teacher, info, "sp")

    def forward(self, s, t, b):
        sp = sp_loss(s.feats[-1], t.feats[-1])
        ce = F.cross_entropy(s.logits, b.y)
        return self.p.ce_weight * ce + self.p.beta * sp, {"ce": ce, "sp": sp}
