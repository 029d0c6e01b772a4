"""Time to build a comparison page from many runs, against one MLflow search of the same runs.

    python benchmarks/bench_compare.py [--methods 8] [--seeds 5]

Writes a throwaway MLflow store with, per seed, a parent run and its teacher, baseline and one stage run per
method (tags, metrics and a 10,000 x 10 test-logits artifact each, as `paperlab run` logs them; no
training), then times `paperlab compare` (the library call and the whole command, HTML) and one
`search_runs` over the store, in the same run. Run counts and ratios are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

METHODS = ["kd-cifar", "dkd", "dist", "ctkd", "kd-ls", "dkd-ls", "sp", "cc", "vid", "rkd", "pkt", "nst"]


def populate(home: Path, methods: list[str], seeds: int) -> int:
    os.environ["PAPERLAB_HOME"] = str(home)
    from paperlab.lab.tracking import Tracker
    from paperlab.settings import load

    tracker = Tracker(load())
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 10_000)
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        for template in methods:
            experiment = tracker.experiment(template)
            for seed in range(seeds):
                common = {"paperlab.template": template, "paperlab.profile": "quick", "paperlab.seed": str(seed),
                          "paperlab.dataset": "fashion-mnist", "paperlab.teacher_net": "cnn",
                          "paperlab.student_net": "cnn", "paperlab.paper": ""}
                parent = tracker.start(experiment, f"{template} (quick)", common)
                for stage, role, taught in (("teacher", "teacher", ""), ("student", "student", ""),
                                            (template, "student", "teacher")):
                    run = tracker.start(experiment, stage, {**common, "paperlab.stage": stage, "paperlab.role": role,
                                                            "paperlab.taught_by": taught,
                                                            "paperlab.method": "kd" if taught else "ce"}, parent=parent)
                    skill = {"teacher": 0.88, "student": 0.85}.get(stage, 0.84 + 0.01 * rng.random())
                    errors = int(10_000 * (1 - skill - 0.003 * rng.random()))
                    tracker.params(run, {"seed": seed, "train.lr": 0.002, "distill.temperature": 4})
                    tracker.metrics(run, {"test_error": errors, "test_acc": 1 - errors / 10_000, "wall_seconds": 100.0,
                                          "n_params": 6274})
                    logits = rng.normal(size=(10_000, 10)).astype(np.float32)
                    logits[np.arange(10_000), labels] += 2.5 * skill
                    folder = Path(tmp) / run
                    folder.mkdir()
                    np.savez_compressed(folder / "test_logits.npz", logits=logits, labels=labels)
                    tracker.artifacts(run, folder)
                    tracker.finish(run)
                    count += 1
                tracker.finish(parent)
    return count


def timed(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--methods", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        methods = METHODS[:args.methods]
        runs = populate(home, methods, args.seeds)
        from paperlab.lab.tracking import Tracker
        from paperlab.reports.compare import build
        from paperlab.settings import load

        settings = load()
        tracker = Tracker(settings)
        search = timed(lambda: tracker.runs(details=True))
        library = timed(lambda: build(settings, methods))
        out = Path(tmp) / "cmp.html"
        command = timed(lambda: subprocess.run([sys.executable, "-m", "paperlab", "compare", *sum(
            (["-t", m] for m in methods), []), "-o", str(out)], check=True, capture_output=True), repeats=1)
        print(f"{runs} stage runs ({len(methods)} methods x {args.seeds} seeds, teacher and baseline each seed)")
        print("| what | seconds | against one search |\n| --- | --- | --- |")
        for name, seconds in (("one MLflow search of every run (the floor)", search),
                              ("compare: build (search + per-example predictions of the newest seed)", library),
                              ("`paperlab compare ... -o page.html`, whole process", command)):
            print(f"| {name} | {seconds:.2f} | {seconds / search:.1f}× |")


if __name__ == "__main__":
    main()
