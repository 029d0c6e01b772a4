"""kd-hinton's MLP steps captured once as CUDA graphs and replayed (torch.cuda.graphs, by hand), against
today's eager loop (`trainer.fit`) in the same run (issue 11; `bench_trainer.py --compile reduce-overhead`
measures the same idea through torch.compile).

    python benchmarks/bench_cudagraph.py --device cuda [--data-dir DIR] [--epochs 3]

The `paper` profile's nets and batch (100): the teacher 784-1200-1200-10 with dropout, max-norm and a
2-pixel jitter, CE; the student 784-800-800-10 with KD at T 20, alpha 0.9 against the teacher's logits
computed once. One step (gather the batch by index on the device, jitter, forward, loss, backward, SGD with
momentum, max-norm) is captured whole; each step of an epoch then copies 100 indices into the graph's
input and replays it: no host sync inside an epoch. The rate and momentum are baked into the graph (the
recipe changes them per epoch; that needs them as tensors, not measured here). Steady epochs (after the
first) are compared; the student, without dropout or jitter, is also checked against the same step run
eagerly from the same weights and order (max weight difference printed). Without CUDA only the two eager
loops are measured. Images: Fashion-MNIST (Debian's dataset-fashion-mnist or --data-dir).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from paperlab.lab import data as datasets
from paperlab.lab import nets, trainer
from paperlab.lab.data import augment
from paperlab.lab.distillers import get as method
from paperlab.lab.distillers import parse_params
from paperlab.lab.distillers.kd import soft_kl
from paperlab.lab.templates import load

ARGS = argparse.ArgumentParser()
ARGS.add_argument("--device", default="cuda")
ARGS.add_argument("--data-dir", type=Path, default=None)
ARGS.add_argument("--epochs", type=int, default=3)
T, ALPHA, LR, MOMENTUM = 20.0, 0.9, 0.01, 0.9


def make_step(model, optimizer, x_all, y_all, idx, jitter=0, teacher_logits=None, zero_grad=True):
    def step():
        if zero_grad:
            optimizer.zero_grad(set_to_none=True)
        x, y = x_all[idx], y_all[idx]
        if jitter:
            x = augment.shift(x, jitter, None)  # the default generator: graph-safe
        out = model(x)
        loss = F.cross_entropy(out, y)
        if teacher_logits is not None:
            loss = ALPHA * soft_kl(out, teacher_logits[idx], T) + (1 - ALPHA) * loss
        loss.backward()
        optimizer.step()
        model.apply_constraints()
        return loss
    return step


def epochs_of(step, idx, n, batch, epochs, device, replay=None) -> list[float]:
    """samples/s of each epoch; full batches only (the same for both loops)."""
    rates = []
    for _ in range(epochs):
        order = torch.randperm(n, device=device)
        start = time.perf_counter()
        for s in range(n // batch):
            idx.copy_(order[s * batch:(s + 1) * batch])
            (replay or step)()
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(n // batch * batch / (time.perf_counter() - start))
    return rates


def captured(step, optimizer):
    """Three warm-up steps on a side stream (SGD's momentum buffers are made there), then one step captured,
    not run. The gradients are None when it is captured, so each replay's backward writes them afresh."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            optimizer.zero_grad(set_to_none=True)
            step()
    torch.cuda.current_stream().wait_stream(stream)
    optimizer.zero_grad(set_to_none=True)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def main() -> None:
    opts = ARGS.parse_args()
    device = torch.device(opts.device)
    spec = load("kd-hinton", "paper", {"train.epochs": opts.epochs})
    recipe = spec.train.model_copy(update={"schedule": "constant", "lr": LR, "momentum": MOMENTUM,  # as the loops
                                           "momentum_start": None, "step_scaled_by_momentum": False})
    ds = datasets.load("fashion-mnist", opts.data_dir, Path(tempfile.mkdtemp(prefix="bench-data-")))
    x, y = torch.from_numpy(ds.x_train).to(device), torch.from_numpy(ds.y_train).to(device)
    data = trainer.Tensors(x[5000:], y[5000:], x[:5000], y[:5000])
    shape, classes, batch, n = ds.x_train.shape[1:], len(ds.classes), spec.train.batch_size, len(data.x_train)
    graphs = device.type == "cuda"
    name = torch.cuda.get_device_name() if graphs else "no CUDA: the graph columns are skipped"
    print(f"Fashion-MNIST, {n:,} training images, batch {batch}, {opts.epochs} epochs, {device} ({name})")
    print(f"{'stage':<30}{'trainer.fit /s':>16}{'eager step /s':>16}{'graph /s':>12}{'graph / fit':>13}")

    def build(net_spec):
        torch.manual_seed(0)
        return nets.build(net_spec, shape, classes).to(device)

    teacher = build(spec.teacher.net)
    fit = trainer.fit(teacher, method("ce")(parse_params("ce", {}), teacher, None, None), data,
                      recipe, seed=0, label="bench", augment=augment.Augment(spec.teacher.jitter))
    logits = trainer.predict(teacher, data.x_train)
    kd = {"temperature": T, "alpha": ALPHA}
    for label, net_spec, jitter, soft in (("teacher 1200-1200, jitter 2", spec.teacher.net, spec.teacher.jitter, None),
                                          ("kd student 800-800", spec.student.net, 0, logits)):
        if soft is not None:
            student = build(net_spec)
            data_kd = trainer.Tensors(**{**data.__dict__, "teacher_train": soft})
            fit = trainer.fit(student, method("kd")(parse_params("kd", kd), student, None, None), data_kd,
                              recipe, seed=0, label="bench")
        fit_rate = sum(h.samples_per_s for h in fit.history[1:]) / max(1, len(fit.history) - 1)
        rates = {}
        for mode in ("eager", "graph") if graphs else ("eager",):
            model = build(net_spec).train()
            opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
            idx = torch.zeros(batch, dtype=torch.long, device=device)
            step = make_step(model, opt, data.x_train, data.y_train, idx, jitter, soft, zero_grad=mode == "eager")
            replay = captured(step, opt) if mode == "graph" else None
            got = epochs_of(step, idx, n, batch, opts.epochs, device, replay)
            rates[mode] = sum(got[1:]) / max(1, len(got) - 1)
        graph = rates.get("graph")
        print(f"{label:<30}{fit_rate:>16,.0f}{rates['eager']:>16,.0f}"
              f"{(f'{graph:,.0f}' if graph else '-'):>12}{(f'{graph / fit_rate:.2f}' if graph else '-'):>13}")
    if graphs:
        check(spec.student.net, build, data, logits, batch, device)


def check(net_spec, build, data, logits, batch, device) -> None:
    """The student (no dropout, no jitter): one epoch eager and one replayed, same weights and order."""
    order = torch.randperm(len(data.x_train), device=device)
    weights = []
    for mode in ("eager", "graph"):
        model = build(net_spec).train()
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        idx = order[:batch].clone()
        step = make_step(model, opt, data.x_train, data.y_train, idx, 0, logits, zero_grad=mode == "eager")
        if mode == "graph":  # the three warm-up steps train on the first batch: the eager run does the same
            replay = captured(step, opt)
        else:
            for _ in range(3):
                step()
            replay = step
        for s in range(1, len(order) // batch):
            idx.copy_(order[s * batch:(s + 1) * batch])
            replay()
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    print(f"student, one epoch eager vs replayed from the same start: max weight difference "
          f"{(weights[0] - weights[1]).abs().max().item():.2e}")


if __name__ == "__main__":
    main()
