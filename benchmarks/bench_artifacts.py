"""How long the files a stage leaves behind take to write (lab/artifacts.py), against the usual way.

    python benchmarks/bench_artifacts.py [--repeats 5]

Every stage of every run writes a confusion matrix and a picture of the first 36 misclassified test images.
The usual way, as paperlab wrote them until 2026-11-29: a grid of 36 subplots, one image and title each,
and `tight_layout` on both figures. Ours: one axes a figure, the examples tiled into one picture
(`artifacts.mosaic`), margins set from the label lengths. Both on the same random logits and images, at
the sizes of digits (10 classes, 8x8 grey) and CIFAR-100 (100 classes, 32x32 colour); median seconds of
`--repeats` calls each, and the ratio, measured in this run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from paperlab.lab import artifacts  # noqa: E402


def usual(folder: Path, images, y_true, logits, class_names, title) -> None:
    """The grid-of-subplots way (the reference)."""
    y_pred = logits.argmax(1)
    matrix = artifacts.confusion(y_true, y_pred, len(class_names))
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=7)
    ax.set_title(f"{title}: confusion matrix")
    fig.tight_layout()
    fig.savefig(folder / "confusion_matrix.png", dpi=100)
    plt.close(fig)
    shown = np.flatnonzero(y_pred != y_true)[:36]
    fig, axes = plt.subplots(6, 6, figsize=(6 * 1.4, 6 * 1.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, shown):
        image = images[i]
        ax.imshow(image[0], cmap="gray_r") if image.shape[0] == 1 else ax.imshow(image.transpose(1, 2, 0))
        ax.set_title(f"{class_names[y_true[i]]}→{class_names[y_pred[i]]}", fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "misclassified.png", dpi=100)
    plt.close(fig)


def median_seconds(write, repeats: int, *args) -> float:
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            write(Path(tmp), *args)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    rng = np.random.default_rng(0)
    print("| size | usual grid (s) | ours (s) | ratio |\n| --- | --- | --- | --- |")
    for label, classes, shape in (("digits: 10 classes, 1x8x8", 10, (1, 8, 8)),
                                  ("CIFAR-100: 100 classes, 3x32x32", 100, (3, 32, 32))):
        images = rng.random((500, *shape), dtype=np.float32)
        y = rng.integers(0, classes, 500)
        logits = rng.standard_normal((500, classes)) + 2 * np.eye(classes)[y]
        names = tuple(f"class{i}" for i in range(classes))
        args = (images, y, logits, names, "bench")
        artifacts.write(Path(tempfile.mkdtemp()), *args)  # fonts and caches warm for both
        before = median_seconds(usual, repeats, *args)
        after = median_seconds(artifacts.write, repeats, *args)
        print(f"| {label} | {before:.3f} | {after:.3f} | {before / after:.1f}x |")


if __name__ == "__main__":
    main()
