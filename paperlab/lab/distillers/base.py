"""A method is an `nn.Module`: it sees the student's outputs, the teacher's (or None) and the batch, and
returns a loss with its named terms. Its trainable parts (connectors, embedders) and buffers (a memory
bank) are optimised, moved and checkpointed with the student; the trainer knows nothing more about it."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn

from paperlab.errors import BadInput
from paperlab.lab.nets import Out, as_out

REGISTRY: dict[str, type["Distiller"]] = {}
FEATURES = frozenset({"feats", "preact", "pooled", "peers"})  # outputs beyond the logits


@dataclass
class Batch:
    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor   # positions in the training set (memory banks, per-sample state)
    epoch: int            # 1-based
    progress: float       # 0..1 over the whole stage


@dataclass
class Info:
    """What a method may size itself by."""
    shape: tuple[int, ...]       # one input's (channels, height, width)
    classes: int
    train_labels: torch.Tensor   # on the training device; len() is the training-set size


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def register(name: str):
    """Register a method under `name` (the shipped ones, a user's $PAPERLAB_HOME/methods/*.py, a package's entry
    point `paperlab.methods`); a user's method of a shipped method's name replaces it, with a warning."""
    def decorate(cls: type["Distiller"]) -> type["Distiller"]:
        if name in REGISTRY and REGISTRY[name].__module__ != cls.__module__:
            import sys

            print(f"warning: the method {name!r} of {cls.__module__} replaces the one of {REGISTRY[name].__module__}",
                  file=sys.stderr)
        REGISTRY[name] = cls
        cls.name = name
        return cls

    return decorate


def get(name: str) -> type["Distiller"]:
    if name not in REGISTRY:  # a user's method: $PAPERLAB_HOME/methods/*.py and packages' entry points
        from paperlab.lab import extensions

        extensions.load()
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, list(REGISTRY), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise BadInput(f"unknown distillation method {name!r}{hint} (methods: {', '.join(sorted(REGISTRY))})")
    return REGISTRY[name]


def parse_params(method: str, values: dict[str, Any], where: str = "distill") -> Params:
    """The method's own `distill:` block, validated; unknown keys come back with the valid ones."""
    cls = get(method).Params
    try:
        return cls.model_validate(values or {})
    except ValidationError as exc:
        errors = exc.errors()
        err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            valid = sorted(cls.model_fields)
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f"; did you mean '{where}.{close[0]}'?" if close else ""
            raise BadInput(f"unknown key '{where}.{key}' for method {method!r}{hint} "
                           f"(valid keys: {', '.join(valid) or 'none'})") from None
        raise BadInput(f"bad value for '{where}.{key}': {err['msg']} (got {err.get('input')!r})") from None


@torch.no_grad()
def probe(model: nn.Module, info: Info) -> Out:
    """One forward of two blank inputs, to size connectors; the model's mode and BN statistics are kept."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = as_out(model(torch.zeros(2, *info.shape, device=device), features=True))
    model.train(was_training)
    return out


def same_size(fs: torch.Tensor, ft: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two feature maps brought to one spatial size: the larger is average-pooled to the smaller."""
    if fs.shape[-1] > ft.shape[-1]:
        fs = F.adaptive_avg_pool2d(fs, ft.shape[-2:])
    elif ft.shape[-1] > fs.shape[-1]:
        ft = F.adaptive_avg_pool2d(ft, fs.shape[-2:])
    return fs, ft


def feature_maps(student: nn.Module, teacher: nn.Module, info: Info, name: str) -> tuple[list, list]:
    """Both nets' feature maps (probed), refused with a clear message where a net has none."""
    s, t = probe(student, info).feats, probe(teacher, info).feats
    if not s or not t or any(f.dim() != 4 for f in s + t):
        raise BadInput(f"{name}: both nets need convolutional feature maps (an MLP has none); "
                       f"use a cnn or CIFAR net")
    return s, t


def paired_maps(student: nn.Module, teacher: nn.Module, info: Info, name: str, skip: int,
                kind: str = "feats") -> tuple[list, list]:
    """The feature maps (or their pre-activations: kind="preact") of both nets after the first `skip`,
    stage by stage; refused unless both nets have the same number, more than `skip`."""
    feature_maps(student, teacher, info, name)
    s, t = getattr(probe(student, info), kind), getattr(probe(teacher, info), kind)
    if len(s) != len(t) or len(s) <= skip:
        raise BadInput(f"{name}: the nets need the same number of feature maps, more than distill.skip "
                       f"(student {len(s)}, teacher {len(t)})")
    return s[skip:], t[skip:]


class Distiller(nn.Module):
    Params: ClassVar[type[Params]] = Params
    needs: ClassVar[frozenset[str]] = frozenset({"logits"})  # outputs asked of the nets: logits, feats, ...
    taught: ClassVar[bool] = True  # False: the stage takes no teacher (ce, teacher-free, self-distillation)
    frozen_model: ClassVar[bool] = False  # True: the model stays in eval mode; the method trains its own parts
    name: ClassVar[str] = "distiller"

    def __init__(self, params: Params, student: nn.Module, teacher: nn.Module | None, info: Info):
        super().__init__()
        self.p = params

    def forward(self, s: Out, t: Out | None, b: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def shadows(self) -> dict[str, nn.Module]:
        """Models the method trains beside the student (mean teacher's EMA), by name: the trainer logs their
        validation errors each epoch (`val_error_<name>`) and the runner their test errors at the last
        epoch (`test_error_<name>_last`). The stage's own numbers stay the student's."""
        return {}


@register("ce")
class CrossEntropy(Distiller):
    """Hard labels only: teachers and baseline students."""
    needs = frozenset()
    taught = False

    def forward(self, s, t, b):
        loss = F.cross_entropy(s.logits, b.y)
        return loss, {"ce": loss}
