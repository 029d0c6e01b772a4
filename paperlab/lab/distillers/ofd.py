"""Overhaul of feature distillation (Heo et al. 2019, arXiv 1904.01866): distil the pre-ReLU features of
each stage through a connector, with the teacher's negative responses clipped at a margin and a partial L2
that ignores the student where both are below the margin (the ReLU would erase the difference anyway).

    target = max(preact_t, m_c);  r = BN(conv1x1(preact_s))
    ofd = sum over elements of (r - target)^2 * [not (r <= target and target <= 0)], mean over the batch
    loss = ce_weight * CE + feat_weight * sum over the stages after the stem of ofd

m_c, per channel, is the expected value of the teacher's negative responses. The paper computes it in
closed form from the teacher's BN parameters; here it is measured on the teacher's responses to the first
training batch (the same quantity, estimated). Weights follow mdistiller (CE 1, features 1e-3).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from paperlab.lab.distillers.ab import connector
from paperlab.lab.distillers.base import Distiller, Params, paired_maps, register, same_size


def margins(preact: torch.Tensor) -> torch.Tensor:
    """Per channel: the mean of the negative responses (0 where a channel never goes negative)."""
    neg = preact.clamp(max=0).transpose(0, 1).flatten(1)
    count = (neg < 0).sum(1).clamp_min(1)
    return neg.sum(1) / count


def partial_l2(r: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    mask = ~((r <= target) & (target <= 0))
    return ((r - target).pow(2) * mask).flatten(1).sum(1).mean()


@register("ofd")
class OverhaulFeatureDistillation(Distiller):
    class Params(Params):
        ce_weight: float = Field(1.0, ge=0)
        feat_weight: float = Field(1e-3, ge=0)
        skip: int = Field(1, ge=0)

    needs = frozenset({"preact"})

    def __init__(self, params, student, teacher, info):
        super().__init__(params, student, teacher, info)
        s, t = paired_maps(student, teacher, info, "ofd", params.skip, "preact")
        self.connectors = nn.ModuleList(connector(a.shape[1], b.shape[1]) for a, b in zip(s, t))
        for i, f in enumerate(t):
            self.register_buffer(f"margin{i}", torch.zeros(f.shape[1]))
        self.register_buffer("measured", torch.zeros((), dtype=torch.bool))

    def forward(self, s, t, b):
        k = self.p.skip
        if not bool(self.measured):
            for i, ft in enumerate(t.preact[k:]):
                getattr(self, f"margin{i}").copy_(margins(ft.detach()))
            self.measured.fill_(True)
        ofd = 0
        for i, (c, fs, ft) in enumerate(zip(self.connectors, s.preact[k:], t.preact[k:])):
            fs, ft = same_size(fs, ft)
            target = torch.maximum(ft, getattr(self, f"margin{i}").view(1, -1, 1, 1))
            ofd = ofd + partial_l2(c(fs), target)
        ce = F.cross_entropy(s.logits, b.y)
        return self.p.ce_weight * ce + self.p.feat_weight * ofd, {"ce": ce, "ofd": ofd}
