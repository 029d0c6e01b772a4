"""The report's figures (matplotlib, Agg) as PNG bytes with a caption each."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from paperlab.reports.collect import ReportData
from paperlab.reports.runs import is_taught



@dataclass
class Figure:
    name: str
    title: str
    caption: str
    png: bytes


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    _plt().close(fig)
    return buffer.getvalue()


def curves(data: ReportData) -> Figure:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for stage, run in data.latest.items():
        steps = [s for s, _ in run["val_error"]]
        ax.plot(steps, [v for _, v in run["val_error"]], label=stage)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation errors")
    ax.legend()
    ax.grid(alpha=0.3)
    return Figure("curves", "Validation error per epoch", "Newest run, one line per stage.", _png(fig))


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _swept(runs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The distilled stage with the most runs among those whose runs differ in a numeric setting (a sweep's
    grid), its runs and those settings. Stages are not compared with one another (kd-hinton-omit3's kd and kd78
    differ in transfer set and shift), nor settings that are not numbers (a profile's name)."""
    by_stage: dict[tuple, list[dict[str, Any]]] = {}
    for run in runs:
        if is_taught(run):  # a stage of one template: kd-hinton's kd and kd-hinton-omit3's kd are two
            by_stage.setdefault((run.get("template"), run["stage"]), []).append(run)
    for group in sorted(by_stage.values(), key=len, reverse=True):
        keys = sorted({k for r in group for k in r["params"]} - {"seed"})
        numeric = [k for k in keys if len({r["params"].get(k) for r in group}) > 1
                   and all(_number(r["params"].get(k)) is not None for r in group)]
        if numeric:
            return group, numeric
    return [], []


def sweep(data: ReportData) -> Figure | None:
    kd, swept = _swept(data.runs)
    if not swept:
        return None
    x_key, line_key = swept[0], (swept[1] if len(swept) > 1 else None)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for line in sorted({r["params"].get(line_key) for r in kd} if line_key else {None}, key=str):
        group = [r for r in kd if line_key is None or r["params"].get(line_key) == line]
        xs = sorted({_number(r["params"][x_key]) for r in group})
        ys = [np.mean([r["test_error"] for r in group if _number(r["params"][x_key]) == x]) for x in xs]
        ax.plot(xs, ys, marker="o", label=f"{line_key}={line}" if line_key else "distilled")
    ax.set_xlabel(x_key)
    ax.set_ylabel("test errors")
    ax.legend()
    ax.grid(alpha=0.3)
    return Figure("sweep", f"Test error against {x_key}", "Mean over seeds where there are several.", _png(fig))


def per_class(data: ReportData) -> Figure | None:
    stages = [(s, r) for s, r in data.latest.items() if "logits" in r]
    if not stages:
        return None
    classes = data.classes or tuple(str(i) for i in range(stages[0][1]["logits"].shape[1]))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    width = 0.8 / len(stages)
    for i, (stage, run) in enumerate(stages):
        wrong = run["logits"].argmax(1) != run["labels"]
        counts = [int(wrong[run["labels"] == c].sum()) for c in range(len(classes))]
        ax.bar(np.arange(len(classes)) + i * width, counts, width, label=stage)
    ax.set_xticks(np.arange(len(classes)) + 0.4 - width / 2, classes, rotation=30, fontsize=7, ha="right")
    ax.set_ylabel("test errors")
    ax.legend()
    return Figure("per_class", "Test errors per class", "Teacher, baseline student and distilled student.",
                  _png(fig))


