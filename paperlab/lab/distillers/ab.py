"""Activation boundaries (Heo et al. 2019, arXiv 1811.03233), a phase before the main training: the
student learns, through connectors, where the teacher's neurons switch on and off, with no label term.

    r = BN(conv1x1(preact_s)) at the teacher's width;  t = preact_t;  m = margin
    ab = (r + m)^2 * [r > -m and t <= 0] + (r - m)^2 * [r <= m and t > 0]    (per element)
    loss = beta * sum over stages i of 2^(i - n + 1) * (sum of ab over elements, mean over the batch) / 1000

Then a `ce` stage starts from this stage's weights (`init:`), as CRD's benchmark does after its 30
initialisation epochs. The margin is a fixed value here (the paper's default 1); CRD's benchmark derives
it from the teacher's BN statistics. Stage weights and the /1000 follow CRD's benchmark.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from paperlab.lab.distillers.base import Distiller, Params, paired_maps, register, same_size


def boundary_loss(r: torch.Tensor, t: torch.Tensor, margin: float) -> torch.Tensor:
    on, off = t > 0, t <= 0
    loss = (r + margin).pow(2) * ((r > -margin) & off) + (r - margin).pow(2) * ((r <= margin) & on)
    return loss.flatten(1).sum(1).mean()


def connector(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


@register("ab")
class ActivationBoundaries(Distiller):
    class Params(Params):
        margin: float = Field(1.0, ge=0)
        beta: float = Field(1.0, ge=0)
        skip: int = Field(1, ge=0)

    needs = frozenset({"preact"})

    def __init__(self, params, student, teacher, info):
        super().__init__(params, student, teacher, info)
        s, t = paired_maps(student, teacher, info, "ab", params.skip, "preact")
        self.connectors = nn.ModuleList(connector(a.shape[1], b.shape[1]) for a, b in zip(s, t))

    def forward(self, s, t, b):
        k, n = self.p.skip, len(self.connectors)
        ab = 0
        for i, (c, fs, ft) in enumerate(zip(self.connectors, s.preact[k:], t.preact[k:])):
            fs, ft = same_size(fs, ft)
            ab = ab + 2.0 ** (i - n + 1) * boundary_loss(c(fs), ft, self.p.margin) / 1000
        return self.p.beta * ab, {"ab": ab}
