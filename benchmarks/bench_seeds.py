"""Seeds as one model (lab/batched.py) against one run per seed, for the kd-hinton students.

    python benchmarks/bench_seeds.py [--seeds 5] [--profiles smoke,quick] [--device cpu|cuda] [--epochs N]
                                     [--data-dir DIR]

For each profile: the student net and recipe of `kd-hinton` at that profile, N seeds trained by
`trainer.fit` one after another (the baseline, measured in the same run) and by `batched.fit_copies` at once;
wall time of each, the ratio, and the largest difference between the two in any seed's final validation
errors (they match where the net has no dropout). The quick profile needs Fashion-MNIST
(`apt-get install dataset-fashion-mnist`, or a download).
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch


def measure(profile: str, seeds: int, device: str, epochs: int | None, data_dir: str | None) -> None:
    from paperlab.lab import data as datasets
    from paperlab.lab import distillers, trainer
    from paperlab.lab.batched import Copy, fit_copies
    from paperlab.lab.nets import build
    from paperlab.lab.templates import load
    from paperlab.settings import load as settings

    spec = load("kd-hinton", profile, {"train.epochs": epochs} if epochs else None)
    data = datasets.load(spec.dataset, Path(data_dir) if data_dir and spec.dataset != "digits" else None,
                         settings().data_dir)
    dev = torch.device(device)
    train_idx, val_idx = datasets.split_validation(len(data.y_train), spec.train.val_size, 0)
    put = lambda a: torch.from_numpy(a).to(dev)  # noqa: E731
    tensors = trainer.Tensors(put(data.x_train[train_idx]), put(data.y_train[train_idx]),
                              put(data.x_train[val_idx]), put(data.y_train[val_idx]))
    shape, classes = tuple(data.x_train.shape[1:]), len(data.classes)
    info = distillers.Info(shape, classes, tensors.y_train)
    train = spec.train_of(spec.stage("student"))
    net = spec.model_spec("student").net

    def copies():
        made = []
        for seed in range(seeds):
            torch.manual_seed(seed)
            model = build(net, shape, classes).to(dev)
            made.append(Copy(model, distillers.get("ce")(distillers.parse_params("ce", {}), model, None, info), seed))
        return made

    alone = copies()
    start = time.perf_counter()
    one_by_one = [trainer.fit(copy.deepcopy(c.model), c.objective, tensors, train, seed=c.seed, label="alone")
                  for c in alone]
    separate = time.perf_counter() - start
    start = time.perf_counter()
    together = fit_copies(copies(), tensors, train)
    batched = time.perf_counter() - start
    gap = max(abs(a.history[-1].val_error - b.history[-1].val_error) for a, b in zip(one_by_one, together))
    print(f"{profile:<6} student {net.kind} {getattr(net, 'hidden', '')}, {train.epochs} epochs, batch "
          f"{train.batch_size}, {len(tensors.x_train):,} images, {device}: {seeds} runs {separate:7.1f} s, "
          f"{seeds} seeds as one model {batched:7.1f} s, ratio {separate / batched:4.2f}x; final validation "
          f"errors differ by at most {gap}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--profiles", default="smoke,quick")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=None, help="override the profile's epochs")
    parser.add_argument("--data-dir", default=None, help="where the quick profile's Fashion-MNIST IDX files are")
    opts = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for profile in opts.profiles.split(","):
        measure(profile, opts.seeds, opts.device, opts.epochs, opts.data_dir)


if __name__ == "__main__":
    main()
