"""Gather what a report shows: the paper, the reviewer's note, the template's claims, the runs and their
per-example predictions. Everything from MLflow comes through paperlab.lab.tracking."""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from paperlab.errors import NotFound, PaperlabError
from paperlab.reports.claims import ClaimRow, claim_rows
from paperlab.reports.runs import config, is_taught, load_logits, role_of
from paperlab.settings import Settings



@dataclass
class ReportData:
    subject: str
    generated: str
    paper: dict[str, Any] | None
    note: dict[str, str]
    templates: list[str]
    claims: list[ClaimRow]
    runs: list[dict[str, Any]]
    varying: list[str]
    latest: dict[str, dict[str, Any]]  # stage -> run of the newest parent run
    best_distilled: dict[str, Any] | None
    caveats: list[str] = field(default_factory=list)
    effects: list[tuple[str, Any]] = field(default_factory=list)  # (stage, effect.Summary) over seeds
    classes: tuple[str, ...] = ()
    images: np.ndarray | None = None
    labels: np.ndarray | None = None


    def _first(self, role: str, taught: bool) -> dict[str, Any] | None:
        return next((r for r in self.latest.values() if role_of(r) == role and is_taught(r) == taught), None)

    def teacher(self) -> dict[str, Any] | None:
        return self._first("teacher", False)

    def baseline(self) -> dict[str, Any] | None:
        return self._first("student", False)

    def distilled(self) -> dict[str, Any] | None:
        return self._first("student", True)


def _paper(settings: Settings, arxiv_id: str | None) -> tuple[dict[str, Any] | None, dict[str, str]]:
    if not arxiv_id:
        return None, {}
    from paperlab.errors import NotFound
    from paperlab.library import notes
    from paperlab.library.db import Reader
    from paperlab.library.queries import get_paper, to_json

    try:
        with Reader(settings) as reader:
            paper = to_json(get_paper(reader, arxiv_id))
            if not reader.is_sqlite:  # a team's library: this machine's copy brought up to date (or sent) first
                from paperlab.library.shared_notes import sync_warning_on_conflict

                sync_warning_on_conflict(reader, settings, [paper["arxiv_id"]],
                                         "; the report shows this machine's text")
    except NotFound:
        return None, {}
    return paper, notes.sections(paper["note_path"])


