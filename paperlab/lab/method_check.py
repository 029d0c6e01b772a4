"""`paperlab methods check NAME`: a method tried on the smoke pair (digits, the small CNN teacher and student of
the CIFAR templates' smoke profile) in seconds, before hours of training are spent on it. Each check is one
line: its parameters validate; the loss is a finite scalar; gradients reach the student and every trainable
part of the method, and not the teacher (the trainer runs the teacher without gradients: a method that runs it
again itself, or needs its gradient, fails here); two runs with one seed give the same loss; with only the CE
term weighted it is plain CE."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from paperlab.errors import BadInput

WEIGHTS = ("alpha", "beta", "gamma", "kd_weight", "feat_weight", "weight", "lam", "distance_weight",
           "angle_weight", "kl_weight")  # names of loss weights other than CE's


@dataclass
class Finding:
    check: str
    ok: bool
    detail: str = ""

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.check}" + (f": {self.detail}" if self.detail else "")


def _pair(seed: int):
    import torch

    from paperlab.lab import nets
    from paperlab.lab.spec import CNNSpec

    torch.manual_seed(seed)
    student = nets.build(CNNSpec(kind="cnn", channels=[4, 8, 16]), (1, 8, 8), 10)
    teacher = nets.build(CNNSpec(kind="cnn", channels=[16, 32, 64]), (1, 8, 8), 10).eval()
    return student, teacher


class _Trial:
    """One method on one batch of digits: built from a seed, its loss with the teacher run as training runs it."""

    def __init__(self, name: str, values: dict[str, Any]):
        import numpy as np
        import torch

        from paperlab.lab import data as datasets
        from paperlab.lab.distillers import Batch, get, parse_params
        from paperlab.settings import load

        self.cls, self.name = get(name), name
        self.params = parse_params(name, values)
        data = datasets.load("digits", None, load().data_dir)
        self.x = torch.from_numpy(np.ascontiguousarray(data.x_train[:16]))
        self.y = torch.from_numpy(np.ascontiguousarray(data.y_train[:16])).long()
        self.labels = torch.from_numpy(np.ascontiguousarray(data.y_train[:64])).long()
        self.batch = Batch(self.x, self.y, torch.arange(16), 1, 0.0)

    def build(self, seed: int = 0, params=None):
        from paperlab.lab.distillers import Info

        student, teacher = _pair(seed)
        info = Info((1, 8, 8), 10, self.labels)
        method = self.cls(params or self.params, student, teacher if self.cls.taught else None, info)
        return student, teacher, method

    def loss(self, student, teacher, method):
        import torch

        from paperlab.lab.distillers import FEATURES
        from paperlab.lab.nets import as_out

        features = bool(method.needs & FEATURES)
        method.train()
        student.train()
        t_out = None
        if self.cls.taught:  # as the trainer runs it
            with torch.no_grad():
                t_out = as_out(teacher(self.x, features=features) if features else teacher(self.x))
        s_out = as_out(student(self.x, features=True) if features else student(self.x))
        loss, terms = method(s_out, t_out, self.batch)
        return loss, s_out


def check(name: str, values: dict[str, Any] | None = None) -> list[Finding]:
    """Every check, in order; a check that cannot run (the loss is not a tensor) ends the list there."""
    import torch
    import torch.nn.functional as F

    from paperlab.lab import extensions

    from paperlab.lab.distillers import get

    extensions.load()
    get(name)  # an unknown method is bad input (exit 2), not a failed check
    try:
        trial = _Trial(name, values or {})
    except BadInput as exc:
        return [Finding("parameters validate", False, str(exc))]
    found = [Finding("parameters validate", True, repr(trial.params.model_dump()))]
    student, teacher, method = _guarded(lambda: trial.build(0))
    for p in teacher.parameters():  # so that a method that runs the teacher itself would show it
        p.requires_grad_(True)
    loss, _ = _guarded(lambda: trial.loss(student, teacher, method))
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        return [*found, Finding("the loss is a scalar", False, f"it is {shape}; reduce it to one number (mean or sum)")]
    found.append(Finding("the loss is a scalar", True))
    value = loss.item()
    found.append(Finding("the loss is finite", math.isfinite(value), f"{value:.6g}"))
    _guarded(loss.backward)
    dead = [n for n, p in student.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    found.append(Finding("gradients reach the student", len(dead) < len(list(student.parameters())),
                         "" if len(dead) < len(list(student.parameters())) else "no student parameter gets one"))
    held = {id(p) for p in teacher.parameters()}
    if any(id(p) in held for p in method.parameters()):
        found.append(Finding("the method's parts are its own", False, "it holds the teacher as a submodule, so the "
                             "optimizer would train the teacher; keep only the teacher's outputs"))
    missing = [n for n, p in method.named_parameters() if p.requires_grad and id(p) not in held
               and (p.grad is None or not torch.any(p.grad != 0))]
    found.append(Finding("gradients reach every trainable part of the method", not missing,
                         f"none reaches {', '.join(missing[:5])}" if missing else
                         f"{sum(1 for _ in method.parameters())} parameter tensors"))
    if method.taught:
        reached = [n for n, p in teacher.named_parameters() if p.grad is not None and bool((p.grad != 0).any())]
        found.append(Finding("the teacher gets no gradient", not reached,
                             f"the loss reaches the teacher's {', '.join(reached[:3])}: the teacher is fixed; use "
                             "its outputs, which the trainer computes without gradients" if reached else ""))
    again = _guarded(lambda: trial.loss(*trial.build(0))[0]).item()
    found.append(Finding("two runs with one seed give the same loss", again == value or
                         (math.isnan(again) and math.isnan(value)), f"{value!r} then {again!r}"))
    found.append(_ce_only(trial, F))
    return found


def _ce_only(trial: _Trial, F) -> Finding:
    fields = type(trial.params).model_fields
    if "ce_weight" not in fields:
        return Finding("with only CE weighted the loss is plain CE", True, "no ce_weight parameter: not checked")
    values = trial.params.model_dump()
    values.update({k: 0.0 for k in WEIGHTS if k in fields and isinstance(values.get(k), (int, float))})
    if values.get("ce_weight") is not None:
        values["ce_weight"] = 1.0
    try:
        params = type(trial.params).model_validate(values)
    except Exception as exc:
        reason = str(exc).splitlines()[-1 if "Value error" not in str(exc) else 1].strip()[:120]
        return Finding("with only CE weighted the loss is plain CE", True, f"the other weights cannot all be 0 "
                       f"({reason}): not checked")
    student, teacher, method = _guarded(lambda: trial.build(0, params))
    loss, s_out = _guarded(lambda: trial.loss(student, teacher, method))
    ce = F.cross_entropy(s_out.logits, trial.y).item()
    ok = abs(loss.item() - ce) <= 1e-6 * max(1.0, abs(ce))
    return Finding("with only CE weighted the loss is plain CE", ok, f"{loss.item():.6g} against CE {ce:.6g}")


def _guarded(call):
    """Run the user's code; an exception in it is one line naming their file and line."""
    from paperlab.lab import extensions

    try:
        return call()
    except BadInput:
        raise
    except Exception as exc:
        at = extensions.where(exc)
        text = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        raise BadInput(f"{at}: {text}" if at else f"the method raised {text} (--debug for the traceback)") from exc
