"""Gather what a report shows: the paper, the reviewer's note, the template's claims, the runs and their
per-example predictions. Everything from MLflow comes through paperlab.lab.tracking."""

from __future__ import annotations

import statistics
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from paperlab.errors import NotFound, PaperlabError
from paperlab.settings import Settings

SEED_PARAM = "seed"
DESCRIPTIVE = ("title", "reference", "estimate_minutes.")  # params of runs logged before they were left out


def incomparable(tags: dict[str, str], differs: str = "") -> str | None:
    """Why a run's number may not be set against the paper's claim whatever it is: the data is not the
    official release, the recipe was changed from the template's (lab/templates.changed_from_profile), or
    the template's loss or recipe departs from the code behind the claim (its `differs:` line)."""
    reasons = []
    if tags.get("paperlab.data_note"):
        reasons.append(f"ours on other data ({tags['paperlab.data_note']})")
    if tags.get("paperlab.changed"):
        reasons.append(f"ours with the recipe changed ({tags['paperlab.changed']})")
    if differs:
        reasons.append(f"loss differs from the source's code: {differs}")
    return "; ".join(reasons) or None


def verdict(diff: float, tolerance: float) -> str:
    """Ours against the paper's number: within the claim's tolerance, within twice it, or not."""
    if abs(diff) <= tolerance:
        return "reproduced"
    return "close" if abs(diff) <= 2 * tolerance else "not reproduced"


@dataclass
class ClaimRow:
    stage: str
    paper_value: float
    paper_dataset: str
    source: str
    ours_mean: float | None
    ours_std: float | None
    n: int
    our_dataset: str | None
    tolerance: float
    metric: str = "test_error"
    epoch: str = "best"
    paper_runs: int | None = 1
    other_pair: str | None = None  # our runs are on another teacher/student pair than the claim's
    caveat: str | None = None      # incomparable(): other data, or a changed recipe
    template: str = ""             # named where a report covers several templates (a paper's)

    @property
    def label(self) -> str:
        """The stage, and what of it the claim measures where that is not its own test error; its template
        first where the report covers several (kd-hinton's kd and kd-hinton-omit3's kd are other claims)."""
        plain = self.metric in ("test_error", "top1")
        stage = self.stage if plain else f"{self.stage} ({self.metric.replace('_', ' ')})"
        return f"{self.template}: {stage}" if self.template else stage

    @property
    def digits(self) -> int:
        return 2 if self.metric == "top1" else 1

    @property
    def comparable(self) -> bool:
        return (self.ours_mean is not None and self.our_dataset == self.paper_dataset and not self.other_pair
                and not self.caveat)

    @property
    def diff(self) -> float | None:
        return self.ours_mean - self.paper_value if self.comparable else None

    @property
    def verdict(self) -> str:
        if self.ours_mean is None:
            return "no runs"
        if self.our_dataset != self.paper_dataset:
            return f"not comparable: ours on {self.our_dataset}, the paper's on {self.paper_dataset}"
        if self.other_pair:
            return f"not comparable: ours on {self.other_pair}, the paper's on another pair"
        if self.caveat:
            return f"not comparable: {self.caveat}"
        return verdict(self.diff, self.tolerance)


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


def role_of(run: dict[str, Any]) -> str:
    return run.get("tags", {}).get("paperlab.role") or run["stage"]


def is_taught(run: dict[str, Any]) -> bool:
    return bool(run.get("tags", {}).get("paperlab.taught_by"))


def _config(run: dict[str, Any]) -> tuple:
    """The parameters that shape a stage's numbers, seed left out: repeats over seeds share it."""
    ignored = () if is_taught(run) else {"teacher": ("distill.", "student."),
                                          "student": ("distill.", "teacher.")}.get(role_of(run), ())
    return tuple(sorted((k, v) for k, v in run["params"].items()
                        if k != SEED_PARAM and not k.startswith(ignored) and not k.startswith(DESCRIPTIVE)))


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


