"""Our trainer against a loop written the way most KD repositories write it, and MLflow's share of a stage.

    python benchmarks/bench_trainer.py [--part mnist|cifar|all] [--epochs 2] [--device cpu|cuda] [--data-dir DIR]

`--part cifar`: resnet32x4 -> resnet8x4 at batch 64 with crop+flip (the CIFAR-100 recipe), samples/s of the
teacher stage, of kd and of crd (teacher forward + student + method), ours against a DataLoader-style loop
(augmentation per sample on the host, `.item()` every step), and the projected wall time of one 240-epoch
CIFAR-100 run (teacher + student + method) at our rate. Images are random: speed does not depend on them.

Same model, data, batch size and epochs. The reference: a DataLoader over a TensorDataset, `.item()`
every batch, and for KD the teacher run on every batch. Ours: `paperlab.lab.trainer.fit` (tensors in
memory, one sync per epoch, the teacher's logits computed once because the transfer set is not jittered).
Prints samples/s and ratios measured in this run. Targets (issue 3): >= 2x; tracking <= 3% of wall time.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from paperlab.lab import data as datasets
from paperlab.lab import nets, trainer
from paperlab.lab.data.augment import Augment
from paperlab.lab.distillers import Info, parse_params
from paperlab.lab.distillers import get as method
from paperlab.lab.templates import load

ARGS = argparse.ArgumentParser()
ARGS.add_argument("--epochs", type=int, default=2)
ARGS.add_argument("--batch-size", type=int, default=128)
ARGS.add_argument("--device", default="cpu")
ARGS.add_argument("--data-dir", type=Path, default=None)
ARGS.add_argument("--part", choices=["mnist", "cifar", "all"], default="all")
ARGS.add_argument("--cifar-images", type=int, default=512, help="images per measured epoch (cifar part)")
ARGS.add_argument("--compile", default=None, help="mnist part: also train both MLPs through torch.compile in this "
                  "mode (default, reduce-overhead, max-autotune) and compare its steady epochs with eager ones")


def reference_loop(model, x, y, epochs, batch_size, device, teacher=None, t=20.0, alpha=0.9):
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        running = 0.0
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            out = model(xb)
            if teacher is None:
                loss = F.cross_entropy(out, yb)
            else:
                with torch.no_grad():
                    soft = teacher(xb)
                kl = F.kl_div(F.log_softmax(out / t, 1), F.softmax(soft / t, 1), reduction="batchmean")
                loss = alpha * kl * t * t + (1 - alpha) * F.cross_entropy(out, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += loss.item()
    return len(x) * epochs / (time.perf_counter() - start)


def _objective(name, params, student=None, teacher=None, info=None):
    return method(name)(parse_params(name, params), student, teacher, info)


def host_augment(xb: torch.Tensor) -> torch.Tensor:
    """What torchvision's RandomCrop(32, padding=4) + RandomHorizontalFlip do, one image at a time."""
    out = torch.empty_like(xb)
    padded = F.pad(xb, (4, 4, 4, 4))
    for i in range(len(xb)):
        dy, dx = torch.randint(0, 9, (2,)).tolist()
        img = padded[i, :, dy:dy + 32, dx:dx + 32]
        out[i] = img.flip(2) if torch.rand(()) < 0.5 else img
    return out


def reference_cifar(student, objective, x, y, device, teacher=None):
    params = [*student.parameters(), *objective.parameters()]
    optimizer = torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=5e-4)
    loader = DataLoader(TensorDataset(x, y, torch.arange(len(x))), batch_size=64, shuffle=True)
    from paperlab.lab.distillers import Batch
    from paperlab.lab.nets import as_out

    wants = bool(objective.needs - {"logits"})
    start = time.perf_counter()
    student.train()
    for xb, yb, ib in loader:
        xb, yb, ib = host_augment(xb).to(device), yb.to(device), ib.to(device)
        t_out = None
        if teacher is not None:
            with torch.no_grad():
                t_out = as_out(teacher(xb, features=wants))
        s_out = as_out(student(xb, features=wants))
        loss, _ = objective(s_out, t_out, Batch(xb, yb, ib, 1, 0.0))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()
    return len(x) / (time.perf_counter() - start)


