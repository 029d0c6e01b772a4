"""Mean teacher (Tarvainen & Valpola 2017, arXiv 1703.01780), the EMA teacher of momentum distillation: the
teacher is an exponential moving average of the student's weights, updated every step, and the student is
pulled towards the teacher's predictions.

    theta'_t = decay * theta'_{t-1} + (1 - decay) * theta_t      (BN statistics copied from the student)
    consistency = mean over batch of || softmax(s) - softmax(teacher(x)) ||^2  (summed over classes)
    w(progress) = weight * exp(-5 (1 - min(epoch / rampup_epochs, 1))^2)
    loss = CE over the labelled examples of the batch + w * consistency

`labeled: N` keeps the labels of N training examples (a fixed draw) and treats the rest as unlabelled, the
paper's semi-supervised setting (CIFAR-10 with 4,000 labels). `ce_over: batch` divides the labelled
examples' summed CE by the whole batch, as the authors' TensorFlow code does (classification_costs), rather
than by the labelled count. `teacher_dropout: true` runs the teacher in training mode (its dropout on, batch
statistics), as that code's EMA tower does; by default it runs in eval mode. The paper gives the teacher
and the student different noise; here both see the same augmented batch, and only dropout differs. The
stage's model is the student (its errors are the stage's); the EMA teacher lives in the method, is
checkpointed with it, and is evaluated beside the student as the shadow `ema` (`val_error_ema` each epoch,
`test_error_ema_last` at the end).
"""

from __future__ import annotations

import copy
import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from paperlab.lab.distillers.base import Distiller, Params, register


@torch.no_grad()
def ema_update(teacher: torch.nn.Module, student: torch.nn.Module, decay: float) -> None:
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.mul_(decay).add_(s.detach(), alpha=1 - decay)
    for t, s in zip(teacher.buffers(), student.buffers()):
        t.copy_(s)


def rampup(epoch: int, epochs: int) -> float:
    return 1.0 if epochs == 0 else math.exp(-5 * (1 - min(epoch / epochs, 1.0)) ** 2)


@register("mean-teacher")
class MeanTeacher(Distiller):
    class Params(Params):
        decay: float = Field(0.99, ge=0, lt=1)
        weight: float = Field(10.0, ge=0)
        rampup_epochs: int = Field(5, ge=0)
        labeled: int | None = Field(None, gt=0)
        ce_over: Literal["labeled", "batch"] = "labeled"
        teacher_dropout: bool = False

    needs = frozenset()
    taught = False

    def __init__(self, params, student, teacher, info):
        super().__init__(params, student, teacher, info)
        self._student = [student]  # a reference, not a submodule: its weights are the trainer's
        self.ema = copy.deepcopy(student)
        for p in self.ema.parameters():
            p.requires_grad_(False)
        n = len(info.train_labels)
        mask = torch.ones(n, dtype=torch.bool)
        if params.labeled is not None and params.labeled < n:
            mask[:] = False
            mask[torch.randperm(n, generator=torch.Generator().manual_seed(0))[:params.labeled]] = True
        self.register_buffer("is_labeled", mask.to(info.train_labels.device))

    def shadows(self):
        return {"ema": self.ema}

    def forward(self, s, t, b):
        if self.training:
            ema_update(self.ema, self._student[0], self.p.decay)
        self.ema.train(self.training and self.p.teacher_dropout)
        with torch.no_grad():
            target = F.softmax(self.ema(b.x), dim=1)
        consistency = (F.softmax(s.logits, dim=1) - target).pow(2).sum(1).mean()
        labeled = self.is_labeled[b.index]
        if self.p.ce_over == "batch":
            ce = (F.cross_entropy(s.logits, b.y, reduction="none") * labeled).sum() / len(labeled)
        else:
            ce = F.cross_entropy(s.logits[labeled], b.y[labeled]) if bool(labeled.any()) else s.logits.sum() * 0
        weight = self.p.weight * rampup(b.epoch, self.p.rampup_epochs)
        return ce + weight * consistency, {"ce": ce, "consistency": consistency}
