"""Be your own teacher (Zhang et al. 2019, arXiv 1905.08094): self-distillation inside one net. Each shallow
stage gets a head (a 1x1 bottleneck to the deepest stage's width, pooled, then a linear classifier); the
deepest classifier teaches every head by its soft targets and its pooled features.

    deepest: CE(q_C, y)
    head i:  (1 - alpha) * CE(q_i, y) + alpha * T^2 * KL(q_C^T || q_i^T) + lam * || f_i - f_C ||^2
    loss = deepest + sum over heads       (q_C and f_C detached where they teach)

No teacher stage. The heads train with the net and are dropped at test time (the stage is evaluated by its
deepest classifier, as the paper's main numbers are). Defaults alpha 0.3, T 3, lam 0.03 are ours: the
paper's per-dataset values were not checked here.
"""

from __future__ import annotations

import torch.nn.functional as F
from pydantic import Field
from torch import nn

from paperlab.lab.distillers.base import Distiller, Params, feature_maps, probe, register
from paperlab.lab.distillers.kd import soft_kl


class Head(nn.Module):
    def __init__(self, c_in: int, width: int, classes: int):
        super().__init__()
        self.bottleneck = nn.Sequential(nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
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

    needs = frozenset({"feats", "pooled"})
    taught = False

    def __init__(self, params, student, teacher, info):
        super().__init__(params, student, teacher, info)
        feats, _ = feature_maps(student, student, info, "byot")
        width = probe(student, info).pooled.shape[1]
        self.heads = nn.ModuleList(Head(f.shape[1], width, info.classes) for f in feats[params.skip:-1])

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
