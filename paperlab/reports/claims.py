"""A template's claims against our runs: the typed claims of the loaded template (lab/templates.claims, every
pair's included), the metric and epoch each reads, the verdict, and why a number may not be set against the
paper's at all (other data, a changed recipe, a loss that departs from the source's code)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from paperlab.reports.runs import config, newest_per_seed


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


def claim_rows(runs: list[dict[str, Any]], templates: list[str]) -> list[ClaimRow]:
    from paperlab.lab.templates import claims, raw

    rows = []
    from paperlab.errors import BadInput

    for name in templates:
        try:
            template = raw(name)
        except BadInput:  # renamed with --set name=..., or a teammate's template this machine lacks: no claims
            continue
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
            same = newest_per_seed([r for r in stage_runs if config(r) == config(newest)
                                     and r["tags"].get("paperlab.dataset_sha256") == data])
            values = [r["metrics"][key] * scale for r in same]
            rows.append(ClaimRow(ours_mean=statistics.fmean(values),
                                 ours_std=statistics.stdev(values) if len(values) > 1 else None, n=len(values),
                                 our_dataset=newest["tags"].get("paperlab.dataset"),
                                 caveat=incomparable(newest["tags"], differs), **base))
    return rows
