"""Neuron selectivity transfer (Huang & Wang 2017, arXiv 1707.01219): each channel's spatial map is one
sample of "what a neuron responds to"; match the distributions of the student's and the teacher's channels
by maximum mean discrepancy with the polynomial kernel k(x, y) = (x . y)^2 (the paper's best, d = 2, c = 0).

    each channel map flattened over positions and L2-normalised
    mmd = mean k(s, s') + mean k(t, t') - 2 mean k(s, t)   (means over all channel pairs)
    loss = ce_weight * CE + beta * sum over the stages after the stem of mmd

CRD's benchmark: beta = 50, CE weight 1, the stages after the stem, the larger map pooled to the smaller.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from paperlab.lab.distillers.base import Distiller, Params, paired_maps, register, same_size


def poly_mmd(fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
    fs, ft = same_size(fs, ft)
    s, t = F.normalize(fs.flatten(2), dim=2), F.normalize(ft.flatten(2), dim=2)  # b x channels x positions
    k = lambda a, c: (a @ c.transpose(1, 2)).pow(2).mean((1, 2))  # noqa: E731
    return (k(s, s) + k(t, t) - 2 * k(s, t)).mean()


@register("nst")
class NST(Distiller):
    class Params(Params):
        beta: float = Field(50.0, ge=0)
        ce_weight: float = Field(1.0, ge=0)
        skip: int = Field(1, ge=0)

    needs = frozenset({"feats"})

    def __init__(self, params, student, teacher, info):
        super().__init__(params, student, teacher, info)
        paired_maps(student, teacher, info, "nst", params.skip)

    def forward(self, s, t, b):
        k = self.p.skip
        nst = sum(poly_mmd(fs, ft) for fs, ft in zip(s.feats[k:], t.feats[k:]))
        ce = F.cross_entropy(s.logits, b.y)
        return self.p.ce_weight * ce + self.p.beta * nst, {"ce": ce, "nst": nst}
