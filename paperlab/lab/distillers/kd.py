"""Hinton, Vinyals & Dean (2015), arXiv 1503.02531: soft targets at temperature T, weighted by alpha, plus
hard labels weighted by 1 - alpha.

    soft = T^2 * mean over the batch of KL(softmax(t/T) || softmax(s/T))

`batchmean`, not the element-wise mean that also divides by the class count (the bug of the widely copied
`loss_fn_kd`); the T^2 factor keeps the gradients' size as T changes (section 2). CRD's benchmark runs it
with T=4, CE weight 0.1 and KD weight 0.9, i.e. alpha=0.9.
"""

from __future__ import annotations

import torch.nn.functional as F
from pydantic import Field

from paperlab.lab.distillers.base import Distiller, Params, register


def soft_kl(student_logits, teacher_logits, t: float):
    return F.kl_div(F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
                    reduction="batchmean", log_target=True) * (t * t)


@register("kd")
class HintonKD(Distiller):
    class Params(Params):
        temperature: float = Field(gt=0, le=1000)
        alpha: float = Field(ge=0, le=1)

    def forward(self, s, t, b):
        soft = soft_kl(s.logits, t.logits, self.p.temperature)
        hard = F.cross_entropy(s.logits, b.y)
        return self.p.alpha * soft + (1 - self.p.alpha) * hard, {"soft": soft, "hard": hard}
