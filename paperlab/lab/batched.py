"""Seeds as one model: N copies of one net trained together as a single batched model.

The copies' parameters are stacked along a new first dimension (`torch.func.stack_module_state`) and the
net runs once per step for all of them (`torch.func.vmap` over `functional_call`): one launch of each layer
for N seeds instead of N. Each copy keeps what makes it its own run: its initial weights, its data order
(the same `randperm` per (seed, epoch) as `trainer.fit`), its augmentation draws, its objective (so sweep
points that differ only in scalar settings such as temperature can share a batch), and its best epoch on
the validation split. The optimizer works on the stacked tensors; SGD and Adam are elementwise, so each
copy's update is the one it would get alone, and the loss is the sum of the copies' mean losses, so each
copy's gradient is its own. Numbers therefore match N separate `trainer.fit` runs up to floating-point
reduction order (tests/test_batched.py checks this on CPU).

Limits: nets with batch norm are refused (running statistics cannot be updated under vmap); dropout draws
differ from separate runs (vmap's randomness="different"), so only nets without dropout match exactly.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import torch

from paperlab.errors import BadInput, PaperlabError
from paperlab.lab.distillers.base import FEATURES, Batch
from paperlab.lab.nets import Out
from paperlab.lab.spec import TrainSpec
from paperlab.lab.data.augment import Augment
from paperlab.lab.schedule import epoch_settings, optimizer_for, scheduler_for
from paperlab.lab.trainer import EpochLog, FitResult, Tensors


@dataclass
class Copy:
    """One copy: its net (initialised from its seed), its objective, its seed, its teacher's logits."""
    model: torch.nn.Module
    objective: torch.nn.Module
    seed: int
    teacher_train: torch.Tensor | None = None


def batch_copy(run, stage):
    """A run's copy of a stage for seeds-as-one-model training (lab/pipeline.Run), with its transfer set and
    augmentation; or None where the stage must train on its own: done or cached already, a phase, a cohort or
    an ensemble, a net with batch norm or dropout (whose numbers would then differ from a run of its own), a
    method with features or parameters, or a teacher whose logits cannot be computed once."""
    from paperlab.lab.pipeline import teacher_logits_once
    from paperlab.lab.trainer import predict

    if stage.name in run.state["stages"] or stage.ensemble or stage.peers > 1 or stage.init \
            or stage.method_from or stage.shift_classes:
        return None
    if run.spec.cached(stage) and not run.retrain and run.read_cache(stage) is not None:
        return None
    model = run.build(stage)
    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) or (isinstance(m, torch.nn.Dropout) and m.p)
           for m in model.modules()):
        return None
    teacher = run.trained(stage.teacher) if stage.teacher else None
    tensors = run.transfer_set(stage)
    objective = run.method(stage, model, teacher, tensors)
    if objective.needs & FEATURES or any(True for _ in objective.parameters()) or objective.shadows() or \
            (teacher is not None and not teacher_logits_once(objective, run.spec.model_spec(stage.model))):
        return None
    logits = predict(teacher, tensors.x_train) if teacher is not None else None
    return Copy(model, objective, run.spec.seed, logits), tensors, run.augment(stage.model)


def _check(copies: list[Copy]) -> None:
    kinds = {type(c.model) for c in copies}
    if len(kinds) != 1:
        raise BadInput("seeds as one model need copies of one net; got " + ", ".join(k.__name__ for k in kinds))
    for module in copies[0].model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            raise BadInput("seeds as one model: nets with batch norm are not supported (its running statistics "
                           "cannot be updated under vmap); train the seeds one by one")
    for c in copies:
        if c.objective.needs & FEATURES:
            raise BadInput("seeds as one model take logit methods only (the objective asks for features)")
        if any(True for _ in c.objective.parameters()):
            raise BadInput("seeds as one model take objectives without parameters of their own")


def _constrain(base: torch.nn.Module, params: dict[str, torch.Tensor]) -> None:
    """The copies' max-norm constraint (1207.0580), row by row of every stacked Linear weight."""
    limit = getattr(base, "max_norm", None)
    if limit is None:
        return
    with torch.no_grad():
        for name, value in params.items():
            if name.endswith("weight") and value.dim() == 3:
                n, rows, cols = value.shape
                value.copy_(torch.renorm(value.reshape(n * rows, cols), 2, 0, limit).reshape(n, rows, cols))


