"""Variational information distillation (Ahn et al. 2019, arXiv 1904.05835): maximise a lower bound on the
mutual information between teacher and student features with a Gaussian q(t | s) whose mean is regressed
from the student and whose variance is learned per channel.

    mu = r(f_s) (1x1 conv, ReLU, 1x1 conv, ReLU, 1x1 conv);  sigma^2 = softplus(a_c) + eps
    vid = mean over batch, channels, positions of  (log sigma^2 + (f_t - mu)^2 / sigma^2) / 2
    loss = ce_weight * CE + beta * sum over the stages after the stem of vid

(The constant log(2 pi)/2 is left out.) Equal to CRD's benchmark (RepDistiller distiller_zoo/VID.py, the
authors' code), value and gradient: the stages after the stem, beta 1, CE weight 1, sigma^2 starting at 5
(a_c initialised so), eps 1e-5, hidden width = the teacher's channels, 1x1 convolutions without biases.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from paperlab.lab.distillers.base import Distiller, Params, paired_maps, register, same_size


def gaussian_nll(target: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    var = var.view(1, -1, *([1] * (target.dim() - 2)))
    return 0.5 * (torch.log(var) + (target - mean).pow(2) / var).mean()


class VIDRegressor(nn.Module):
    def __init__(self, c_in: int, c_out: int, init_var: float, eps: float):
        super().__init__()
        self.mean = nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.ReLU(),
                                  nn.Conv2d(c_out, c_out, 1, bias=False), nn.ReLU(),
                                  nn.Conv2d(c_out, c_out, 1, bias=False))
        self.eps = eps
        self.raw_var = nn.Parameter(torch.full((c_out,), math.log(math.expm1(init_var - eps))))

    def forward(self, fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
        fs, ft = same_size(fs, ft)
        return gaussian_nll(ft, self.mean(fs), F.softplus(self.raw_var) + self.eps)


@register("vid")
class VID(Distiller):
    class Params(Params):
        beta: float = Field(1.0, ge=0)
        ce_weight: float = Field(1.0, ge=0)
        init_var: float = Field(5.0, gt=0)
        eps: float = Field(1e-5, gt=0)
        skip: int = Field(1, ge=0)

    needs = frozenset({"feats"})

    def __init__(self, params, student, teacher, info):
        super().__init__(params, student, teacher, info)
        s, t = paired_maps(student, teacher, info, "vid", params.skip)
        self.regressors = nn.ModuleList(VIDRegressor(fs.shape[1], ft.shape[1], params.init_var, params.eps)
                                        for fs, ft in zip(s, t))

    def forward(self, s, t, b):
        k = self.p.skip
        vid = sum(r(fs, ft) for r, fs, ft in zip(self.regressors, s.feats[k:], t.feats[k:]))
        ce = F.cross_entropy(s.logits, b.y)
        return self.p.ce_weight * ce + self.p.beta * vid, {"ce": ce, "vid": vid}
