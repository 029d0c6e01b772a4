"""Run a kd-hinton profile on real MNIST and print the comparison with section 3 of the paper: teacher,
baseline student and distilled student, test errors at the best and the last epoch, the paper's numbers,
errors saved and gap closed, and the time: each stage's training seconds summed over every session that
worked on it (`train_seconds`: a stage resumed after an interruption counts all its epochs), and this
call's wall time. Not part of CI (minutes to hours).

    python benchmarks/reproduce_mnist.py --profile fast                 # 120 epochs: ~35 min on 2 CPU cores
    python benchmarks/reproduce_mnist.py --profile paper                # 3,000 epochs: ~29 h on 2 cores
    python benchmarks/reproduce_mnist.py --template kd-hinton-omit3 --profile fast

MNIST comes from --data-dir (default ../shared/data/mnist, the four IDX files); without it the script says
so and stops.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--template", default="kd-hinton")
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/mnist"))
    parser.add_argument("--home", default=None, help="workspace (default: a temporary folder)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--set", action="append", default=[], help="key=value, as for paperlab run")
    args = parser.parse_args()
    if not (Path(args.data_dir) / "train-images-idx3-ubyte.gz").exists():
        sys.exit(f"MNIST is not at {args.data_dir}: give --data-dir with the four IDX files")
    env = {**os.environ, "PAPERLAB_HOME": args.home or tempfile.mkdtemp(prefix="paperlab-mnist-")}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "paperlab", "run", args.template, "--profile", args.profile,
                          "--data-dir", args.data_dir, "--seed", str(args.seed), "--device", args.device,
                          "--json", "--resume", *[a for kv in args.set for a in ("--set", kv)]],
                         env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(out.stderr.strip().splitlines()[-1])
    stages = {s["stage"]: s for s in json.loads(out.stdout)["stages"]}
    wall = time.perf_counter() - started
    from paperlab.lab.effect import effect, summarise
    from paperlab.lab.templates import load

    from paperlab.lab.templates import parse_sets

    spec = load(args.template, args.profile, parse_sets(args.set))
    os.environ["PAPERLAB_HOME"] = env["PAPERLAB_HOME"]
    from mlflow.tracking import MlflowClient

    from paperlab.settings import load as settings

    client = MlflowClient(settings().mlflow_uri)
    runs = {name: client.get_run(s["run_id"]).data for name, s in stages.items()}
    metrics = {name: run.metrics for name, run in runs.items()}
    print(f"{args.template} / {args.profile} on MNIST, seed {args.seed}: this call {wall / 60:.1f} min")
    print("| stage | test errors, best epoch (of 10,000) | last epoch | paper | training s (all sessions) |")
    print("| --- | --- | --- | --- | --- |")
    for name, s in stages.items():
        claim = spec.claim_for(name)
        paper = f"{claim.value:g}" if claim else "-"
        reused = runs[name].tags.get("paperlab.reused_from")
        seconds = f"cached ({reused[:8]})" if reused else f"{metrics[name].get('train_seconds', float('nan')):.0f}"
        print(f"| {name} | {s['test_error']} | {s['test_error_last']} | {paper} | {seconds} |")
    if {"teacher", "student", "kd"} <= set(stages):
        e = [effect(stages["teacher"]["test_error"], stages["student"]["test_error"], stages["kd"]["test_error"])]
        claims = [spec.claim_for(n) for n in ("teacher", "student", "kd")]
        paper = f"; the paper's: {summarise([effect(*[c.value for c in claims])]).text()}" if all(claims) else ""
        print(f"\nkd {summarise(e).text()}{paper}")
    for name, m in metrics.items():
        if "bias_shift" in m:
            print(f"{name}: bias shift {m['bias_shift']:+.1f} chosen on the validation split: test errors "
                  f"{m['test_error_unshifted']:.0f} -> {m['test_error_shifted']:.0f}, on the shifted classes "
                  f"{m['test_error_on_shifted_classes_unshifted']:.0f} -> {m['test_error_on_shifted_classes']:.0f}"
                  + (f"; with the paper's shift: {m['test_error_paper_shift']:.0f} "
                     f"({m['test_error_on_shifted_classes_paper_shift']:.0f} on those classes)"
                     if "test_error_paper_shift" in m else ""))


if __name__ == "__main__":
    main()