def cifar(opts) -> None:
    from paperlab.lab.spec import CifarNetSpec

    device = torch.device(opts.device)
    n = opts.cifar_images
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(n, 3, 32, 32, generator=g), torch.randint(0, 100, (n,), generator=g)
    spec = load("kd-cifar", "paper", {"train.epochs": 1})
    data = trainer.Tensors(x.to(device), y.to(device), x[:64].to(device), y[:64].to(device))
    augment = Augment(4, True, torch.zeros(1, 3, 1, 1, device=device))
    info = Info((3, 32, 32), 100, torch.arange(50_000, device=device) % 100)  # CRD's bank: CIFAR-100's size
    build = lambda kind: nets.build(CifarNetSpec(kind=kind), (3, 32, 32), 100).to(device)  # noqa: E731
    print(f"\nresnet32x4 -> resnet8x4, batch 64, crop+flip, {n} random 32x32 images per measurement, {device}")
    rows = []
    torch.manual_seed(0)
    teacher = build("resnet32x4")
    ref = reference_cifar(teacher, _objective("ce", {}), x, y, device)
    start = time.perf_counter()
    trainer.fit(teacher, _objective("ce", {}), data, spec.train, seed=0, label="bench", augment=augment)
    rows.append(("teacher (CE)", ref, n / (time.perf_counter() - start)))
    teacher.eval()
    for name, params in (("kd", {"temperature": 4.0, "alpha": 0.9}), ("crd", {})):
        student = build("resnet8x4")
        ref = reference_cifar(student, _objective(name, params, student, teacher, info), x, y, device, teacher)
        student = build("resnet8x4")
        objective = _objective(name, params, student, teacher, info).to(device)
        start = time.perf_counter()
        trainer.fit(student, objective, data, spec.train, seed=0, label="bench", augment=augment, teacher=teacher)
        rows.append((f"{name} (teacher+student+method)", ref, n / (time.perf_counter() - start)))
    student = build("resnet8x4")
    start = time.perf_counter()
    trainer.fit(student, _objective("ce", {}), data, spec.train, seed=0, label="bench", augment=augment)
    student_rate = n / (time.perf_counter() - start)
    print(f"{'stage':<34}{'reference samples/s':>20}{'ours samples/s':>16}{'ratio':>8}")
    for label, ref, ours in rows:
        print(f"{label:<34}{ref:>20,.1f}{ours:>16,.1f}{ours / ref:>8.2f}")
    per_epoch = lambda rate: 45_000 / rate  # noqa: E731  (training images after the 5,000 held out)
    for label, _, rate in rows[1:]:
        hours = 240 * (per_epoch(rows[0][2]) + per_epoch(student_rate) + per_epoch(rate)) / 3600
        print(f"projected 240-epoch CIFAR-100 run with {label.split()[0]} (teacher, student at "
              f"{student_rate:,.0f}/s, method): {hours:,.1f} h on {device}")


def compiled_rates(opts, spec, shape, classes, tensors, kd_data) -> None:
    """Eager against torch.compile(mode) on the same MLPs and data, in this run: samples/s of the epochs after
    the first (which pays for compiling), and the first epoch's extra seconds."""
    if opts.epochs < 2:
        raise SystemExit("--compile needs --epochs 2 or more: the first epoch pays for compiling")
    print(f"\n{'torch.compile ' + opts.compile:<28}{'eager samples/s':>20}{'compiled':>16}{'ratio':>8}"
          f"{'first epoch +s':>16}")
    for label, net_spec, data, name, params in (
            ("teacher 784-1200-1200-10", spec.teacher.net, tensors, "ce", {}),
            ("kd student", spec.student.net, kd_data, "kd", {"temperature": 20.0, "alpha": 0.9})):
        runs = []
        for mode in (None, opts.compile):
            torch.manual_seed(0)
            model = nets.build(net_spec, shape, classes).to(opts.device)
            runs.append(trainer.fit(model, _objective(name, params), data, spec.train, seed=0, label="bench",
                                    compile_mode=mode).history)
        steady = [sum(h.samples_per_s for h in run[1:]) / len(run[1:]) for run in runs]
        extra = runs[1][0].epoch_seconds - runs[0][0].epoch_seconds
        print(f"{label:<28}{steady[0]:>20,.0f}{steady[1]:>16,.0f}{steady[1] / steady[0]:>8.2f}{extra:>16.1f}")


def main() -> None:
    opts = ARGS.parse_args()
    if opts.part in ("cifar", "all"):
        cifar(opts)
    if opts.part in ("mnist", "all"):
        mnist(opts)


