"""A leaderboard of methods for a mentoring session: one ranking per teacher/student pair, dataset and profile,
each method's test accuracy over seeds against its paper's claim, the gap it closes, Welch's t-test between
methods, whether our order agrees with the papers', and where each method fails.

Runs come from one MLflow search (paperlab.lab.tracking); per-example predictions from the newest seed's
`test_logits.npz` artifacts."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from paperlab.errors import BadInput, NotFound
from paperlab.reports.claims import incomparable, verdict
from paperlab.reports.failures import Failure, where_each_fails
from paperlab.reports.stats import Test, welch_rows
from paperlab.reports.runs import config, is_taught, role_of
from paperlab.settings import Settings



@dataclass
class Row:
    """One method (or the teacher, or the baseline student) on one pair: numbers per seed."""

    template: str
    stage: str
    kind: str  # "teacher", "baseline" or "method"
    method: str
    paper: str | None
    acc: dict[int, float] = field(default_factory=dict)  # seed -> test accuracy (%), best-validation epoch
    acc_last: dict[int, float] = field(default_factory=dict)  # seed -> test accuracy (%), last epoch
    errors: dict[int, float] = field(default_factory=dict)
    wall: list[float] = field(default_factory=list)
    n_params: int | None = None
    claim: float | None = None  # the paper's top-1 (%) for this pair
    claim_source: str = ""
    claim_tolerance: float = 1.0
    claim_epoch: str = "best"  # the epoch the paper's number is of: ours is compared at the same one
    differs: str = ""          # the template's `differs:` line: where its loss departs from the claim's code
    gap_closed: float | None = None
    gap_closed_std: float | None = None
    rank: int | None = None
    claimed_rank: int | None = None
    newest: dict[str, Any] | None = None  # the newest seed's run, for per-example analysis

    @property
    def label(self) -> str:
        if self.kind != "method":
            return self.kind
        return self.template if self.stage == self.method else f"{self.template}:{self.stage}"

    @property
    def n(self) -> int:
        return len(self.acc)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.acc.values())

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.acc.values()) if self.n > 1 else None

    @property
    def caveat(self) -> str | None:
        return incomparable(self.newest["tags"], self.differs) if self.newest else None

    @property
    def at_claim_epoch(self) -> float | None:
        """Our mean at the epoch the claim reports: the last epoch's where the paper gives its last (None
        where a seed's last epoch was not recorded), else the best-validation epoch's, as ranked."""
        if self.claim_epoch != "last":
            return self.mean
        return statistics.fmean(self.acc_last.values()) if set(self.acc_last) == set(self.acc) else None

    @property
    def diff(self) -> float | None:
        ours = self.at_claim_epoch
        return None if self.claim is None or self.caveat or ours is None else ours - self.claim

    @property
    def wall_mean(self) -> float:
        return statistics.fmean(self.wall) if self.wall else 0.0

    @property
    def verdict(self) -> str:
        if self.claim is None:
            return "no claim for this pair"
        if self.caveat:
            return f"not comparable: {self.caveat}"
        if self.diff is None:
            return "not comparable: the paper's number is of the last epoch, which our runs did not record"
        return verdict(self.diff, self.claim_tolerance)


@dataclass
class Group:
    dataset: str
    teacher_net: str
    student_net: str
    profile: str
    teacher: Row | None
    baseline: Row | None
    methods: list[Row]
    tests: list[Test] = field(default_factory=list)
    order_note: str = ""
    failures: list[Failure] = field(default_factory=list)
    disagreements: list[tuple[int, int, dict[str, int]]] = field(default_factory=list)  # (index, label, preds)
    classes: tuple[str, ...] = ()
    sizes: str = ""  # said where two groups share nets' kinds but not their sizes

    @property
    def title(self) -> str:
        sizes = f", {self.sizes}" if self.sizes else ""
        return f"{self.teacher_net} → {self.student_net} on {self.dataset} ({self.profile} profile{sizes})"


@dataclass
class Comparison:
    subject: str
    generated: str
    groups: list[Group]
    papers: list[tuple[dict[str, Any], dict[str, str]]]  # (paper, note sections)
    caveats: list[str] = field(default_factory=list)


def _select(runs: list[dict[str, Any]], templates: list[str] | None, teacher: str | None,
            student: str | None) -> list[dict[str, Any]]:
    chosen = [r for r in runs if r["status"] == "FINISHED" and r["test_error"] is not None
              and (not templates or r["template"] in templates)
              and (not teacher or r["tags"].get("paperlab.teacher_net") == teacher)
              and (not student or r["tags"].get("paperlab.student_net") == student)]
    return chosen


def _rows(runs: list[dict[str, Any]]) -> dict[tuple[str, str], Row]:
    """Rows by (template, stage); each keeps the newest configuration and, per seed, its newest run.
    The teacher and the baseline are one row each for the pair (every template shares the cached ones)."""
    rows: dict[tuple[str, str], Row] = {}
    reference: dict[tuple[str, str], tuple] = {}
    for run in runs:  # newest first
        taught, role, tags = is_taught(run), role_of(run), run["tags"]
        plain = not taught and tags.get("paperlab.method", "ce") == "ce" and not tags.get("paperlab.init")
        if role == "teacher" and plain:
            key, kind = ("", "teacher"), "teacher"
        elif role == "student" and plain:
            key, kind = ("", "baseline"), "baseline"
        elif role != "teacher" and tags.get("paperlab.phase") != "true" and not tags.get("paperlab.cohort"):
            key, kind = (run["template"], run["stage"]), "method"  # taught, or a method of its own (DML, BYOT)
        else:
            continue  # phases, peers of a cohort, further teachers
        shape = config(run) if kind == "method" else ()
        if reference.setdefault(key, shape) != shape:
            continue
        seed = _number(run["tags"].get("paperlab.seed") or 0, int)
        acc = _number(run["test_acc"], float)
        if seed is None or acc is None:  # a tag or metric set by hand to something else: not a sample
            continue
        row = rows.setdefault(key, Row(run["template"] if kind == "method" else kind, run["stage"], kind,
                                       run["tags"].get("paperlab.method", ""), run["paper"]))
        if seed in row.acc:
            continue
        row.acc[seed] = 100.0 * acc
        if _number(run["metrics"].get("test_acc_last"), float) is not None:
            row.acc_last[seed] = 100.0 * run["metrics"]["test_acc_last"]
        row.errors[seed] = run["test_error"]
        reused = run["tags"].get("paperlab.reused_from")  # a cached model: its time is the run that trained it
        row.wall.append(next((r["metrics"].get("wall_seconds", 0.0) for r in runs if r["run_id"] == reused),
                             run["metrics"].get("wall_seconds", 0.0)))
        row.n_params = _number(run["metrics"].get("n_params"), int) or row.n_params
        row.newest = row.newest or run
    return rows


def _number(value, kind):
    """`value` as an int or a finite float, or None (a seed tagged 'abc', a metric logged as NaN)."""
    import math

    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or (kind is int and number != int(number)):
        return None
    return kind(number)


def _claims(row: Row, teacher_net: str, student_net: str, dataset: str) -> None:
    from paperlab.lab.templates import claims, raw

    try:
        found = claims(row.template)
        row.differs = raw(row.template).get("differs", "")
    except BadInput:  # runs renamed with --set name=...: no template, no claims
        return
    for claim in found:
        if (claim.stage == row.stage and claim.metric == "top1" and claim.dataset == dataset
                and claim.teacher_net == teacher_net and claim.student_net == student_net):
            row.claim, row.claim_source = claim.value, claim.source
            row.claim_tolerance, row.claim_epoch = claim.tolerance, claim.epoch
            return


def _order(methods: list[Row]) -> str:
    claimed = [m for m in methods if m.claim is not None]
    if len(claimed) < 2:
        return "Fewer than two methods here carry a paper's number for this pair: no claimed order to compare with."
    for rank, m in enumerate(sorted(claimed, key=lambda m: -m.claim), 1):
        m.claimed_rank = rank
    ours = [m.label for m in sorted(claimed, key=lambda m: -m.mean)]
    theirs = [m.label for m in sorted(claimed, key=lambda m: -m.claim)]
    if ours == theirs:
        return f"Our order of the {len(ours)} methods with a claim agrees with the papers' order."
    from scipy import stats

    tau = stats.kendalltau([m.claim for m in claimed], [m.mean for m in claimed]).statistic
    return (f"Our order differs from the papers' (Kendall's tau {tau:+.2f} over {len(ours)} methods): "
            f"ours {' > '.join(ours)}; the papers' {' > '.join(theirs)}.")


def _gap(row: Row, teacher: Row | None, baseline: Row | None) -> None:
    from paperlab.lab.effect import effect, summarise

    if teacher is None or baseline is None:
        return
    seeds = [s for s in row.errors if s in teacher.errors and s in baseline.errors]
    effects = [effect(teacher.errors[s], baseline.errors[s], row.errors[s]) for s in seeds]
    if effects:
        summary = summarise(effects)
        row.gap_closed, row.gap_closed_std = summary.gap_closed, summary.gap_closed_std


def build(settings: Settings, templates: list[str] | None = None, tag: str | None = None,
          teacher: str | None = None, student: str | None = None) -> Comparison:
    from paperlab.lab.tracking import Tracker
    from paperlab.reports.collect import _paper

    if tag:
        templates = sorted(set(templates or []) | set(_templates_of_tag(settings, tag)))
    tracker = Tracker(settings)
    runs = _select(tracker.runs(details=True), templates, teacher, student)  # one search over all experiments
    subject = ", ".join(filter(None, [", ".join(templates or []), tag and f"tag {tag}",
                                      teacher and f"teacher {teacher}", student and f"student {student}"])) or "all"
    if not runs:
        raise NotFound(f"no finished runs for {subject}; run the templates first (`paperlab run TEMPLATE`)")
    by_group: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:  # one ranking per dataset, profile and pair: the nets' kinds and every size setting
        t = run["tags"]
        nets = tuple(sorted((k, v) for k, v in run["params"].items() if k.startswith(("teacher.net.", "student.net."))))
        by_group[(t.get("paperlab.dataset", "?"), t.get("paperlab.teacher_net", "?"),
                  t.get("paperlab.student_net", "?"), run["profile"] or "?", nets,
                  t.get("paperlab.dataset_sha256", ""))].append(run)  # another copy of the data: ranked apart
    groups = []
    for (dataset, t_net, s_net, profile, _, _), members in sorted(by_group.items()):
        rows = _rows(members)
        methods = [r for r in rows.values() if r.kind == "method"]
        if not methods:
            continue
        copy = " (a copy that is not the official release)" if members[0]["tags"].get("paperlab.data_note") else ""
        group = Group(dataset + copy, t_net, s_net, profile, rows.get(("", "teacher")), rows.get(("", "baseline")),
                      methods)
        for row in methods:
            _claims(row, t_net, s_net, dataset)
            _gap(row, group.teacher, group.baseline)
        methods.sort(key=lambda r: -r.mean)
        for rank, row in enumerate(methods, 1):
            row.rank = rank
        group.order_note = _order(methods)
        if group.baseline is not None:
            group.tests += [welch_rows(m, group.baseline) for m in methods]
        group.tests += [welch_rows(a, b) for a, b in zip(methods, methods[1:])]
        group.classes = _classes(settings, dataset)
        where_each_fails(group, tracker)
        groups.append(group)
    if not groups:
        raise NotFound(f"the runs for {subject} have no distilled students to compare")
    papers = []
    for arxiv_id in sorted({r.paper for g in groups for r in g.methods if r.paper}):
        paper, note = _paper(settings, arxiv_id)
        if paper is not None:
            papers.append((paper, note))
    caveats = []
    titles = [g.title for g in groups]
    for g in groups:
        if titles.count(g.title) > 1 and g.baseline is not None and g.teacher is not None:
            g.sizes = f"teacher {g.teacher.n_params:,} parameters, student {g.baseline.n_params:,}"
    if len(groups) > 1:
        caveats.append(f"These runs use {len(groups)} different pairs, datasets or profiles: each has its own "
                       "ranking below, and no number is compared across them.")
    return Comparison(subject, date.today().isoformat(), groups, papers, caveats)


def _classes(settings: Settings, dataset: str) -> tuple[str, ...]:
    from paperlab.errors import PaperlabError
    from paperlab.lab import data as datasets

    try:
        return tuple(datasets.load(dataset, None, settings.data_dir, download=False).classes)
    except (PaperlabError, BadInput):
        return ()


def _templates_of_tag(settings: Settings, tag: str) -> list[str]:
    """The templates of the papers with this tag: linked by hand, or whose recipe names the paper."""
    from paperlab.lab.templates import raw, template_names
    from paperlab.library.db import Reader
    from paperlab.library.queries import list_papers

    with Reader(settings) as reader:
        papers = list_papers(reader, tag=tag)
    if not papers:
        raise NotFound(f"no paper has the tag {tag!r} (see `paperlab list --json` for the tags in use)")
    ids = {p["arxiv_id"] for p in papers}
    linked = {t for p in papers for t in p["templates"]}
    return sorted(linked | {name for name in template_names() if str(raw(name).get("paper")) in ids})
