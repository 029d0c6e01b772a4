"""A user's own images, in torchvision's ImageFolder layout: `DIR/train/<class>/*.png` and `DIR/test/<class>/*`
(png, jpg, bmp, gif, ppm, pgm), the same class folders in both. Grey images stay one channel, anything else
becomes RGB; every image takes the most common size of the training images (others are resized, and the note
says how many). The per-channel mean and std of the training images are computed and recorded; the arrays are
checksummed like the shipped sets. A bad layout is one line."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from paperlab.errors import BadInput

SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm"}


def _classes(split: Path) -> dict[str, list[Path]]:
    return {d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in SUFFIXES)
            for d in sorted(split.iterdir()) if d.is_dir()}


def _layout(root: Path) -> tuple[list[str], dict[str, dict[str, list[Path]]]]:
    if root is None:
        raise BadInput("dataset folder reads your images from --data-dir DIR (DIR/train/<class>/*.png, "
                       "DIR/test/<class>/*.png)")
    missing = [s for s in ("train", "test") if not (root / s).is_dir()]
    if missing:
        raise BadInput(f"{root} has no {' or '.join(f'{m}/' for m in missing)} folder: the layout is "
                       "DIR/train/<class>/*.png and DIR/test/<class>/*.png")
    splits = {s: _classes(root / s) for s in ("train", "test")}
    names = list(splits["train"])
    if len(names) < 2:
        raise BadInput(f"{root / 'train'} holds {len(names)} class folder(s); at least 2 are needed")
    if list(splits["test"]) != names:
        raise BadInput(f"{root}: train/ and test/ have other class folders ({', '.join(names)} against "
                       f"{', '.join(splits['test']) or 'none'})")
    empty = [f"{s}/{c}" for s, classes in splits.items() for c, files in classes.items() if not files]
    if empty:
        raise BadInput(f"{root}: no images in {', '.join(empty[:5])} ({', '.join(sorted(SUFFIXES))})")
    return names, splits


def read(root: Path | None):
    """(x_train, y_train, x_test, y_test, classes, note, mean, std) as float arrays in [0, 1], NCHW."""
    from PIL import Image, UnidentifiedImageError

    names, splits = _layout(root)
    opened: dict[str, list[tuple[Image.Image, int]]] = {}
    for split, classes in splits.items():
        opened[split] = []
        for label, files in enumerate(classes.values()):
            for path in files:
                try:
                    with Image.open(path) as image:
                        image.load()
                        opened[split].append((image.copy(), label))
                except (UnidentifiedImageError, OSError) as exc:
                    raise BadInput(f"{path} is not an image paperlab can read ({type(exc).__name__})") from None
    grey = all(im.mode in ("L", "1", "I;16", "I") for split in opened.values() for im, _ in split)
    size = Counter(im.size for im, _ in opened["train"]).most_common(1)[0][0]
    resized = sum(im.size != size for split in opened.values() for im, _ in split)

    def arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
        x = np.stack([np.asarray(im.convert("L" if grey else "RGB").resize(size), dtype=np.float32) / 255.0
                      for im, _ in opened[split]])
        x = x[:, None] if grey else x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x), np.array([label for _, label in opened[split]], dtype=np.int64)

    (xtr, ytr), (xte, yte) = arrays("train"), arrays("test")
    mean = tuple(float(v) for v in xtr.mean(axis=(0, 2, 3)))
    std = tuple(float(v) for v in xtr.std(axis=(0, 2, 3)))
    note = (f"your images from {root}: {len(ytr)} training and {len(yte)} test images of {len(names)} classes, "
            f"{size[0]}x{size[1]} {'grey' if grey else 'RGB'}, mean {', '.join(f'{m:.4f}' for m in mean)}, "
            f"std {', '.join(f'{s:.4f}' for s in std)}" + (f"; {resized} resized to that size" if resized else ""))
    return xtr, ytr, xte, yte, tuple(names), note, mean, std
