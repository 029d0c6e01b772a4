"""Teacher-free KD, the regularisation variant Tf-KD_reg (Yuan et al. 2020, arXiv 1909.11723): a hand-made
"virtual teacher" that puts `correct_prob` on the true class and spreads the rest evenly, softened at
temperature T by a softmax over those probabilities divided by T.

    v = one-hot(y) * a + (1 - one-hot(y)) * (1 - a) / (K - 1)
    reg = KL(softmax(v / T) || softmax(s))          (batch mean)
    loss = (1 - alpha) * CE + alpha * multiplier * reg

This is the loss of the authors' code, which made the paper's table (yuanli2333/Teacher-free-Knowledge-
Distillation, my_loss_function.py, loss_kd_regularization): the student's logits are not softened and there
is no T^2. That code averages the KL over classes as well as examples and multiplies by 100 for its CIFAR-100
nets; with K = 100 classes that is our multiplier 1. `soften_student: true` gives the paper's equation instead
(the student at temperature T too, times T^2). Defaults: a = 0.99 (hard-coded there), T = 20, alpha = 0.1
(experiments/base_experiments/base_resnet18/params.json).
"""

from __future__ import annotations

import torch.nn.functional as F
from pydantic import Field

from paperlab.lab.distillers.base import Distiller, Params, register


def virtual_teacher(y, classes: int, correct_prob: float):
    hot = F.one_hot(y, classes).float()
    return hot * correct_prob + (1 - hot) * (1 - correct_prob) / (classes - 1)


@register("tfkd")
class TeacherFreeKD(Distiller):
    class Params(Params):
        correct_prob: float = Field(0.99, gt=0, lt=1)
        temperature: float = Field(20.0, gt=0, le=1000)
        alpha: float = Field(0.1, ge=0, le=1)
        multiplier: float = Field(1.0, ge=0)
        soften_student: bool = False

    needs = frozenset()
    taught = False

    def forward(self, s, t, b):
        v = virtual_teacher(b.y, s.logits.shape[1], self.p.correct_prob)
        T = self.p.temperature
        scale = T if self.p.soften_student else 1.0
        reg = F.kl_div(F.log_softmax(s.logits / scale, dim=1), F.softmax(v / T, dim=1), reduction="batchmean")
        reg = reg * scale * scale
        ce = F.cross_entropy(s.logits, b.y)
        return (1 - self.p.alpha) * ce + self.p.alpha * self.p.multiplier * reg, {"ce": ce, "reg": reg}
