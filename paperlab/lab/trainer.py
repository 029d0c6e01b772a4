"""The one training loop. It knows models, objectives, tensors and a schedule; nothing about methods.

Data stays in memory as tensors (on the GPU when training there) and is sliced per batch: no DataLoader,
no per-batch `.item()`. Every epoch is seeded from (seed, epoch), so a run resumed from its checkpoint
ends with the same numbers as one that never stopped.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from paperlab.errors import PaperlabError
from paperlab.lab.templates import TrainSpec


@dataclass
class Tensors:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    teacher_train: torch.Tensor | None = None  # the teacher's logits for x_train, for distillers


@dataclass
class EpochLog:
    epoch: int
    train_loss: float
    val_error: int
    val_acc: float
    lr: float
    epoch_seconds: float
    samples_per_s: float
    terms: dict[str, float] = field(default_factory=dict)


@dataclass
class FitResult:
    history: list[EpochLog]
    best_epoch: int
    best_state: dict
    last_state: dict


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise PaperlabError("--device cuda: no CUDA device is available here (try --device auto)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise PaperlabError("--device mps: no Apple GPU is available here (try --device auto)")
    if name not in ("cpu", "cuda", "mps"):
        from paperlab.errors import BadInput

        raise BadInput(f"unknown device {name!r} (auto, cpu, cuda or mps)")
    return torch.device(name)


def jitter(x: torch.Tensor, pixels: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by its own random (dy, dx) in [-pixels, pixels], filling with zeros."""
    if pixels == 0:
        return x
    b, c, h, w = x.shape
    shifts = torch.randint(0, 2 * pixels + 1, (2, b), generator=generator, device=x.device)  # no host sync
    padded = F.pad(x, (pixels, pixels, pixels, pixels)).permute(0, 2, 3, 1)
    rows = torch.arange(h, device=x.device)[None, :] + shifts[0][:, None]
    cols = torch.arange(w, device=x.device)[None, :] + shifts[1][:, None]
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    model.eval()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=x.device.type == "cuda")
    with autocast:
        return torch.cat([model(x[i:i + chunk]).float() for i in range(0, len(x), chunk)])


def _optimizer(model, spec: TrainSpec):
    if spec.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)


def _save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a kill -9 mid-write leaves the previous checkpoint intact


def _cpu_state(model) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def fit(model, objective, data: Tensors, spec: TrainSpec, *, seed: int, label: str, jitter_pixels: int = 0,
        checkpoint: Path | None = None, resume: bool = False,
        on_epoch: Callable[[EpochLog], None] | None = None) -> FitResult:
    device = data.x_train.device
    optimizer = _optimizer(model, spec)
    steps_per_epoch = math.ceil(len(data.x_train) / spec.batch_size)
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=spec.epochs)
                 if spec.schedule == "cosine" else torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0))
    history: list[EpochLog] = []
    best_epoch, best_error, best_state = 0, None, _cpu_state(model)
    start_epoch = 1
    if resume and checkpoint is not None and checkpoint.exists():
        saved = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        history = [EpochLog(**h) for h in saved["history"]]
        best_epoch, best_error, best_state = saved["best_epoch"], saved["best_error"], saved["best_state"]
        start_epoch = saved["epoch"] + 1
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    n = len(data.x_train)
    from paperlab.lab.progress import for_terminal

    progress = for_terminal(label, spec.epochs, steps_per_epoch)
    try:
        for epoch in range(start_epoch, spec.epochs + 1):
            torch.manual_seed(seed * 100_003 + epoch)  # dropout
            order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7_919 + epoch)).to(device)
            shifts = torch.Generator(device=device).manual_seed(seed * 7_919 + epoch)  # jitter, on the device
            model.train()
            started = time.perf_counter()
            total = torch.zeros((), device=device)
            terms_total: dict[str, torch.Tensor] = {}
            for step in range(steps_per_epoch):
                idx = order[step * spec.batch_size:(step + 1) * spec.batch_size]
                x = jitter(data.x_train[idx], jitter_pixels, shifts)
                teacher = data.teacher_train[idx] if data.teacher_train is not None else None
                with autocast:
                    logits = model(x).float()
                loss, terms = objective(logits, data.y_train[idx], teacher)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if hasattr(model, "apply_constraints"):
                    model.apply_constraints()
                total += loss.detach() * len(idx)
                for key, value in terms.items():
                    terms_total[key] = terms_total.get(key, 0) + value.detach() * len(idx)
                progress.step()
            lr = optimizer.param_groups[0]["lr"]
            scheduler.step()
            train_loss = float(total) / n  # one device sync per epoch
            if not math.isfinite(train_loss):
                raise PaperlabError(f"{label}: the training loss became {train_loss} in epoch {epoch}; "
                                    f"lower train.lr (now {spec.lr}) and run again")
            val_error = int((predict(model, data.x_val).argmax(1) != data.y_val).sum())
            seconds = time.perf_counter() - started
            log = EpochLog(epoch, train_loss, val_error, 1 - val_error / len(data.y_val), lr, seconds,
                           n / seconds, {k: float(v) / n for k, v in terms_total.items()})
            history.append(log)
            if best_error is None or val_error < best_error:
                best_epoch, best_error, best_state = epoch, val_error, _cpu_state(model)
            if on_epoch is not None:
                on_epoch(log)
            progress.epoch(log)
            if checkpoint is not None:
                _save(checkpoint, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                   "scheduler": scheduler.state_dict(), "history": [asdict(h) for h in history],
                                   "best_epoch": best_epoch, "best_error": best_error, "best_state": best_state,
                                   "epoch": epoch})
    finally:
        progress.close()
    return FitResult(history, best_epoch, best_state, _cpu_state(model))