def _effects(runs: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """Errors saved and gap closed per distilled stage, over the newest parent run of each seed of the newest
    run's template and profile whose distilled stage has the newest one's configuration."""
    from paperlab.lab.effect import StageInfo, comparisons, effect, summarise

    newest = runs[0]
    parents: dict[str, dict[str, dict[str, Any]]] = {}
    for run in reversed(runs):  # oldest first, so a parent keeps its newest run of each stage
        if (run["template"], run["profile"]) == (newest["template"], newest["profile"]):
            parents.setdefault(run["parent_run_id"], {})[run["stage"]] = run
    found: dict[str, list] = {}
    reference: dict[str, tuple] = {}
    seeds: dict[str, set] = {}
    for stages in reversed(list(parents.values())):  # newest parent first: its configuration is the reference
        seed = next(iter(stages.values()))["tags"].get("paperlab.seed", "0")
        infos = [StageInfo(name, role_of(r), r["tags"].get("paperlab.taught_by") or None,
                           r["tags"].get("paperlab.init") or None) for name, r in stages.items()]
        for name, teacher, baseline in comparisons(infos):
            run = stages[name]
            if reference.setdefault(name, config(run)) != config(run) or seed in seeds.setdefault(name, set()):
                continue
            seeds[name].add(seed)
            found.setdefault(name, []).append(effect(stages[teacher]["test_error"],
                                                     stages[baseline]["test_error"], run["test_error"]))
    spread = _spread(newest["template"], newest["profile"])
    return [(name, summarise(effects, spread)) for name, effects in found.items()]


def _spread(template: str, profile: str):
    """The profile's measured seed-to-seed spread, by which one seed is read (lab/effect.py); None where the
    template or profile is not this machine's or says none."""
    from paperlab.lab.effect import Spread
    from paperlab.lab.templates import load

    try:
        spec = load(template, profile)
    except PaperlabError:
        return None
    return Spread(spec.spread.errors, spec.spread.seeds) if spec.spread else None


def _varying(runs: list[dict[str, Any]]) -> list[str]:
    keys = sorted({k for r in runs for k in r["params"]})
    return [k for k in keys if len({r["params"].get(k) for r in runs}) > 1]


def collect(settings: Settings, paper: str | None = None, template: str | None = None,
            run_ids: list[str] | None = None) -> ReportData:
    from paperlab.lab.tracking import Tracker

    tracker = Tracker(settings)
    if paper:
        from paperlab.library.ids import normalise

        paper = normalise(paper)
    paper_info, note = _paper(settings, paper)
    from paperlab.lab.templates import by_paper

    linked = set((paper_info or {}).get("templates", []))  # templates linked to the paper by hand
    linked |= set(by_paper().get(paper or "", []))           # and those whose `paper:` it is
    if paper and linked:  # one search for the paper's runs and its linked templates' runs
        found = [r for r in tracker.runs(details=True) if r["paper"] == paper or r["template"] in linked]
    else:
        found = tracker.runs(template=template, paper=paper, run_ids=run_ids, details=True)
    unique = {r["run_id"]: r for r in found}
    runs = sorted((r for r in unique.values() if r["status"] == "FINISHED"), key=lambda r: -r["start_time"])
    subject = paper or template or ", ".join(run_ids or [])
    if not runs:
        raise NotFound(f"no finished runs found for {subject}; run one with `paperlab run TEMPLATE`")
    if not paper:
        paper_info, note = _paper(settings, Counter(r["paper"] for r in runs).most_common(1)[0][0])
    templates = sorted({r["template"] for r in runs})
    newest_parent = runs[0]["parent_run_id"]
    latest = {r["stage"]: r for r in reversed(runs) if r["parent_run_id"] == newest_parent}
    for run in latest.values():  # the curves show the newest run only: one history call per stage, not per run
        run["val_error"] = tracker.history(run["run_id"], "val_error")
    taught = [r for r in runs if is_taught(r)]
    best = min(taught, key=lambda r: r["test_error"]) if taught else None
    with tempfile.TemporaryDirectory() as tmp:
        for run in {id(r): r for r in [*latest.values(), *([best] if best else [])]}.values():
            load_logits(tracker, run, Path(tmp))
    effects = _effects(runs)  # of the newest run's template: named where the report covers several
    if len(templates) > 1:
        effects = [(f"{runs[0]['template']}: {name}", summary) for name, summary in effects]
    data = ReportData(subject, date.today().isoformat(), paper_info, note, templates, claim_rows(runs, templates),
                      runs, _varying(runs), latest, best, effects=effects)
    _add_dataset(settings, data)
    _add_caveats(data)
    return data


def _add_dataset(settings: Settings, data: ReportData) -> None:
    from paperlab.lab import data as datasets

    newest = next(iter(data.latest.values()))
    name, checksum = newest["tags"].get("paperlab.dataset"), newest["tags"].get("paperlab.dataset_sha256")
    recorded = newest.get("data_source")  # the run's --data-dir, where it is a folder on this machine
    for folder in [None, *([Path(recorded)] if recorded and Path(recorded).is_dir() else [])]:
        try:
            ds = datasets.load(name, folder, settings.data_dir, download=False)
        except PaperlabError:
            continue
        if not checksum or ds.checksum == checksum:
            data.classes, data.images, data.labels = ds.classes, ds.x_test, ds.y_test
            return
    data.caveats.append(f"The {name} images these runs used are not on this machine, so the error analysis "
                        f"shows no pictures.")


def _add_caveats(data: ReportData) -> None:
    teacher, student = data.teacher(), data.baseline()
    if teacher and student and teacher["test_error"] >= student["test_error"]:
        data.caveats.append(
            f"The teacher ({teacher['test_error']:g} test errors) is no better than the baseline student "
            f"({student['test_error']:g}): distillation can only copy it here, so these runs cannot test whether "
            f"KD helps. Train a stronger teacher (longer, an ensemble, a bigger net) first.")
    for row in data.claims:
        if row.ours_mean is not None and row.our_dataset != row.paper_dataset:
            data.caveats.append(f"The paper's numbers are on {row.paper_dataset}; these runs used {row.our_dataset}, "
                                f"so the comparison shows both numbers without a verdict.")
            break
    profiles = {r["profile"] for r in data.runs}
    if profiles - {"paper"}:
        data.caveats.append(f"Runs from the {', '.join(sorted(profiles - {'paper'}))} profile(s) are shorter than "
                            f"the paper's recipe.")
