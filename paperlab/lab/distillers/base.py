"""An objective turns a batch's logits into a loss and named loss terms. A distiller is an objective that
also sees the teacher's logits for the same examples; the trainer knows nothing more about it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

REGISTRY: dict[str, type["Objective"]] = {}


def register(name: str):
    def decorate(cls: type["Objective"]) -> type["Objective"]:
        REGISTRY[name] = cls
        cls.name = name
        return cls

    return decorate


def get(name: str) -> type["Objective"]:
    from paperlab.errors import BadInput

    if name not in REGISTRY:
        raise BadInput(f"unknown distillation method {name!r} (methods: {', '.join(sorted(REGISTRY))})")
    return REGISTRY[name]


class Objective:
    name = "objective"
    needs_teacher = False

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor,
                 teacher_logits: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError


@register("ce")
class CrossEntropy(Objective):
    """Hard labels only: the teacher and the baseline student."""

    def __call__(self, logits, labels, teacher_logits=None):
        loss = F.cross_entropy(logits, labels)
        return loss, {"ce": loss}
