"""A dataset made ready for training on a device: the validation split held out of the training images (by
the run's seed), the channels normalised where the template says so, or GCN + ZCA whitening fitted on the
training split; the fill of a shifted image's border; what a method may size itself by."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from paperlab.lab import data as datasets
from paperlab.lab.distillers import Info
from paperlab.lab.spec import RunSpec
from paperlab.lab.trainer import Tensors


@dataclass
class Prepared:
    tensors: Tensors                # training and validation splits
    x_test: torch.Tensor
    y_test: torch.Tensor
    fill: torch.Tensor | None       # black, normalised: the border of a shifted image (None: 0)
    info: Info


def check_classes(spec: RunSpec, data) -> None:
    """Every stage's omit_classes and shift_classes name classes of the data (a -5 shifted class 5, a 99 was
    found only after training, an omitted 99 left out nothing)."""
    from paperlab.errors import BadInput

    n = len(data.classes)
    for stage in spec.stages:
        for key in ("omit_classes", "shift_classes"):
            bad = [c for c in getattr(stage, key) if not 0 <= c < n]
            if bad:
                raise BadInput(f"stage {stage.name!r}: {key} {bad} are not classes of {data.name} (0 to {n - 1})")


def prepare(spec: RunSpec, data, device: torch.device) -> Prepared:
    check_classes(spec, data)
    train_idx, val_idx = datasets.split_validation(len(data.y_train), spec.train.val_size, spec.seed)
    mean = std = None
    if spec.normalize:
        m, s = data.stats()
        mean = torch.tensor(m, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        std = torch.tensor(s, dtype=torch.float32, device=device).view(1, -1, 1, 1)

    def put(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(a)).to(device)
        return (t - mean) / std if mean is not None and t.is_floating_point() else t

    tensors = Tensors(put(data.x_train[train_idx]), put(data.y_train[train_idx]),
                      put(data.x_train[val_idx]), put(data.y_train[val_idx]))
    x_test, y_test = put(data.x_test), put(data.y_test)
    if spec.whiten == "gcn-zca":
        from paperlab.lab.data.whiten import GcnZca

        zca = GcnZca.fit(tensors.x_train)
        tensors = Tensors(zca(tensors.x_train), tensors.y_train, zca(tensors.x_val), tensors.y_val)
        x_test = zca(x_test)
    fill = None if mean is None else -mean / std
    info = Info(tuple(data.x_train.shape[1:]), len(data.classes), tensors.y_train)
    return Prepared(tensors, x_test, y_test, fill, info)
