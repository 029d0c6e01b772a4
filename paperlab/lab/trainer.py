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

from paperlab.errors import PaperlabError
from paperlab.lab import distributed as dd
from paperlab.lab.distillers.base import FEATURES, Batch
from paperlab.lab.nets import Out, as_out
from paperlab.lab.data.augment import Augment
from paperlab.lab.schedule import epoch_settings, optimizer_for, scheduler_for
from paperlab.lab.spec import COMPILE_MODES, TrainSpec


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
    shadow_val_errors: dict[str, int] = field(default_factory=dict)  # the method's shadow models (Distiller.shadows)


@dataclass
class FitResult:
    history: list[EpochLog]
    best_epoch: int
    best_state: dict
    last_state: dict
    resumed_epochs: int = 0  # epochs read back from the checkpoint: trained by an earlier process


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


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    model.eval()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=x.device.type == "cuda")
    with autocast:
        return torch.cat([model(x[i:i + chunk]).float() for i in range(0, len(x), chunk)])


def save_atomic(obj, path: Path) -> None:
    """torch.save to a temporary name, then rename: a kill -9 mid-write leaves the previous file intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _cpu_state(model) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def load_checkpoint(path: Path, device) -> dict:
    """Tensors and plain data only (weights_only): a planted pickle cannot run code."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise PaperlabError(f"cannot resume from {path}: it is damaged or not a paperlab checkpoint "
                            f"({type(exc).__name__}); remove it or run without --resume") from None


def _floats(out: Out) -> Out:
    """Outputs computed under bf16 autocast, back in float32 for the loss."""
    if out.logits.dtype == torch.float32:
        return out
    f = lambda ts: [t.float() for t in ts]  # noqa: E731
    return Out(out.logits.float(), f(out.feats), f(out.preact), None if out.pooled is None else out.pooled.float(),
               f(out.peers))


