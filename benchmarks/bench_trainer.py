"""Our trainer against a loop written the way most KD repositories write it, and MLflow's share of a stage.

    python benchmarks/bench_trainer.py [--epochs 2] [--device cpu|cuda] [--data-dir DIR]

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
from paperlab.lab.distillers import CrossEntropy, HintonKD
from paperlab.lab.templates import load

ARGS = argparse.ArgumentParser()
ARGS.add_argument("--epochs", type=int, default=2)
ARGS.add_argument("--batch-size", type=int, default=128)
ARGS.add_argument("--device", default="cpu")
ARGS.add_argument("--data-dir", type=Path, default=None)


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


def main() -> None:
    opts = ARGS.parse_args()
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
    ours_teacher = timed_fit(teacher, CrossEntropy(), tensors)
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
    trainer.fit(student, HintonKD(20.0, 0.9), kd_data, spec.train, seed=0, label="bench")
    ours_kd = len(kd_data.x_train) * opts.epochs / (time.perf_counter() - start + teacher_pass)
    print(f"\n{'stage':<28}{'reference samples/s':>20}{'ours samples/s':>16}{'ratio':>8}")
    print(f"{'teacher 784-1200-1200-10':<28}{ref_teacher:>20,.0f}{ours_teacher:>16,.0f}{ours_teacher / ref_teacher:>8.2f}")
    print(f"{'kd (student + teacher)':<28}{ref_kd:>20,.0f}{ours_kd:>16,.0f}{ours_kd / ref_kd:>8.2f}")

    # MLflow's share: a real tracked stage (student, same epochs) with every Tracker call timed
    from paperlab.lab import runner, tracking
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
    run_spec = load("kd-hinton", "quick", {"train.epochs": opts.epochs, "stages": ["student"]})
    run = runner.Run(run_spec, load_settings(), opts.device, opts.data_dir)
    spent["s"] = 0.0
    start = time.perf_counter()
    result = run.run_all()
    wall = time.perf_counter() - start
    print(f"\ntracked student stage: {wall:.1f} s wall, MLflow calls {spent['s']:.2f} s "
          f"= {100 * spent['s'] / wall:.1f}% (per-epoch metrics in one batch, artifacts once); "
          f"test errors {result.stages[0].test_error}")


if __name__ == "__main__":
    main()
