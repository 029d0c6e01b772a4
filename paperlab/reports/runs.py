"""What a tracked run is to the reports: its role (teacher, student, a further model) and whether a teacher
taught it, the parameters that make two runs repeats of one configuration, one run per seed (the newest),
and its saved test logits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

SEED_PARAM = "seed"
DESCRIPTIVE = ("title", "reference", "estimate_minutes.")  # params of runs logged before they were left out


def role_of(run: dict[str, Any]) -> str:
    return run.get("tags", {}).get("paperlab.role") or run["stage"]


def is_taught(run: dict[str, Any]) -> bool:
    return bool(run.get("tags", {}).get("paperlab.taught_by"))


def config(run: dict[str, Any]) -> tuple:
    """The parameters that shape a stage's numbers, seed left out: repeats over seeds share it."""
    ignored = () if is_taught(run) else {"teacher": ("distill.", "student."),
                                          "student": ("distill.", "teacher.")}.get(role_of(run), ())
    return tuple(sorted((k, v) for k, v in run["params"].items()
                        if k != SEED_PARAM and not k.startswith(ignored) and not k.startswith(DESCRIPTIVE)))


def newest_per_seed(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One run per seed, the newest (runs come newest first): a run repeated with its seed (or read from the
    cache) is the same computation again, not another sample."""
    seen: dict[str, dict[str, Any]] = {}
    for run in runs:
        seen.setdefault(run["tags"].get("paperlab.seed", "0"), run)
    return list(seen.values())


def load_logits(tracker, run: dict[str, Any], folder: Path) -> None:
    path = tracker.download(run["run_id"], "test_logits.npz", folder / run["run_id"])
    if path is not None:
        with np.load(path) as saved:
            run["logits"], run["labels"] = saved["logits"], saved["labels"]
