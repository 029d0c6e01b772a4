"""What distillation did, in two figures: the errors it saved against the baseline student (negative when it
added errors) and the share of the teacher-student gap it closed (negative when it hurt), and whether that
is more than the seeds vary. Plain numbers in, plain numbers out: the end-of-run table, `run --json`, the
report and `compare` use it.

The rule: over several seeds, the effect is named where Welch's t-test between the distilled and the
baseline students' test errors gives p < 0.05 (as `compare` tests accuracies); with one seed, where the
difference exceeds the profile's measured seed-to-seed spread (`spread:` in the template's profile, 1.96 x
sqrt 2 x the standard deviation of the baseline student's test errors over its seeds: two runs of one recipe
differ by more about one time in twenty)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class StageInfo:
    name: str
    role: str                   # teacher, student, or a further model
    teacher: str | None = None  # the stage that taught it
    init: str | None = None     # the stage it started from


def comparisons(stages: list[StageInfo]) -> list[tuple[str, str, str]]:
    """(distilled stage, its teacher, the baseline student) for each distilled student of one run. A phase
    (a stage others start from) is no student to compare; a stage started from a phase is compared through
    the phase's teacher. Empty where the run has no baseline student."""
    by_name = {s.name: s for s in stages}
    phases = {s.init for s in stages if s.init}
    baseline = next((s.name for s in stages if s.role == "student" and not s.teacher and not s.init
                     and s.name not in phases), None)
    if baseline is None:
        return []
    out = []
    for s in stages:
        teacher = s.teacher or (by_name[s.init].teacher if s.init in by_name else None)
        if s.role == "student" and s.name not in phases and teacher in by_name:
            out.append((s.name, teacher, baseline))
    return out


@dataclass(frozen=True)
class Effect:
    saved: float               # baseline errors - distilled errors
    gap_closed: float | None   # saved / (baseline - teacher); None where the teacher is no better
    baseline: float = 0.0
    distilled: float = 0.0


@dataclass(frozen=True)
class Spread:
    """A profile's seed-to-seed spread of test errors, measured: differences within +-errors are noise."""
    errors: float
    seeds: int


def effect(teacher: float, baseline: float, distilled: float) -> Effect:
    gap = baseline - teacher
    saved = baseline - distilled
    return Effect(saved, saved / gap if gap > 0 else None, baseline, distilled)


@dataclass(frozen=True)
class Summary:
    n: int
    saved: float
    saved_std: float | None
    gap_closed: float | None
    gap_closed_std: float | None
    wins: int  # runs where the distilled student beat the baseline
    p: float | None = None          # Welch's t-test, distilled against baseline errors (two seeds or more)
    spread: Spread | None = None    # the profile's seed-to-seed spread, where measured

    @property
    def named(self) -> bool | None:
        """Whether the effect exceeds what the seeds vary (None: nothing to tell it by)."""
        if self.n == 1:
            return None if self.spread is None else abs(self.saved) > self.spread.errors
        return None if self.p is None else self.p < 0.05

    def text(self) -> str:
        """'saves 12 errors, closes 80% of the gap', with what the seeds allow one to conclude."""
        named, plain = self.named, self.plain_text()
        if self.n == 1 and self.spread is not None:
            within = (f"one seed: differences under ±{self.spread.errors:g} errors are within this profile's "
                      f"seed-to-seed spread (measured over {self.spread.seeds} seeds, see README)")
            return f"{within}; this one {plain.split(' against')[0]}" if not named else f"{plain} ({within})"
        if self.n == 1:
            return f"{plain} (one seed; this profile's seed-to-seed spread is not measured: it may be noise)"
        if named is False:
            return f"{plain}; not beyond what the seeds vary (Welch's p = {self.p:.2g})"
        return plain if self.p is None else f"{plain}; Welch's p = {self.p:.2g}"

    def as_dict(self) -> dict:
        return {"saved": self.saved, "gap_closed": self.gap_closed, "seeds": self.n, "p": self.p,
                "spread": None if self.spread is None else self.spread.errors, "named": self.named}

    def plain_text(self) -> str:
        std = lambda v, fmt: "" if v is None else f" ± {fmt.format(v)}"  # noqa: E731
        verb = "saves" if self.saved >= 0 else "adds"
        plural = "" if abs(self.saved) == 1 and self.n == 1 else "s"
        out = f"{verb} {abs(self.saved):.3g}{std(self.saved_std, '{:.2g}')} error{plural} against the baseline"
        if self.gap_closed is None:
            out += "; the teacher is no better than the baseline, so there is no gap to close"
        else:
            out += f", closes {self.gap_closed:.0%}{std(self.gap_closed_std, '{:.0%}')} of the teacher-student gap"
        if self.n > 1:
            out += f" (mean over {self.n} seeds; better than the baseline in {self.wins} of {self.n})"
        return out


def summarise(effects: list[Effect], spread: Spread | None = None) -> Summary:
    if not effects:
        raise ValueError("no runs to summarise")
    saved = [e.saved for e in effects]
    closed = [e.gap_closed for e in effects if e.gap_closed is not None]
    sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else None  # noqa: E731
    return Summary(len(effects), statistics.fmean(saved), sd(saved),
                   statistics.fmean(closed) if len(closed) == len(effects) else None,
                   sd(closed) if len(closed) == len(effects) else None, sum(s > 0 for s in saved),
                   welch([e.distilled for e in effects], [e.baseline for e in effects]), spread)


def welch(a: list[float], b: list[float]) -> float | None:
    """Two-sided p of Welch's t-test; None under two values a side. Equal samples with no variance: 1.0
    when their means agree, 0.0 when they differ."""
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = statistics.variance(a), statistics.variance(b)
    diff = statistics.fmean(a) - statistics.fmean(b)
    if va == 0 and vb == 0:
        return 1.0 if diff == 0 else 0.0
    from scipy import stats

    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)
