"""What distillation did, in two figures: the errors it saved against the baseline student (negative when it
added errors) and the share of the teacher-student gap it closed (negative when it hurt). Plain numbers in,
plain numbers out: the end-of-run table and the report both use it."""

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


def effect(teacher: float, baseline: float, distilled: float) -> Effect:
    gap = baseline - teacher
    saved = baseline - distilled
    return Effect(saved, saved / gap if gap > 0 else None)


@dataclass(frozen=True)
class Summary:
    n: int
    saved: float
    saved_std: float | None
    gap_closed: float | None
    gap_closed_std: float | None
    wins: int  # runs where the distilled student beat the baseline

    def text(self) -> str:
        """'saves 12 errors, closes 80% of the gap' (with ± std and the win count over several seeds)."""
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


def summarise(effects: list[Effect]) -> Summary:
    if not effects:
        raise ValueError("no runs to summarise")
    saved = [e.saved for e in effects]
    closed = [e.gap_closed for e in effects if e.gap_closed is not None]
    sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else None  # noqa: E731
    return Summary(len(effects), statistics.fmean(saved), sd(saved),
                   statistics.fmean(closed) if len(closed) == len(effects) else None,
                   sd(closed) if len(closed) == len(effects) else None, sum(s > 0 for s in saved))
