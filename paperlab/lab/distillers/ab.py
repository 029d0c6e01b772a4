"""Activation boundaries (Heo et al. 2019, arXiv 1811.03233), a phase before the main training: the
student learns, through connectors, where the teacher's neurons switch on and off, with no label term.

    r = connector(preact_s);  t = preact_t;  m = margin (1.0)
    ab = (r + m)^2 * [r > -m and t <= 0] + (r - m)^2 * [r <= m and t > 0]    (per element)
    loss = beta * sum over stages i of 2^(i - n + 1) * (sum of ab over elements) / batch / 1000 * 3

Equal to CRD's benchmark (RepDistiller: distiller_zoo/AB.py `ABLoss(len(feat_s[1:-1]))`, margin 1.0, and
models/util.py `Connector`), value and gradient: the stages after the stem (skip 1), the factor 3/1000, and
a connector that is the identity where the two maps have one shape (every published pair) and otherwise a
convolution and BN (RepDistiller's ConvReg without ReLU; ours pools or upsamples to the teacher's size and
uses a 1x1 convolution). Then a `ce` stage starts from this stage's weights (`init:`), as the benchmark
does after its 30 initialisation epochs.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from paperlab.lab.distillers.base import Distiller, Params, paired_maps, register
from paperlab.lab.distillers.fitnet import Connector

SCALE = 3 / 1000  # RepDistiller's ABLoss: `l / bsz / 1000 * 3`


def boundary_loss(r: torch.Tensor, t: torch.Tensor, margin: float) -> torch.Tensor:
    on, off = t > 0, t <= 0
    loss = (r + margin).pow(2) * ((r > -margin) & off) + (r - margin).pow(2) * ((r <= margin) & on)
    return loss.flatten(1).sum(1).mean()


def connector(fs: torch.Tensor, ft: torch.Tensor) -> nn.Module:
    if fs.shape[1:] == ft.shape[1:]:
        return nn.Identity()
    return Connector(fs.shape[1], ft.shape[1], tuple(ft.shape[-2:]), relu=False)


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
        self.connectors = nn.ModuleList(connector(a, b) for a, b in zip(s, t))

    def forward(self, s, t, b):
        k, n = self.p.skip, len(self.connectors)
        ab = 0
        for i, (c, fs, ft) in enumerate(zip(self.connectors, s.preact[k:], t.preact[k:])):
            ab = ab + 2.0 ** (i - n + 1) * boundary_loss(c(fs), ft, self.p.margin) * SCALE
        return self.p.beta * ab, {"ab": ab}
