"""Hinton, Vinyals & Dean (2015), arXiv 1503.02531: soft targets at temperature T, weighted by alpha, plus
hard labels weighted by 1 - alpha.

    soft = T^2 * mean over the batch of KL(softmax(t/T) || softmax(s/T))

`batchmean`, not the element-wise mean that also divides by the class count (the bug of the widely copied
`loss_fn_kd`); the T^2 factor keeps the gradients' size as T changes (section 2). CRD's benchmark runs it
with T=4, CE weight 0.1 and KD weight 0.9, i.e. alpha=0.9. `kd_weight` and `ce_weight`, where given,
replace alpha and 1 - alpha (logit standardisation's recipe weighs KD by 9).

`standardize: true` is the plug-in of Sun et al. (CVPR 2024, arXiv 2403.01427): each sample's logits are
z-scored, (z - mean) / std over the classes, before the temperature (then a "base temperature" of about 2),
for teacher and student alike, so the student matches the teacher's logit relations, not their scale.
The std is the sample one (n - 1), as the authors' code computes it (`logit.std(dim=-1)` in
logit-standardization-KD's mdistiller/distillers/KD.py and DKD.py); the paper's formula writes the
population one, 1.0 % apart at 100 classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from paperlab.lab.distillers.base import Distiller, Params, register


def soft_kl(student_logits, teacher_logits, t):
    return F.kl_div(F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
                    reduction="batchmean", log_target=True) * (t * t)


def standardize(logits: torch.Tensor) -> torch.Tensor:
    return (logits - logits.mean(1, keepdim=True)) / (logits.std(1, keepdim=True) + 1e-7)


@register("kd")
class HintonKD(Distiller):
    class Params(Params):
        temperature: float = Field(gt=0, le=1000)
        alpha: float | None = Field(None, ge=0, le=1)
        kd_weight: float | None = Field(None, ge=0)
        ce_weight: float | None = Field(None, ge=0)
        standardize: bool = False

        @model_validator(mode="after")
        def _weights(self):
            if (self.alpha is None) == (self.kd_weight is None and self.ce_weight is None):
                raise ValueError("give alpha, or kd_weight and ce_weight")
            if self.alpha is None and (self.kd_weight is None or self.ce_weight is None):
                raise ValueError("give both kd_weight and ce_weight")
            return self

        def weights(self) -> tuple[float, float]:
            return (self.alpha, 1 - self.alpha) if self.alpha is not None else (self.kd_weight, self.ce_weight)

    def forward(self, s, t, b):
        zs, zt = (standardize(s.logits), standardize(t.logits)) if self.p.standardize else (s.logits, t.logits)
        soft = soft_kl(zs, zt, self.p.temperature)
        hard = F.cross_entropy(s.logits, b.y)
        kd_weight, ce_weight = self.p.weights()
        return kd_weight * soft + ce_weight * hard, {"soft": soft, "hard": hard}