def mnist(opts) -> None:
    device = torch.device(opts.device)
    spec = load("kd-hinton", "quick", {"train.epochs": opts.epochs, "train.batch_size": opts.batch_size,
                                       "train.optimizer": "sgd", "train.lr": 0.01})
    cache = Path(tempfile.mkdtemp(prefix="bench-data-"))
    ds = datasets.load("fashion-mnist", opts.data_dir, cache)
    x = torch.from_numpy(ds.x_train).to(device)
    y = torch.from_numpy(ds.y_train).to(device)
    n_val = 5000
    tensors = trainer.Tensors(x[n_val:], y[n_val:], x[:n_val], y[:n_val])
    shape, classes = ds.x_train.shape[1:], len(ds.classes)
    print(f"Fashion-MNIST, {len(tensors.x_train):,} training images, batch {opts.batch_size}, {opts.epochs} epochs, "
          f"{device}, torch threads {torch.get_num_threads()}")

    def timed_fit(model, objective, data):
        start = time.perf_counter()
        trainer.fit(model, objective, data, spec.train, seed=0, label="bench")
        return len(data.x_train) * opts.epochs / (time.perf_counter() - start)

    torch.manual_seed(0)
    ref_teacher = reference_loop(nets.build(spec.teacher.net, shape, classes).to(device), tensors.x_train.cpu(),
                                 tensors.y_train.cpu(), opts.epochs, opts.batch_size, device)
    torch.manual_seed(0)
    teacher = nets.build(spec.teacher.net, shape, classes).to(device)
    ours_teacher = timed_fit(teacher, _objective("ce", {}), tensors)
    teacher.eval()
    torch.manual_seed(0)
    ref_kd = reference_loop(nets.build(spec.student.net, shape, classes).to(device), tensors.x_train.cpu(),
                            tensors.y_train.cpu(), opts.epochs, opts.batch_size, device, teacher=teacher)
    torch.manual_seed(0)
    start = time.perf_counter()
    kd_data = trainer.Tensors(**{**tensors.__dict__, "teacher_train": trainer.predict(teacher, tensors.x_train)})
    teacher_pass = time.perf_counter() - start
    student = nets.build(spec.student.net, shape, classes).to(device)
    start = time.perf_counter()
    trainer.fit(student, _objective("kd", {"temperature": 20.0, "alpha": 0.9}), kd_data, spec.train, seed=0,
                label="bench")
    ours_kd = len(kd_data.x_train) * opts.epochs / (time.perf_counter() - start + teacher_pass)
    print(f"\n{'stage':<28}{'reference samples/s':>20}{'ours samples/s':>16}{'ratio':>8}")
    print(f"{'teacher 784-1200-1200-10':<28}{ref_teacher:>20,.0f}{ours_teacher:>16,.0f}{ours_teacher / ref_teacher:>8.2f}")
    print(f"{'kd (student + teacher)':<28}{ref_kd:>20,.0f}{ours_kd:>16,.0f}{ours_kd / ref_kd:>8.2f}")
    if opts.compile:
        compiled_rates(opts, spec, shape, classes, tensors, kd_data)

    # MLflow's share: a real tracked stage (student, same epochs) with every Tracker call timed
    from paperlab.lab import pipeline, tracking
    from paperlab.settings import load as load_settings

    home = Path(tempfile.mkdtemp(prefix="bench-home-"))
    os.environ["PAPERLAB_HOME"] = str(home)
    spent = {"s": 0.0}
    for name in ("start", "params", "metrics", "tags", "artifacts", "finish", "experiment"):
        original = getattr(tracking.Tracker, name)

        def wrapper(self, *a, _original=original, **k):
            begin = time.perf_counter()
            try:
                return _original(self, *a, **k)
            finally:
                spent["s"] += time.perf_counter() - begin

        setattr(tracking.Tracker, name, wrapper)
    run_spec = load("kd-hinton", "quick", {"train.epochs": opts.epochs})
    run = pipeline.Run(run_spec, load_settings(), opts.device, opts.data_dir)
    spent["s"] = 0.0
    start = time.perf_counter()
    result = run.run_all(["student"])
    wall = time.perf_counter() - start
    print(f"\ntracked student stage: {wall:.1f} s wall, MLflow calls {spent['s']:.2f} s "
          f"= {100 * spent['s'] / wall:.1f}% (per-epoch metrics in one batch, artifacts once); "
          f"test errors {result.stages[0].test_error}")


if __name__ == "__main__":
    main()