def _claims(runs: list[dict[str, Any]], templates: list[str]) -> list[ClaimRow]:
    from paperlab.lab.templates import claims, raw

    rows = []
    for name in templates:
        template = raw(name)
        own = (template["teacher"]["net"]["kind"], template["student"]["net"]["kind"])
        differs = template.get("differs", "")
        for claim in claims(name):
            metric, epoch = claim.metric, claim.epoch
            ours = "best" if epoch == "unstated" else epoch
            key = {("test_error", "best"): "test_error", ("test_error", "last"): "test_error_last",
                   ("top1", "best"): "test_acc", ("top1", "last"): "test_acc_last",
                   ("test_error_ema", "last"): "test_error_ema_last"}.get((metric, ours), metric)
            scale = 100.0 if metric == "top1" else 1.0
            pair = {"paperlab.teacher_net": claim.teacher_net, "paperlab.student_net": claim.student_net}
            stage_runs = [r for r in runs if r["template"] == name and r["stage"] == claim.stage
                          and r["metrics"].get(key) is not None]
            on_pair = [r for r in stage_runs if all(v is None or r["tags"].get(k) == v for k, v in pair.items())]
            is_own = all(v is None or v in own for v in pair.values())
            base = dict(stage=claim.stage, template=name if len(templates) > 1 else "",
                        paper_value=claim.value, paper_dataset=claim.dataset,
                        source=claim.source, tolerance=claim.tolerance, metric=metric, epoch=epoch,
                        paper_runs=claim.runs)
            if not on_pair and not (stage_runs and is_own):
                if not stage_runs and is_own:
                    rows.append(ClaimRow(ours_mean=None, ours_std=None, n=0, our_dataset=None, **base))
                continue  # a claim about a pair not run here
            if not on_pair:
                r = stage_runs[0]["tags"]
                base["other_pair"] = f"{r.get('paperlab.teacher_net')}->{r.get('paperlab.student_net')}"
            stage_runs = on_pair or stage_runs
            newest = stage_runs[0]  # runs come newest first; its configuration is the one compared
            data = newest["tags"].get("paperlab.dataset_sha256")  # runs on another copy of the data are not repeats
            same = _newest_per_seed([r for r in stage_runs if _config(r) == _config(newest)
                                     and r["tags"].get("paperlab.dataset_sha256") == data])
            values = [r["metrics"][key] * scale for r in same]
            rows.append(ClaimRow(ours_mean=statistics.fmean(values),
                                 ours_std=statistics.stdev(values) if len(values) > 1 else None, n=len(values),
                                 our_dataset=newest["tags"].get("paperlab.dataset"),
                                 caveat=incomparable(newest["tags"], differs), **base))
    return rows


def _newest_per_seed(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One run per seed, the newest (runs come newest first): a run repeated with its seed (or read from the
    cache) is the same computation again, not another sample."""
    seen: dict[str, dict[str, Any]] = {}
    for run in runs:
        seen.setdefault(run["tags"].get("paperlab.seed", "0"), run)
    return list(seen.values())


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
            if reference.setdefault(name, _config(run)) != _config(run) or seed in seeds.setdefault(name, set()):
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


def _load_logits(tracker, run: dict[str, Any], folder: Path) -> None:
    path = tracker.download(run["run_id"], "test_logits.npz", folder / run["run_id"])
    if path is not None:
        with np.load(path) as saved:
            run["logits"], run["labels"] = saved["logits"], saved["labels"]


def collect(settings: Settings, paper: str | None = None, template: str | None = None,
            run_ids: list[str] | None = None) -> ReportData:
    from paperlab.lab.tracking import Tracker

    tracker = Tracker(settings)
    if paper:
        from paperlab.library.ids import normalise

        paper = normalise(paper)
    paper_info, note = _paper(settings, paper)
    linked = set((paper_info or {}).get("templates", []))  # templates linked to the paper by hand
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
            _load_logits(tracker, run, Path(tmp))
    effects = _effects(runs)  # of the newest run's template: named where the report covers several
    if len(templates) > 1:
        effects = [(f"{runs[0]['template']}: {name}", summary) for name, summary in effects]
    data = ReportData(subject, date.today().isoformat(), paper_info, note, templates, _claims(runs, templates),
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
