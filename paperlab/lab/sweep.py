"""`paperlab sweep`: a grid of overrides over seeds under one MLflow parent run, the teacher trained once."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from paperlab.errors import BadInput
from paperlab.lab.batched import batch_copy
from paperlab.lab.pipeline import Run, StageResult
from paperlab.lab.templates import RunSpec, load, parse_sets
from paperlab.settings import Settings


@dataclass
class SweepPoint:
    overrides: dict[str, Any]
    seed: int
    stages: list[StageResult]


def parse_grid(pairs: list[str]) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    for pair in pairs:
        key, sep, values = pair.partition("=")
        key = key.strip()
        if not sep or not values or not key:
            raise BadInput(f"--grid takes key=v1,v2,..., got {pair[:80]!r}")
        if key == "seed":
            raise BadInput("--grid seed=... is not a grid key: --seeds N runs seeds 0..N-1 at every point")
        if key in grid:
            raise BadInput(f"--grid {key} is given twice; put all its values in one --grid {key}=v1,v2,...")
        values_read = [parse_sets([f"{key}={v}"])[key] for v in values.split(",")]
        if len({repr(v) for v in values_read}) != len(values_read):
            raise BadInput(f"--grid {key} repeats a value: {values[:80]}")
        grid[key] = values_read
    if not grid:
        raise BadInput("give at least one --grid key=v1,v2,...")
    return grid


def point_label(overrides: dict[str, Any], seed: int) -> str:
    """A sweep point as its runs are tagged (paperlab.sweep_point): key=value,...,seed=N."""
    return ",".join([*(f"{k}={v}" for k, v in overrides.items()), f"seed={seed}"])


def points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]


def run_sweep(name: str, profile: str, base_sets: dict[str, Any], grid: dict[str, list[Any]], seeds: int,
              settings: Settings, device: str, data_dir, command: str,
              resume: bool = False, batched: bool = False) -> tuple[str, list[SweepPoint]]:
    """Every point under one parent run. With resume, the points a killed sweep finished are taken as they
    are, an interrupted one continues from its checkpoint, and all stay under the first sweep's parent.
    With batched, a stage that every point trains alike (same net and recipe, a logit method) is trained
    for all points and seeds at once as one batched model (lab/batched.py), stage by stage."""
    specs: list[tuple[dict[str, Any], int, RunSpec]] = []
    for overrides in points(grid):
        for seed in range(seeds):
            specs.append((overrides, seed, load(name, profile, {**base_sets, **overrides, "seed": seed})))
    only_distill = all(key.startswith("distill.") for key in grid)
    first = Run(specs[0][2], settings, device, data_dir, resume=resume, command=command,
                extra_tags={"paperlab.sweep": ",".join(grid)})
    first.owns_parent = False  # the sweep finishes the parent once every point has run
    parent, tracker, dataset = first.parent, first.tracker, first.data
    if resume:
        tracker.reopen(parent)

    def make(i: int) -> Run:
        overrides, seed, spec = specs[i]
        run = first if i == 0 else Run(spec, settings, device, data_dir, resume=resume, command=command,
                                       parent_run_id=parent, tracker=tracker, dataset=dataset,
                                       extra_tags={"paperlab.sweep": ",".join(grid)})
        run.tags["paperlab.sweep_point"] = point_label(overrides, seed)
        return run

    trained: set[tuple[str, int]] = set()

    def wanted(spec: RunSpec, seed: int) -> list[str]:  # a teacher or baseline once per seed, if only distill varies
        return [s.name for s in spec.stages if not (s.teacher is None and only_distill and (s.name, seed) in trained)]

    results: list[SweepPoint] = []
    try:
        if batched:
            results = _stage_by_stage([make(i) for i in range(len(specs))], specs, wanted, trained)
        else:
            for i, (overrides, seed, spec) in enumerate(specs):
                stages = wanted(spec, seed)
                results.append(SweepPoint(overrides, seed, make(i).run_all(stages).stages))
                trained.update((s, seed) for s in stages)
    except BaseException:
        tracker.finish_quietly(parent)
        raise
    tracker.finish(parent)
    return parent, results


def _stage_by_stage(runs: list[Run], specs, wanted, trained) -> list[SweepPoint]:
    """Every point's stages in order; each stage that two or more points train alike is trained as one
    batched model first (the runs then log and evaluate their own copy)."""
    from paperlab.lab.batched import fit_copies

    todo = []
    for _, seed, spec in specs:  # in the order the plain sweep runs them: a seed's teacher by its first point
        todo.append(wanted(spec, seed))
        trained.update((s, seed) for s in todo[-1])
    done: list[list[StageResult]] = [[] for _ in runs]
    for stage_name in [s.name for s in specs[0][2].stages]:
        groups: dict[str, list] = {}
        for k, run in enumerate(runs):
            if stage_name not in todo[k]:
                continue
            stage = run.spec.stage(stage_name)
            got = batch_copy(run, stage)
            if got is not None:
                key = repr((run.spec.train_of(stage), run.spec.model_spec(stage.model).net, got[2]))
                groups.setdefault(key, []).append((run, *got))
        for members in groups.values():
            if len(members) > 1:
                fits = fit_copies([m[1] for m in members], [m[2] for m in members],
                                  members[0][0].spec.train_of(members[0][0].spec.stage(stage_name)),
                                  augment=members[0][3], label=stage_name)
                for (run, *_), fit in zip(members, fits):
                    run.prefit[stage_name], run.batched[stage_name] = fit, len(members)
        for k, run in enumerate(runs):
            if stage_name in todo[k]:
                done[k] += run.run_all([stage_name], finish=False).stages
    for run in runs:
        run.close()
    return [SweepPoint(overrides, seed, stages) for (overrides, seed, _), stages in zip(specs, done)]
