"""Curriculum temperature KD (Li et al. 2023, arXiv 2211.16231): KD whose temperature is learned
adversarially. The temperature tries to *raise* the KD loss (its gradient is reversed) while the student
lowers it; the reversal's strength lambda rises from 0 to lambda_max on a cosine curriculum.

    tau = t_min + t_range * sigmoid(theta)            (theta: one learnable scalar, the "global" variant)
    soft = tau^2 * KL(softmax(t / tau) || softmax(s / tau))   (batch mean), the gradient into theta is x -lambda
    lambda = lambda_max * (1 - cos(pi * min(epoch / curriculum_epochs, 1))) / 2
    loss = ce_weight * CE + kd_weight * soft

Defaults follow the CTKD code's CIFAR-100 setting on top of CRD's KD (CE 0.1, KD 0.9, tau in [1, 21],
lambda_max 1, a 10-epoch curriculum). theta starts at 0 here (tau = 11 at first).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from paperlab.lab.distillers.base import Distiller, Params, register
from paperlab.lab.distillers.kd import soft_kl


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, strength):
        ctx.strength = strength
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.strength * grad, None


def reverse_gradient(x: torch.Tensor, strength: float) -> torch.Tensor:
    """Identity forward; the gradient comes back multiplied by -strength."""
    return _Reverse.apply(x, strength)


def curriculum(epoch: int, epochs: int, top: float) -> float:
    return top * (1 - math.cos(math.pi * min(epoch / epochs, 1.0))) / 2 if epochs else top


@register("ctkd")
class CTKD(Distiller):
    class Params(Params):
        t_min: float = Field(1.0, gt=0)
        t_range: float = Field(20.0, ge=0)
        lambda_max: float = Field(1.0, ge=0)
        curriculum_epochs: int = Field(10, ge=0)
        ce_weight: float = Field(0.1, ge=0)
        kd_weight: float = Field(0.9, ge=0)

    def __init__(self, params, student, teacher, info):
        super().__init__(params, student, teacher, info)
        self.theta = nn.Parameter(torch.zeros(()))

    def temperature(self, strength: float) -> torch.Tensor:
        return self.p.t_min + self.p.t_range * torch.sigmoid(reverse_gradient(self.theta, strength))

    def forward(self, s, t, b):
        tau = self.temperature(curriculum(b.epoch, self.p.curriculum_epochs, self.p.lambda_max))
        soft = soft_kl(s.logits, t.logits, tau)
        ce = F.cross_entropy(s.logits, b.y)
        return self.p.ce_weight * ce + self.p.kd_weight * soft, {"ce": ce, "soft": soft, "tau": tau.detach()}
