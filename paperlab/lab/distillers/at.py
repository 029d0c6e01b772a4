"""Attention transfer (Zagoruyko & Komodakis 2017, arXiv 1612.03928): match the spatial attention maps of
student and teacher stages.

    a(f) = normalize_L2( mean over channels of |f|^p, flattened )
    loss = ce_weight * CE + beta * sum over stages of mean over batch and positions of (a(f_s) - a(f_t))^2

The paper writes beta/2 * || a_s - a_t ||_2 (not squared); its code and CRD's benchmark use the squared mean
above with beta=1000 and p=2, over every stage but the stem (the first feature map). Where the sizes differ,
the larger map is average-pooled to the smaller.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from paperlab.lab.distillers.base import Distiller, Params, paired_maps, register, same_size


def attention(f: torch.Tensor, p: float) -> torch.Tensor:
    return F.normalize(f.pow(p).mean(1).flatten(1))


def at_loss(fs: torch.Tensor, ft: torch.Tensor, p: float) -> torch.Tensor:
    fs, ft = same_size(fs, ft)
    return (attention(fs, p) - attention(ft, p)).pow(2).mean()


@register("at")
class AttentionTransfer(Distiller):
    class Params(Params):
        p: float = Field(2.0, gt=0)
        beta: float = Field(1000.0, ge=0)
        ce_weight: float = Field(1.0, ge=0)
        skip: int = Field(1, ge=0)  # leading feature maps left out (the stem)

    needs = frozenset({"feats"})

    def __init__(self, params, student, teacher, info):
        super().__init__(params, student, teacher, info)
        paired_maps(student, teacher, info, "at", params.skip)

    def forward(self, s, t, b):
        k = self.p.skip
        transfer = sum(at_loss(fs, ft, self.p.p) for fs, ft in zip(s.feats[k:], t.feats[k:]))
        ce = F.cross_entropy(s.logits, b.y)
        return self.p.ce_weight * ce + self.p.beta * transfer, {"ce": ce, "at": transfer}
