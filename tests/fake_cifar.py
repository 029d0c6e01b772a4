"""A small synthetic CIFAR-100 in the official "python version" layout (pickled dicts of numpy arrays),
with a learnable signal: each class is a colour."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def make(root: Path, n_train: int = 400, n_test: int = 100, classes: int = 100, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    colours = rng.integers(0, 256, (classes, 3))

    def images(labels: np.ndarray) -> np.ndarray:
        x = rng.integers(0, 64, (len(labels), 3, 32, 32)) + colours[labels][:, :, None, None] * 0.75
        return np.clip(x, 0, 255).astype(np.uint8).reshape(len(labels), 3072)

    for name, n in (("train", n_train), ("test", n_test)):
        labels = np.arange(n) % classes
        batch = {b"data": images(labels), b"fine_labels": labels.tolist(), b"coarse_labels": (labels // 5).tolist(),
                 b"filenames": [f"{i}.png".encode() for i in range(n)], b"batch_label": name.encode()}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"fine_label_names": [f"class{i}".encode() for i in range(classes)],
            b"coarse_label_names": [f"super{i}".encode() for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return root
