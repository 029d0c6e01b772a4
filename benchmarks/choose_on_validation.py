"""Choose a profile's settings on the validation split, never on the test set: a grid over seeds, and per
point each stage's best validation errors (mean, and per seed) plus how often the distilled student beat the
baseline on validation. Test numbers are not printed; run the chosen profile for those.

    python benchmarks/choose_on_validation.py kd-hinton --profile smoke --seeds 5 \\
        --grid distill.temperature=2,4,8,20 --grid distill.alpha=0.5,0.9
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("template")
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--grid", action="append", default=[])
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    os.environ.setdefault("PAPERLAB_HOME", tempfile.mkdtemp(prefix="paperlab-choose-"))
    from pathlib import Path

    from paperlab.lab.sweep import parse_grid, run_sweep
    from paperlab.lab.templates import parse_sets
    from paperlab.lab.tracking import Tracker
    from paperlab.settings import load as load_settings

    settings = load_settings()
    data_dir = Path(args.data_dir) if args.data_dir else None
    if args.grid:
        _, points = run_sweep(args.template, args.profile, parse_sets(args.set), parse_grid(args.grid),
                              args.seeds, settings, "auto", data_dir, "choose_on_validation")
    else:
        points = _plain(args, settings, data_dir)
    tracker = Tracker(settings)
    rows: dict[str, dict[str, list[float]]] = {}
    untaught: dict[int, dict[str, float]] = {}  # per seed: a sweep of distill keys trains these once per seed
    baseline: dict[int, str] = {}
    for point in points:
        label = ",".join(f"{k}={v}" for k, v in point.overrides.items()) or "(profile)"
        known, distilled = untaught.setdefault(point.seed, {}), {}
        for s in point.stages:
            # a stage read from the cache: the validation errors of the run that trained it
            run_id = tracker.runs(run_ids=[s.run_id], details=True)[0]["tags"].get("paperlab.reused_from") \
                if s.reused else s.run_id
            value = min(v for _, v in tracker.history(run_id, "val_error"))
            (distilled if s.taught_by else known)[s.stage] = value
            if s.role == "student" and not s.taught_by:
                baseline[point.seed] = s.stage
        beats = {f"{name} beats baseline": v < known[baseline[point.seed]] for name, v in distilled.items()}
        for stage, value in {**known, **distilled, **beats}.items():
            rows.setdefault(label, {}).setdefault(stage, []).append(value)
    order = sorted(next(iter(rows.values())), key=lambda k: ("beats" in k, k != "teacher", k))
    rows = {label: {k: stages[k] for k in order} for label, stages in rows.items()}
    print(f"| point | {' | '.join(order)} |")
    for label, stages in rows.items():
        cells = [f"{sum(v)} of {len(v)}" if name.endswith("baseline") else
                 f"{statistics.fmean(v):.1f} ({' '.join(f'{x:g}' for x in v)})" for name, v in stages.items()]
        print(f"| {label} | {' | '.join(cells)} |")


def _plain(args, settings, data_dir):
    from paperlab.lab.pipeline import Run
    from paperlab.lab.sweep import SweepPoint
    from paperlab.lab.templates import load, parse_sets

    points = []
    for seed in range(args.seeds):
        spec = load(args.template, args.profile, {**parse_sets(args.set), "seed": seed})
        run = Run(spec, settings, "auto", data_dir, command="choose_on_validation")
        points.append(SweepPoint({}, seed, run.run_all().stages))
    return points


if __name__ == "__main__":
    main()
