"""Knowledge review (Chen et al. 2021, arXiv 2104.09044): the student's features are fused from deep to
shallow by attention-based fusion (ABF) and each fused map is compared with the teacher's feature of the
same level under a hierarchical context loss (HCL).

    levels: the stage outputs after the stem and the pooled embedding (as a 1x1 map), shallow to deep;
        the student's after their ReLU, the teacher's before it (its pre-activations)
    ABF, deepest first: x = BN(conv1x1(f_s)) at a shared width; for the other levels
        w = sigmoid(conv1x1([x, up(res)])) (two maps);  x = x * w_1 + up(res) * w_2;  res = x
        out = BN(conv3x3(x resized to the teacher's size)) at the teacher's width
    HCL(o, t) = (mse(o, t) + sum over l in 4, 2, 1 (below the size) of 2^-k mse(pool_l(o), pool_l(t))) / total weight
    loss = ce_weight * CE + min(epoch / warmup, 1) * weight * sum over levels of HCL

Equal to mdistiller's distillers/ReviewKD.py (configs/cifar100/reviewkd.yaml) and the authors' code, value
and gradient: the teacher's targets are its pre-ReLU maps (`preact_feats[1:]`), the fusion convolutions
start from kaiming_uniform_(a=1), the width is min(512, the student's deepest width); weight 5 (0.6 for
resnet56 -> resnet20, the authors' CIFAR-100 script), and mdistiller's 20-epoch warm-up.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from paperlab.errors import BadInput
from paperlab.lab.distillers.base import Distiller, Params, feature_maps, probe, register


class Fusion(nn.Module):
    def __init__(self, c_in: int, mid: int, c_out: int, fuse: bool):
        super().__init__()
        self.reduce = nn.Sequential(nn.Conv2d(c_in, mid, 1, bias=False), nn.BatchNorm2d(mid))
        self.attention = nn.Sequential(nn.Conv2d(2 * mid, 2, 1), nn.Sigmoid()) if fuse else None
        self.out = nn.Sequential(nn.Conv2d(mid, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out))
        nn.init.kaiming_uniform_(self.reduce[0].weight, a=1)
        nn.init.kaiming_uniform_(self.out[0].weight, a=1)

    def forward(self, x, deeper, size):
        x = self.reduce(x)
        if self.attention is not None:
            deeper = F.interpolate(deeper, size=x.shape[-2:], mode="nearest")
            w = self.attention(torch.cat([x, deeper], dim=1))
            x = x * w[:, :1] + deeper * w[:, 1:]
        out = x if tuple(x.shape[-2:]) == tuple(size) else F.interpolate(x, size=size, mode="nearest")
        return self.out(out), out   # the resized map is the next level's residual, as in the authors' ABF


def hcl(o: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    loss, weight, total = F.mse_loss(o, t), 1.0, 1.0
    for level in (4, 2, 1):
        if level >= o.shape[-1]:
            continue
        weight /= 2
        loss = loss + weight * F.mse_loss(F.adaptive_avg_pool2d(o, level), F.adaptive_avg_pool2d(t, level))
        total += weight
    return loss / total


def levels(out, skip: int, kind: str = "feats") -> list[torch.Tensor]:
    return [*getattr(out, kind)[skip:], out.pooled.flatten(1)[:, :, None, None]]


@register("reviewkd")
class ReviewKD(Distiller):
    class Params(Params):
        weight: float = Field(5.0, ge=0)
        ce_weight: float = Field(1.0, ge=0)
        warmup: int = Field(20, ge=0)
        skip: int = Field(1, ge=0)

    needs = frozenset({"feats", "preact", "pooled"})

    def __init__(self, params, student, teacher, info):
        super().__init__(params, student, teacher, info)
        feature_maps(student, teacher, info, "reviewkd")
        s, t = levels(probe(student, info), params.skip), levels(probe(teacher, info), params.skip, "preact")
        if len(s) != len(t) or len(s) < 2:
            raise BadInput(f"reviewkd: the nets need the same number of feature maps after distill.skip "
                           f"(student {len(s) - 1}, teacher {len(t) - 1})")
        mid = min(512, s[-1].shape[1])
        self.sizes = [tuple(f.shape[-2:]) for f in t]
        self.fusions = nn.ModuleList(Fusion(a.shape[1], mid, b.shape[1], fuse=i < len(s) - 1)
                                     for i, (a, b) in enumerate(zip(s, t)))

    def forward(self, s, t, b):
        fs, ft = levels(s, self.p.skip), levels(t, self.p.skip, "preact")
        res, review = None, 0
        for i in reversed(range(len(fs))):  # deepest first
            out, res = self.fusions[i](fs[i], res, self.sizes[i])
            review = review + hcl(out, ft[i])
        ramp = min(b.epoch / self.p.warmup, 1.0) if self.p.warmup else 1.0
        ce = F.cross_entropy(s.logits, b.y)
        return self.p.ce_weight * ce + ramp * self.p.weight * review, {"ce": ce, "review": review}
