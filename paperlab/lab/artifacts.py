"""Files a stage leaves behind: confusion matrix (CSV, PNG), misclassified examples (CSV, grid PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> np.ndarray:
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def mosaic(images: np.ndarray, cols: int, band: float = 0.4, gap: int = 1) -> tuple[np.ndarray, list]:
    """(N, C, H, W) images in [0, 1] as one RGB picture of `cols` tiles a row, white around each tile and a
    white band of `band` x H above it for its label; grey is drawn as ink on paper (1 - x). Also the
    (x, y) in imshow's coordinates of the middle of each tile's top edge, where its label sits."""
    n, c, h, w = images.shape
    rows = max(1, -(-n // cols))
    top = max(1, round(band * h))
    cell_h, cell_w = top + h + gap, w + 2 * gap
    picture = np.ones((rows * cell_h, cols * cell_w, 3), dtype=np.float32)
    tiles = 1 - images[:, :1] if c == 1 else np.clip(images[:, :3], 0, 1)
    anchors = []
    for k, tile in enumerate(tiles):
        r, q = divmod(k, cols)
        y, x = r * cell_h + top, q * cell_w + gap
        picture[y:y + h, x:x + w] = tile.transpose(1, 2, 0)  # one channel broadcasts to three
        anchors.append((x + (w - 1) / 2, y - 0.5 - 0.1 * top))  # a pixel's centre is its index
    return picture, anchors


def _margin(labels: tuple[str, ...], size: float) -> float:
    """Inches a column of tick labels of this font size takes, without measuring them."""
    return 0.35 + 0.6 * size / 72 * max((len(label) for label in labels), default=1)


def write(folder: Path, images: np.ndarray, y_true: np.ndarray, logits: np.ndarray, class_names: tuple[str, ...],
          title: str) -> None:
    """One figure with one axes each (no per-example subplots and no layout pass: both cost seconds a stage
    at CIFAR-100's 100 classes and 36 examples; benchmarks/bench_artifacts.py)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    y_pred = logits.argmax(1)
    matrix = confusion(y_true, y_pred, len(class_names))
    np.savetxt(folder / "confusion_matrix.csv", matrix, fmt="%d", delimiter=",",
               header=",".join(class_names), comments="")
    np.savez_compressed(folder / "test_logits.npz", logits=logits.astype(np.float32), labels=y_true)
    edge = _margin(class_names, 7) + 0.2
    side = max(4.0, 0.12 * len(class_names))  # about a line of 7-point text per class: no label overlaps
    width, height = edge + side + 0.15, edge + side + 0.35
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((edge / width, edge / height, 1 - (edge + 0.15) / width, 1 - (edge + 0.35) / height))
    ax.imshow(matrix, cmap="Blues", aspect="auto")
    ax.set_xticks(range(len(class_names)), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}: confusion matrix", fontsize=9)
    fig.savefig(folder / "confusion_matrix.png", dpi=100)
    plt.close(fig)

    wrong = np.flatnonzero(y_pred != y_true)
    with open(folder / "misclassified.csv", "w", encoding="utf-8") as out:
        out.write("index,true,predicted\n")
        out.writelines(f"{i},{y_true[i]},{y_pred[i]}\n" for i in wrong)
    shown = wrong[:36]
    cols = 6
    rows = max(1, -(-len(shown) // cols))
    picture, anchors = mosaic(images[shown], cols)
    fig = plt.figure(figsize=(cols * 1.4, rows * 1.6 + 0.3))
    ax = fig.add_axes((0, 0, 1, rows * 1.6 / (rows * 1.6 + 0.3)))
    ax.imshow(picture, aspect="auto", interpolation="nearest")
    ax.axis("off")
    for (x, y), i in zip(anchors, shown):
        ax.text(x, y, f"{class_names[y_true[i]]}→{class_names[y_pred[i]]}", fontsize=7, ha="center", va="bottom")
    fig.suptitle(f"{title}: {len(wrong)} misclassified test examples (first {len(shown)})", fontsize=8, y=0.995,
                 va="top")
    fig.savefig(folder / "misclassified.png", dpi=100)
    plt.close(fig)
