"""Decoupled KD (Zhao et al. 2022, arXiv 2203.08679): the KD loss split into a target-class term (TCKD, the
binary target / non-target distribution) and a non-target term (NCKD, the distribution over the other
classes), weighted separately, with a linear warm-up over the first epochs.

    b = [p_target, 1 - p_target] at temperature T;  n = softmax over the non-target classes at T
    TCKD = T^2 * KL(b_t || b_s);  NCKD = T^2 * KL(n_t || n_s)   (both summed over classes, meaned over the batch)
    loss = ce_weight * CE + min(epoch / warmup, 1) * (alpha * TCKD + beta * NCKD)

Defaults are mdistiller's (alpha 1, beta 8, T 4, warm-up 20 epochs, counted from epoch 1); its CIFAR
configs set beta per pair (the dkd template's `pairs:` carry them). The non-target distribution is the softmax
with the target logit masked out (mdistiller subtracts 1000 from it; masking with -inf is the exact form).
`standardize: true` z-scores both logits first (logit standardisation, arXiv 2403.01427; see kd.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from paperlab.lab.distillers.base import Distiller, Params, register
from paperlab.lab.distillers.kd import standardize


def dkd_terms(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, temperature: float):
    gt = F.one_hot(y, s.shape[1]).bool()
    ps, pt = F.softmax(s / temperature, dim=1), F.softmax(t / temperature, dim=1)
    bs = torch.stack([ps[gt], (ps * ~gt).sum(1)], dim=1)
    bt = torch.stack([pt[gt], (pt * ~gt).sum(1)], dim=1)
    scale = temperature ** 2 / len(y)
    tckd = F.kl_div(torch.log(bs.clamp_min(1e-12)), bt, reduction="sum") * scale
    masked = lambda z: (z / temperature).masked_fill(gt, float("-inf"))  # noqa: E731
    log_ns, nt = F.log_softmax(masked(s), dim=1), F.softmax(masked(t), dim=1)
    nckd = (nt * (torch.log(nt.clamp_min(1e-30)) - log_ns)).masked_fill(gt, 0).sum() * scale
    return tckd, nckd


@register("dkd")
class DKD(Distiller):
    class Params(Params):
        alpha: float = Field(1.0, ge=0)
        beta: float = Field(8.0, ge=0)
        temperature: float = Field(4.0, gt=0, le=1000)
        warmup: int = Field(20, ge=0)
        ce_weight: float = Field(1.0, ge=0)
        standardize: bool = False  # logit standardisation (2403.01427), as in kd.py

    def forward(self, s, t, b):
        zs, zt = (standardize(s.logits), standardize(t.logits)) if self.p.standardize else (s.logits, t.logits)
        tckd, nckd = dkd_terms(zs, zt, b.y, self.p.temperature)
        ramp = min(b.epoch / self.p.warmup, 1.0) if self.p.warmup else 1.0
        ce = F.cross_entropy(s.logits, b.y)
        return self.p.ce_weight * ce + ramp * (self.p.alpha * tckd + self.p.beta * nckd), \
            {"ce": ce, "tckd": tckd, "nckd": nckd}
