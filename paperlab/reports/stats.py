"""Whether two methods differ beyond what their seeds vary: Welch's t-test on their test accuracies."""

from __future__ import annotations

from dataclasses import dataclass

ALPHA = 0.05


@dataclass
class Test:
    """Welch's t-test of two rows over their seeds."""

    a: str
    b: str
    diff: float  # mean accuracy of a minus b, in points
    p: float | None
    n_a: int
    n_b: int

    def text(self) -> str:
        lead = f"{self.a} {'above' if self.diff >= 0 else 'below'} {self.b} by {abs(self.diff):.2f} points"
        if self.p is None:
            return f"{lead}: no test (Welch's t-test needs at least 2 seeds each; n = {self.n_a}, {self.n_b})"
        backed = "significant" if self.p < ALPHA else "not significant"
        return f"{lead}: {backed} at {ALPHA:g} (Welch's t-test, p = {self.p:.3g}, n = {self.n_a}, {self.n_b} seeds)"


def welch_rows(a, b) -> Test:
    """Two leaderboard rows (compare.Row) over their seeds."""
    from scipy import stats

    p = None
    if a.n >= 2 and b.n >= 2:
        xs, ys = list(a.acc.values()), list(b.acc.values())
        p = 1.0 if xs == ys else float(stats.ttest_ind(xs, ys, equal_var=False).pvalue)
        p = 1.0 if p != p else p  # no spread in either: no evidence of a difference
    return Test(a.label, b.label, a.mean - b.mean, p, a.n, b.n)