def fit_copies(copies: list[Copy], data: Tensors | list[Tensors], spec: TrainSpec, *,
               augment: Augment | None = None, label: str = "seeds") -> list[FitResult]:
    """Train every copy for `spec`; one FitResult per copy, as `trainer.fit` returns for one run. `data` is
    shared, or one Tensors per copy (seeds hold out their own validation split) of equal sizes."""
    from torch.func import functional_call, stack_module_state, vmap

    _check(copies)
    datas = data if isinstance(data, list) else [data] * len(copies)
    if len({(len(d.x_train), len(d.x_val)) for d in datas}) != 1:
        raise BadInput("seeds as one model need training and validation sets of one size for every copy")
    augment = augment or Augment()
    device = datas[0].x_train.device
    x_val = torch.stack([d.x_val for d in datas])
    y_val = torch.stack([d.y_val for d in datas])
    base = copy.deepcopy(copies[0].model).to("meta")
    params, buffers = stack_module_state([c.model for c in copies])
    params = {k: torch.nn.Parameter(v.detach().clone()) for k, v in params.items()}
    optimizer = optimizer_for(list(params.values()), spec)
    scheduler = scheduler_for(optimizer, spec)
    dropout = any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in base.modules())

    def run(p, b, x):
        return functional_call(base, (p, b), (x,))

    forward = vmap(run, randomness="different" if dropout else "error")
    n, steps = len(datas[0].x_train), math.ceil(len(datas[0].x_train) / spec.batch_size)
    histories: list[list[EpochLog]] = [[] for _ in copies]
    best = [(0, None, None)] * len(copies)
    for epoch in range(1, spec.epochs + 1):
        torch.manual_seed(copies[0].seed * 100_003 + epoch)
        orders = [torch.randperm(n, generator=torch.Generator().manual_seed(c.seed * 7_919 + epoch)).to(device)
                  for c in copies]
        draws = [torch.Generator(device=device).manual_seed(c.seed * 7_919 + epoch) for c in copies]
        epoch_settings(optimizer, spec, epoch - 1)
        base.train()
        started = time.perf_counter()
        totals = torch.zeros(len(copies), device=device)
        for step in range(steps):
            idx = [o[step * spec.batch_size:(step + 1) * spec.batch_size] for o in orders]
            x = torch.stack([augment(d.x_train[i], g) for d, i, g in zip(datas, idx, draws)])
            logits = forward(params, buffers, x)
            losses = []
            for k, c in enumerate(copies):
                t_out = Out(c.teacher_train[idx[k]]) if c.teacher_train is not None else None
                batch = Batch(x[k], datas[k].y_train[idx[k]], idx[k], epoch, (epoch - 1 + step / steps) / spec.epochs)
                loss, _ = c.objective(Out(logits[k]), t_out, batch)
                losses.append(loss)
            stacked = torch.stack(losses)
            optimizer.zero_grad(set_to_none=True)
            stacked.sum().backward()
            optimizer.step()
            _constrain(base, params)
            totals += stacked.detach() * len(idx[0])
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        base.eval()
        with torch.no_grad():
            wrong = (forward(params, buffers, x_val).argmax(2) != y_val).sum(1).tolist()
        seconds = time.perf_counter() - started
        for k, loss in enumerate(totals.tolist()):
            if not math.isfinite(loss):
                raise PaperlabError(f"{label}: seed {copies[k].seed}'s training loss became {loss} in epoch "
                                    f"{epoch}; lower train.lr (now {spec.lr}) and run again")
            histories[k].append(EpochLog(epoch, loss / n, wrong[k], 1 - wrong[k] / y_val.shape[1], lr, seconds,
                                         n * len(copies) / seconds))
            if best[k][1] is None or wrong[k] < best[k][1]:
                best[k] = (epoch, wrong[k], _state_of(params, buffers, k))
    return [FitResult(histories[k], best[k][0], best[k][2], _state_of(params, buffers, k))
            for k in range(len(copies))]


def _state_of(params: dict, buffers: dict, k: int) -> dict:
    """Copy k's weights as a plain state dict (on the CPU), loadable into one net of the copies' kind."""
    return {name: value[k].detach().to("cpu", copy=True) for name, value in {**params, **buffers}.items()}