def confusion(data: ReportData) -> Figure | None:
    run = data.best_distilled
    if not run or "logits" not in run:
        return None
    from paperlab.lab.artifacts import confusion as matrix_of

    n = run["logits"].shape[1]
    matrix = matrix_of(run["labels"], run["logits"].argmax(1), n)
    classes = data.classes or tuple(str(i) for i in range(n))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.6))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        if value:
            ax.text(j, i, str(value), ha="center", va="center", fontsize=6,
                    color="white" if value > matrix.max() / 2 else "black")
    ax.set_xticks(range(n), classes, rotation=90, fontsize=7)
    ax.set_yticks(range(n), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return Figure("confusion", "Confusion matrix of the best distilled run",
                  f"Run {run['run_id']} ({run['test_error']:g} test errors).", _png(fig))


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def _grid(data: ReportData, indices: np.ndarray, student: np.ndarray, teacher: np.ndarray | None, title: str,
          caption: str, name: str) -> Figure | None:
    if data.images is None or len(indices) == 0:
        return None
    shown = indices[:24]
    cols = 8
    rows = int(np.ceil(len(shown) / cols))
    plt = _plt()
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.25, rows * 1.55), squeeze=False)
    names = data.classes
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, shown):
        image = data.images[i]
        ax.imshow(image[0], cmap="gray_r") if image.shape[0] == 1 else ax.imshow(image.transpose(1, 2, 0).clip(0, 1))
        text = f"true {names[data.labels[i]]}\nstudent {names[student[i].argmax()]}"
        if teacher is not None:
            p = _softmax(teacher[i:i + 1])[0]
            text += f"\nteacher {names[p.argmax()]} {p.max():.2f}"
        ax.set_title(text, fontsize=6)
    return Figure(name, title, caption, _png(fig))


def failures(data: ReportData) -> list[Figure]:
    kd = data.distilled()
    if not kd or "logits" not in kd:
        return []
    teacher = (data.teacher() or {}).get("logits")
    student = (data.baseline() or {}).get("logits")
    labels = kd["labels"]
    wrong = np.flatnonzero(kd["logits"].argmax(1) != labels)
    out = [_grid(data, wrong, kd["logits"], teacher, "Test examples the distilled student gets wrong",
                 f"{len(wrong)} in all; the first {min(24, len(wrong))}, with the teacher's soft prediction.",
                 "kd_wrong")]
    if teacher is not None:
        base = student if student is not None else kd["logits"]
        gap = np.flatnonzero((teacher.argmax(1) == labels) & (kd["logits"].argmax(1) != labels))
        out.append(_grid(data, gap, kd["logits"], teacher, "The teacher gets these right, the student not",
                         f"{len(gap)} such examples; the baseline student misses "
                         f"{int((base.argmax(1) != labels).sum())} in all.", "teacher_right"))
    return [f for f in out if f is not None]


def worst_classes(data: ReportData) -> list[tuple[str, int, int]]:
    kd = data.distilled()
    if not kd or "logits" not in kd:
        return []
    labels, pred = kd["labels"], kd["logits"].argmax(1)
    names = data.classes or tuple(str(i) for i in range(kd["logits"].shape[1]))
    rows = [(names[c], int(((pred != labels) & (labels == c)).sum()), int((labels == c).sum()))
            for c in range(len(names))]
    return sorted(rows, key=lambda r: -r[1] / max(r[2], 1))[:3]


def all_figures(data: ReportData) -> list[Figure]:
    figures = [curves(data), sweep(data), per_class(data), confusion(data), *failures(data)]
    return [f for f in figures if f is not None]


def leaderboard(group) -> Figure:
    """One pair's methods as bars (mean ± std over seeds), the teacher and baseline as lines, claims as dots."""
    plt = _plt()
    rows = list(reversed(group.methods))
    fig, ax = plt.subplots(figsize=(7, 0.9 + 0.32 * len(rows)))
    y = np.arange(len(rows))
    ax.barh(y, [r.mean for r in rows], xerr=[r.std or 0 for r in rows], color="#8fb3d9", capsize=3, label="ours")
    claims = [(i, r.claim) for i, r in enumerate(rows) if r.claim is not None]
    if claims:
        ax.plot([c for _, c in claims], [i for i, _ in claims], "o", color="#a11", label="paper's claim")
    for row, style in ((group.teacher, "--"), (group.baseline, ":")):
        if row is not None:
            ax.axvline(row.mean, color="#333", linestyle=style, label=f"{row.kind} {row.mean:.2f}")
    ax.set_yticks(y, [r.label for r in rows])
    values = [r.mean for r in rows] + [c for _, c in claims] + [r.mean for r in (group.teacher, group.baseline) if r]
    ax.set_xlim(min(values) - 2, max(values) + 1)
    ax.set_xlabel("test accuracy (%)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return Figure("leaderboard", "Methods on this pair",
                  "Bars: our mean test accuracy with one standard deviation over seeds; red dots: the paper's "
                  "number for this pair where it has one; lines: teacher (dashed) and baseline student (dotted).",
                  _png(fig))