def _val_error(model, x: torch.Tensor, y: torch.Tensor) -> int:
    """Validation errors; each rank counts its own slice and the counts are summed."""
    part = slice(dd.rank() * len(y) // dd.world(), (dd.rank() + 1) * len(y) // dd.world())
    return int(dd.total((predict(model, x[part]).argmax(1) != y[part]).sum()))


def compiled(module: torch.nn.Module, mode: str | None):
    """The module's forward through `torch.compile` (mode 'reduce-overhead' replays CUDA graphs on a GPU); the
    module itself where mode is None. Its weights are the module's own: training the one trains the other."""
    if mode is None:
        return module
    if mode not in COMPILE_MODES:
        from paperlab.errors import BadInput

        raise BadInput(f"unknown compile mode {mode!r} ({', '.join(COMPILE_MODES)}, or off)")
    return torch.compile(module, mode=mode)


def fit(model, objective, data: Tensors, spec: TrainSpec, *, seed: int, label: str, augment: Augment | None = None,
        teacher: torch.nn.Module | None = None, checkpoint: Path | None = None, resume: bool = False,
        on_epoch: Callable[[EpochLog], None] | None = None, compile_mode: str | None = None) -> FitResult:
    """Train `model` on `objective` (a `Distiller`; its own parameters train too). The teacher's outputs
    come from `data.teacher_train` when given (logits computed once), else from `teacher` per batch. With
    `compile_mode`, the nets' forward (and so their backward) run through `torch.compile`; the method, the
    optimizer and validation stay eager."""
    device = data.x_train.device
    augment = augment or Augment()
    optimizer = optimizer_for([*model.parameters(), *objective.parameters()], spec)
    steps_per_epoch = math.ceil(len(data.x_train) / spec.batch_size)
    scheduler = scheduler_for(optimizer, spec)
    history: list[EpochLog] = []
    best_epoch, best_error, best_state = 0, None, _cpu_state(model)
    start_epoch = 1
    if resume and checkpoint is not None and checkpoint.exists():
        saved = load_checkpoint(checkpoint, device)
        model.load_state_dict(saved["model"])
        objective.load_state_dict(saved["objective"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        history = [EpochLog(**h) for h in saved["history"]]
        best_epoch, best_error, best_state = saved["best_epoch"], saved["best_error"], saved["best_state"]
        start_epoch = saved["epoch"] + 1
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    wants_features = bool(objective.needs & FEATURES)
    uses_teacher = bool(objective.needs) and (data.teacher_train is not None or teacher is not None)
    if teacher is not None:
        teacher.eval()
    n = len(data.x_train)
    from paperlab.lab.progress import for_terminal

    net, method = dd.wrap(model), dd.wrap(objective, buffers=False)  # the identity in a single process
    net, teach = compiled(net, compile_mode), teacher if teacher is None else compiled(teacher, compile_mode)
    graphs = compile_mode is not None and hasattr(torch.compiler, "cudagraph_mark_step_begin")
    lane = dd.rank() * 1_000_003  # ranks draw their own dropout and augmentation; 0 in a single process
    progress = for_terminal(label if dd.leader() else None, spec.epochs, steps_per_epoch)
    try:
        for epoch in range(start_epoch, spec.epochs + 1):
            torch.manual_seed(seed * 100_003 + epoch + lane)  # dropout, a method's sampling
            order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7_919 + epoch)).to(device)
            draws = torch.Generator(device=device).manual_seed(seed * 7_919 + epoch + lane)  # augmentation
            epoch_settings(optimizer, spec, epoch - 1)
            model.train(not objective.frozen_model)  # a phase that trains only the method's parts (FT's)
            objective.train()
            started = time.perf_counter()
            total = torch.zeros((), device=device)
            terms_total: dict[str, torch.Tensor] = {}
            for step in range(steps_per_epoch):
                if graphs:  # a new step: the previous step's graph outputs may be overwritten
                    torch.compiler.cudagraph_mark_step_begin()
                idx, weight = dd.shard(order[step * spec.batch_size:(step + 1) * spec.batch_size])  # this rank's
                x = augment(data.x_train[idx], draws)
                t_out = None
                if uses_teacher:
                    if data.teacher_train is not None:
                        t_out = Out(data.teacher_train[idx])
                    else:
                        with torch.no_grad(), autocast:
                            t_out = _floats(as_out(teach(x, features=wants_features)))
                with autocast:
                    s_out = as_out(net(x, features=True) if wants_features else net(x))
                batch = Batch(x, data.y_train[idx], idx, epoch, (epoch - 1 + step / steps_per_epoch) / spec.epochs)
                loss, terms = method(_floats(s_out), t_out, batch)
                optimizer.zero_grad(set_to_none=True)
                (loss if weight == 1.0 else loss * weight).backward()
                optimizer.step()
                if hasattr(model, "apply_constraints"):
                    model.apply_constraints()
                rows = len(idx) if weight else 0
                total += loss.detach() * rows
                for key, value in terms.items():
                    terms_total[key] = terms_total.get(key, 0) + value.detach() * rows
                progress.step()
            lr = optimizer.param_groups[0]["lr"]
            scheduler.step()
            train_loss = float(dd.total(total)) / n  # one device sync per epoch
            if not math.isfinite(train_loss):
                raise PaperlabError(f"{label}: the training loss became {train_loss} in epoch {epoch}; "
                                    f"lower train.lr (now {spec.lr}) and run again")
            val_error = _val_error(model, data.x_val, data.y_val)
            seconds = time.perf_counter() - started
            log = EpochLog(epoch, train_loss, val_error, 1 - val_error / len(data.y_val), lr, seconds,
                           n / seconds, {k: float(dd.total(v)) / n for k, v in terms_total.items()},
                           {k: _val_error(m, data.x_val, data.y_val) for k, m in objective.shadows().items()})
            history.append(log)
            if best_error is None or val_error < best_error:
                best_epoch, best_error, best_state = epoch, val_error, _cpu_state(model)
            if on_epoch is not None:
                on_epoch(log)
            progress.epoch(log)
            if checkpoint is not None and dd.leader():
                save_atomic({"model": model.state_dict(), "objective": objective.state_dict(),
                                   "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                                   "history": [asdict(h) for h in history], "best_epoch": best_epoch,
                                   "best_error": best_error, "best_state": best_state, "epoch": epoch}, checkpoint)
    finally:
        progress.close()
    return FitResult(history, best_epoch, best_state, _cpu_state(model), start_epoch - 1)
