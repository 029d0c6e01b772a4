"""Optimizers and learning-rate schedules of a recipe (TrainSpec): SGD or Adam; cosine, constant, multistep,
exponential or mean teacher's sigmoid ramps, a linear warm-up, 1207.0580's momentum rise and (1 - momentum)
step; Adam's beta1 fall. Each is set per epoch and kept in the optimizer's state, so a resumed run goes on."""

from __future__ import annotations

import math

import torch

from paperlab.lab.spec import TrainSpec


def optimizer_for(params: list, spec: TrainSpec):
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay,
                           nesterov=spec.nesterov)


def sigmoid_ramps(e: int, up: int, down: int, total: int) -> float:
    """Mean teacher's rate factor after e epochs (its TensorFlow code's sigmoid_rampup and sigmoid_rampdown,
    counted in epochs rather than steps)."""
    rise = math.exp(-5.0 * (1.0 - e / up) ** 2) if e < up else 1.0
    fall = math.exp(-12.5 * (1.0 - (total - e) / down) ** 2) if down and e >= total - down else 1.0
    return rise * fall


def adam_beta1(spec: TrainSpec, e: int) -> float:
    """Mean teacher's Adam beta1 after e epochs: 0.9, falling to `adam_beta1_after` as the rate ramps down."""
    fall = sigmoid_ramps(e, 0, spec.rampdown_epochs, spec.epochs)
    return fall * 0.9 + (1 - fall) * spec.adam_beta1_after


def epoch_settings(optimizer, spec: TrainSpec, epochs_done: int) -> None:
    """What the recipe changes per epoch besides the rate: SGD's momentum (1207.0580's rise) and Adam's beta1
    (mean teacher's fall). Kept in the optimizer's state, so a resumed run carries them on."""
    for group in optimizer.param_groups:
        if "momentum" in group:
            group["momentum"] = spec.momentum_at(epochs_done)
        if "betas" in group and spec.adam_beta1_after is not None:
            group["betas"] = (adam_beta1(spec, epochs_done), group["betas"][1])


def scheduler_for(optimizer, spec: TrainSpec):
    """Stepped once per epoch: cosine, constant, multistep (x gamma at each milestone), exponential (x gamma
    each epoch) or mean teacher's sigmoid ramps (up over `warmup_epochs`, down over the last
    `rampdown_epochs`), with an optional linear warm-up over the first `warmup_epochs`, and the step scaled by
    (1 - momentum) where the recipe says so (1207.0580)."""
    sched = torch.optim.lr_scheduler
    if not spec.warmup_epochs and spec.schedule not in ("exponential", "ramps") and not spec.step_scaled_by_momentum:
        if spec.schedule == "cosine":
            return sched.CosineAnnealingLR(optimizer, T_max=spec.epochs)
        if spec.schedule == "multistep":
            return sched.MultiStepLR(optimizer, milestones=spec.milestones, gamma=spec.gamma)
        return sched.LambdaLR(optimizer, lambda _: 1.0)

    def factor(e: int) -> float:  # e: epochs done so far
        ramp = min(1.0, (e + 1) / spec.warmup_epochs) if spec.warmup_epochs else 1.0
        if spec.schedule == "ramps":
            ramp = sigmoid_ramps(e, spec.warmup_epochs, spec.rampdown_epochs, spec.epochs)
        elif spec.schedule == "cosine":
            ramp *= 0.5 * (1 + math.cos(math.pi * e / spec.epochs))
        elif spec.schedule == "multistep":
            ramp *= spec.gamma ** sum(e >= m for m in spec.milestones)
        elif spec.schedule == "exponential":
            ramp *= spec.gamma ** e
        return ramp * (1 - spec.momentum_at(e)) if spec.step_scaled_by_momentum else ramp

    return sched.LambdaLR(optimizer, factor)
