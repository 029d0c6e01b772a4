"""Be your own teacher (Zhang et al. 2019, arXiv 1905.08094): self-distillation inside one net. Each shallow
stage gets a head (a 1x1 bottleneck to the deepest stage's width, pooled, then a linear classifier); the
deepest classifier teaches every head by its soft targets and its pooled features.

    deepest: CE(q_C, y)
    head i:  (1 - alpha) * CE(q_i, y) + alpha * T^2 * KL(q_C^T || q_i^T) + lam * || f_i - f_C ||^2
    loss = deepest + sum over heads       (q_C and f_C detached where they teach)

No teacher stage. The heads train with the net and are dropped at test time (the stage is evaluated by its
deepest classifier, as the paper's main numbers are). Defaults alpha 0.3, T 3, lam 0.03 are mmrazor's
(configs/distill/mmcls/byot); the paper does not state its values.

Heads: `pointwise` is one 1x1 conv-BN-ReLU to the deepest width; `bottleneck` is the paper's "bottleneck
layer" as the unofficial code that reproduces its ResNet18 table builds it (luanyunteng/pytorch-be-your-own-
teacher, models/resnet.py): 1x1 down to a quarter of the width, a k x k conv with stride k (k: how many
times larger the head's map is than the deepest one), 1x1 up to the width, each with BN and ReLU.
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from pydantic import Field
from torch import nn

from paperlab.lab.distillers.base import Distiller, Params, feature_maps, probe, register
from paperlab.lab.distillers.kd import soft_kl


def _conv_bn_relu(c_in: int, c_out: int, k: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, stride=k, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class Head(nn.Module):
    def __init__(self, c_in: int, width: int, classes: int, kind: str = "pointwise", stride: int = 1):
        super().__init__()
        if kind == "bottleneck":
            mid = max(1, width // 4)
            layers = _conv_bn_relu(c_in, mid) + _conv_bn_relu(mid, mid, stride) + _conv_bn_relu(mid, width)
        else:
            layers = _conv_bn_relu(c_in, width)
        self.bottleneck = nn.Sequential(*layers)
        self.fc = nn.Linear(width, classes)

    def forward(self, f):
        pooled = F.adaptive_avg_pool2d(self.bottleneck(f), 1).flatten(1)
        return self.fc(pooled), pooled


@register("byot")
class BeYourOwnTeacher(Distiller):
    class Params(Params):
        alpha: float = Field(0.3, ge=0, le=1)
        temperature: float = Field(3.0, gt=0, le=1000)
        lam: float = Field(0.03, ge=0)
        skip: int = Field(1, ge=0)  # leading feature maps without a head (the stem)
        head: Literal["pointwise", "bottleneck"] = "pointwise"

    needs = frozenset({"feats", "pooled"})
    taught = False

    def __init__(self, params, student, teacher, info):
        super().__init__(params, student, teacher, info)
        feats, _ = feature_maps(student, student, info, "byot")
        width = probe(student, info).pooled.shape[1]
        size = feats[-1].shape[-1]
        self.heads = nn.ModuleList(Head(f.shape[1], width, info.classes, params.head, max(1, f.shape[-1] // size))
                                   for f in feats[params.skip:-1])

    def forward(self, s, t, b):
        deepest = F.cross_entropy(s.logits, b.y)
        q_c, f_c = s.logits.detach(), s.pooled.detach().flatten(1)
        terms = {"ce": deepest}
        total = deepest
        for i, (head, f) in enumerate(zip(self.heads, s.feats[self.p.skip:-1])):
            logits, pooled = head(f)
            ce, kd = F.cross_entropy(logits, b.y), soft_kl(logits, q_c, self.p.temperature)
            hint = (pooled - f_c).pow(2).sum(1).mean()
            total = total + (1 - self.p.alpha) * ce + self.p.alpha * kd + self.p.lam * hint
            terms[f"head{i + 1}"] = ce
        return total, terms
