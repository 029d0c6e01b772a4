"""Flow of solution procedure (Yim et al., CVPR 2017), a phase before the main training: the student learns
the teacher's "FSP matrices", the Gram matrices between consecutive stages' feature maps.

    G(F1, F2) = F1^T F2 / (h * w)   (channels_1 x channels_2; F1 pooled to F2's size)
    fsp = sum over consecutive stage pairs of mean((G_s - G_t)^2)
    loss = beta * fsp      (no label term: a `ce` stage starts from this one with `init:`)

The matrices must have the same shape in both nets, so student and teacher need the same widths stage by
stage (CRD's benchmark reports no number where they differ: wrn_40_2 -> wrn_40_1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from paperlab.errors import BadInput
from paperlab.lab.distillers.base import Distiller, Params, feature_maps, register


def fsp_matrix(f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
    if f1.shape[-1] > f2.shape[-1]:
        f1 = F.adaptive_avg_pool2d(f1, f2.shape[-2:])
    a, b = f1.flatten(2), f2.flatten(2)  # batch x channels x positions
    return a @ b.transpose(1, 2) / a.shape[-1]


@register("fsp")
class FSP(Distiller):
    class Params(Params):
        beta: float = Field(1.0, ge=0)

    needs = frozenset({"feats"})

    def __init__(self, params, student, teacher, info):
        super().__init__(params, student, teacher, info)
        s, t = feature_maps(student, teacher, info, "fsp")
        if [f.shape[1] for f in s] != [f.shape[1] for f in t]:
            raise BadInput(f"fsp: student and teacher need the same widths stage by stage "
                           f"(student {[f.shape[1] for f in s]}, teacher {[f.shape[1] for f in t]})")

    def forward(self, s, t, b):
        fsp = sum((fsp_matrix(s1, s2) - fsp_matrix(t1, t2)).pow(2).mean()
                  for s1, s2, t1, t2 in zip(s.feats, s.feats[1:], t.feats, t.feats[1:]))
        return self.p.beta * fsp, {"fsp": fsp}
