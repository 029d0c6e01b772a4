"""Hinton, Vinyals & Dean (2015): soft targets at temperature T, weighted by alpha, plus hard labels.

The soft term is KL(teacher_T || student_T) averaged over the batch (`batchmean`, not the element-wise
mean that divides by the class count too) and multiplied by T^2 so its gradients keep their size as T
changes (section 2 of the paper).
"""

from __future__ import annotations

import torch.nn.functional as F

from paperlab.lab.distillers.base import Objective, register


@register("kd")
class HintonKD(Objective):
    needs_teacher = True

    def __init__(self, temperature: float, alpha: float):
        self.temperature = temperature
        self.alpha = alpha

    def __call__(self, logits, labels, teacher_logits=None):
        t = self.temperature
        soft = F.kl_div(F.log_softmax(logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
                        reduction="batchmean", log_target=True) * (t * t)
        hard = F.cross_entropy(logits, labels)
        return self.alpha * soft + (1 - self.alpha) * hard, {"soft": soft, "hard": hard}
