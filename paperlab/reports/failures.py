"""Where each method fails against the baseline student and the teacher, from the newest seed's saved test
predictions: the classes it gets wrong more often, the examples the teacher gets right and it does not, and
the examples on which the methods disagree most."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from paperlab.reports.runs import load_logits


@dataclass
class Failure:
    label: str
    worse_classes: list[tuple[str, int, int]]  # (class, its errors, the baseline's) where it has more
    teacher_right_it_wrong: int
    examples: list[int]  # test indices the teacher gets right and it gets wrong


def where_each_fails(group, tracker) -> None:
    """Where each method fails against the baseline and the teacher, from the newest seed's predictions."""
    rows = [r for r in (group.teacher, group.baseline, *group.methods) if r is not None and r.newest]
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            load_logits(tracker, row.newest, Path(tmp))
    have = [r for r in rows if "logits" in r.newest]
    if not have:
        return
    labels = have[0].newest["labels"]
    classes = group.classes or tuple(str(i) for i in range(int(labels.max()) + 1))
    preds = {r.label: r.newest["logits"].argmax(1) for r in have}
    base = preds.get("baseline")
    teach = preds.get("teacher")
    for row in group.methods:
        if row.label not in preds:
            continue
        wrong = preds[row.label] != labels
        worse = []
        if base is not None:
            for c, name in enumerate(classes):
                mine, theirs = int((wrong & (labels == c)).sum()), int(((base != labels) & (labels == c)).sum())
                if mine > theirs:
                    worse.append((name, mine, theirs))
        worse.sort(key=lambda w: w[2] - w[1])
        lost = wrong & (teach == labels) if teach is not None else np.zeros_like(wrong)
        group.failures.append(Failure(row.label, worse[:5], int(lost.sum()), np.flatnonzero(lost)[:8].tolist()))
    methods = [r.label for r in group.methods if r.label in preds]
    if len(methods) >= 2:
        stacked = np.stack([preds[m] for m in methods])
        wrong_share = (stacked != labels).mean(0)
        distinct = np.array([len(set(col)) for col in stacked.T])
        order = np.lexsort((-wrong_share, -distinct))[:8]
        group.disagreements = [(int(i), int(labels[i]), {m: int(preds[m][i]) for m in methods})
                               for i in order if distinct[i] > 1]
