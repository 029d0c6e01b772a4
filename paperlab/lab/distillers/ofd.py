"""Overhaul of feature distillation (Heo et al. 2019, arXiv 1904.01866): distil the pre-ReLU features of
each stage through a connector, with the teacher's negative responses clipped at a margin and a partial L2
that ignores the student where both are below the margin (the ReLU would erase the difference anyway).

    target = max(preact_t, m_c);  r = BN(conv1x1(preact_s))
    ofd_i = sum over elements of (r - target)^2 * [not (r <= target and target <= 0)], mean over the batch
    loss = ce_weight * CE + feat_weight * sum over the n stages after the stem of ofd_i / 2^(n - 1 - i)

Equal to mdistiller (distillers/OFD.py, configs/cifar100/ofd.yaml: CE 1, features 1e-3), value and
gradient: the stage weights 1/4, 1/2, 1 and the margin m_c, per channel, in closed form from the BN before
the teacher's ReLU (the expected value of a negative response of N(beta, |gamma|^2); -3|gamma| where that
has probability <= 0.001), read from the nets that name that BN (`preact_norms`: resnets, WRNs, VGGs, the
small CNN). For a net that does not, m_c is measured on the teacher's responses to the first training
batch (the mean of the negative ones): an estimate of the same quantity, not mdistiller's number.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from paperlab.lab.distillers.base import Distiller, Params, paired_maps, register, same_size


def margins(preact: torch.Tensor) -> torch.Tensor:
    """Per channel: the mean of the negative responses (0 where a channel never goes negative)."""
    neg = preact.clamp(max=0).transpose(0, 1).flatten(1)
    count = (neg < 0).sum(1).clamp_min(1)
    return neg.sum(1) / count


def bn_margins(bn: nn.BatchNorm2d) -> torch.Tensor:
    """E[x | x < 0] for x ~ N(bias, weight^2), per channel; -3 |weight| where P(x < 0) <= 0.001."""
    s, m = bn.weight.detach().abs().double(), bn.bias.detach().double()
    p = torch.special.ndtr(-m / s)
    closed = -s * torch.exp(-(m / s) ** 2 / 2) / math.sqrt(2 * math.pi) / p + m
    return torch.where(p > 0.001, closed, -3 * s).float()


def partial_l2(r: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    mask = ~((r <= target) & (target <= 0))
    return ((r - target).pow(2) * mask).flatten(1).sum(1).mean()


def connector(c_in: int, c_out: int) -> nn.Module:
    conv, bn = nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out)
    nn.init.normal_(conv.weight, 0, math.sqrt(2 / c_out))  # mdistiller's ConnectorConvBN init
    return nn.Sequential(conv, bn)


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
        norms = teacher.preact_norms()[params.skip:] if hasattr(teacher, "preact_norms") else [None] * len(t)
        for i, (f, bn) in enumerate(zip(t, norms)):
            self.register_buffer(f"margin{i}", bn_margins(bn) if bn is not None else torch.zeros(f.shape[1]))
        measured = all(bn is not None for bn in norms)
        self.register_buffer("measured", torch.tensor(measured))

    def forward(self, s, t, b):
        k, n = self.p.skip, len(self.connectors)
        if not bool(self.measured):
            for i, ft in enumerate(t.preact[k:]):
                getattr(self, f"margin{i}").copy_(margins(ft.detach()))
            self.measured.fill_(True)
        ofd = 0
        for i, (c, fs, ft) in enumerate(zip(self.connectors, s.preact[k:], t.preact[k:])):
            fs, ft = same_size(fs, ft)
            target = torch.maximum(ft, getattr(self, f"margin{i}").view(1, -1, 1, 1))
            ofd = ofd + partial_l2(c(fs), target) / 2 ** (n - 1 - i)
        ce = F.cross_entropy(s.logits, b.y)
        return self.p.ce_weight * ce + self.p.feat_weight * ofd, {"ce": ce, "ofd": ofd}
