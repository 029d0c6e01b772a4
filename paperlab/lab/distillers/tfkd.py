"""Teacher-free KD, the regularisation variant Tf-KD_reg (Yuan et al. 2020, arXiv 1909.11723): a hand-made
"virtual teacher" that puts `correct_prob` on the true class and spreads the rest evenly, softened at
temperature T as the paper's code does (a softmax over those probabilities divided by T).

    v = one-hot(y) * a + (1 - one-hot(y)) * (1 - a) / (K - 1)
    reg = T^2 * KL(softmax(v / T) || softmax(s / T))   (batch mean)
    loss = (1 - alpha) * CE + alpha * multiplier * reg

No teacher stage: the stage takes no `teacher:`. Defaults: a = 0.9, T = 20, alpha = 0.1, multiplier 1 (the
paper tunes T, alpha and a per net; its CIFAR-100 nets are not CRD's pairs).
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
        correct_prob: float = Field(0.9, gt=0, lt=1)
        temperature: float = Field(20.0, gt=0, le=1000)
        alpha: float = Field(0.1, ge=0, le=1)
        multiplier: float = Field(1.0, ge=0)

    needs = frozenset()
    taught = False

    def forward(self, s, t, b):
        v = virtual_teacher(b.y, s.logits.shape[1], self.p.correct_prob)
        T = self.p.temperature
        reg = F.kl_div(F.log_softmax(s.logits / T, dim=1), F.softmax(v / T, dim=1), reduction="batchmean") * T * T
        ce = F.cross_entropy(s.logits, b.y)
        return (1 - self.p.alpha) * ce + self.p.alpha * self.p.multiplier * reg, {"ce": ce, "reg": reg}
