"""The quick profile's pair over seeds: teacher, baseline student and each method template, as a Markdown
table of test accuracy (mean ± std over seeds) and the share of the teacher-student gap each method closes.

    python benchmarks/quick_pair.py --seeds 3            # about 50 min per 5 methods on 2 CPU cores
Every template shares the quick pair, so each seed trains one teacher and one baseline (cached); runs are
made with --resume, so a second call with the same --home picks up finished runs instead of repeating them."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

TEMPLATES = ["kd-cifar", "fitnet", "at", "dkd", "crd", "sp", "cc", "vid", "rkd", "pkt", "nst", "ofd", "reviewkd",
             "ab", "ft", "fsp", "dist", "ctkd", "kd-ls", "dkd-ls", "tfkd"]  # the single-teacher methods on CRD's
# pair (the first must have teacher and baseline stages; tfkd has no teacher and is compared with them)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--home", default=None, help="workspace (default: a temporary folder)")
    parser.add_argument("--templates", default=",".join(TEMPLATES))
    args = parser.parse_args()
    home = args.home or tempfile.mkdtemp(prefix="paperlab-quick-")
    env = {**os.environ, "PAPERLAB_HOME": home}
    acc: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {}
    templates = args.templates.split(",")
    errors: dict[tuple[str, int], int] = {}
    for seed in range(args.seeds):
        for name in templates:
            started = time.perf_counter()
            command = [sys.executable, "-m", "paperlab", "run", name, "--profile", args.profile, "--device", "cpu",
                       "--seed", str(seed), "--json", "--resume"]
            out = subprocess.run(command, env=env, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"seed {seed} {name} failed (exit {out.returncode}): {out.stderr.strip()[-2000:]}")
            stages = json.loads(out.stdout)["stages"]
            # teacher and baseline are the same cached runs for every template of a seed: count them once; of the
            # other templates only the last stage counts (a phase such as AB's initialisation is not a result)
            for stage in stages if name == templates[0] else stages[-1:]:
                label = stage["stage"] if stage["stage"] in ("teacher", "student") else name
                acc.setdefault(label, []).append(100 * stage["test_acc"])
                seconds.setdefault(label, []).append(stage["wall_seconds"])
                errors[(label, seed)] = stage["test_error"]
            print(f"seed {seed} {name}: {time.perf_counter() - started:.0f}s", file=sys.stderr, flush=True)
    from paperlab.lab.effect import effect, summarise

    mean = {k: statistics.fmean(v) for k, v in acc.items()}
    print("| stage | test accuracy % (mean ± std, n) | against the baseline, per seed | s per run |")
    print("| --- | --- | --- | --- |")
    for label, values in acc.items():
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        closed = "" if label in ("teacher", "student") else summarise(
            [effect(errors[("teacher", s)], errors[("student", s)], errors[(label, s)])
             for s in range(args.seeds)]).text()
        print(f"| {label} | {mean[label]:.2f} ± {std:.2f} ({len(values)}) | {closed} | "
              f"{statistics.fmean(seconds[label]):.0f} |")


if __name__ == "__main__":
    main()
