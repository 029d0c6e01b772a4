"""Files a stage leaves behind: confusion matrix (CSV, PNG), misclassified examples (CSV, grid PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> np.ndarray:
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def show(ax, image: np.ndarray) -> None:
    """One (C, H, W) image in [0, 1]: grey as ink on paper, colour as it is."""
    if image.shape[0] == 1:
        ax.imshow(image[0], cmap="gray_r")
    else:
        ax.imshow(np.clip(image.transpose(1, 2, 0), 0, 1))


def write(folder: Path, images: np.ndarray, y_true: np.ndarray, logits: np.ndarray, class_names: tuple[str, ...],
          title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    y_pred = logits.argmax(1)
    matrix = confusion(y_true, y_pred, len(class_names))
    np.savetxt(folder / "confusion_matrix.csv", matrix, fmt="%d", delimiter=",",
               header=",".join(class_names), comments="")
    np.savez_compressed(folder / "test_logits.npz", logits=logits.astype(np.float32), labels=y_true)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}: confusion matrix")
    fig.tight_layout()
    fig.savefig(folder / "confusion_matrix.png", dpi=100)
    plt.close(fig)

    wrong = np.flatnonzero(y_pred != y_true)
    with open(folder / "misclassified.csv", "w", encoding="utf-8") as out:
        out.write("index,true,predicted\n")
        out.writelines(f"{i},{y_true[i]},{y_pred[i]}\n" for i in wrong)
    shown = wrong[:36]
    cols = 6
    rows = max(1, int(np.ceil(len(shown) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.4, rows * 1.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, shown):
        show(ax, images[i])
        ax.set_title(f"{class_names[y_true[i]]}→{class_names[y_pred[i]]}", fontsize=7)
    fig.suptitle(f"{title}: {len(wrong)} misclassified test examples (first {len(shown)})", fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "misclassified.png", dpi=100)
    plt.close(fig)
