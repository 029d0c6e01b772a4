"""The model cache: models that learned without a teacher (teachers, baseline students) and phases, keyed by
what made them (net, recipe, data, seed, device, and their teachers' keys), not by the template, so that ten
methods on one pair train one teacher. A damaged file is set aside and trained again; files are written
whole or not at all. `teachers pull` writes through `place`, which accepts only paperlab's own names."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from paperlab.lab import distributed as dd
from paperlab.lab.rundir import inside

NAME = re.compile(r"[A-Za-z0-9_]{1,40}-[0-9a-f]{16}\.pt")  # NET-<16 hex>.pt


def file_name(net_kind: str, lineage_key: str) -> str:
    return f"{net_kind}-{lineage_key}.pt"


def place(cache_dir: Path, name: str) -> Path:
    """Where a cached model of this name lives; anything but paperlab's own name format is refused (ValueError)."""
    if not NAME.fullmatch(name):
        raise ValueError(name)
    return inside(cache_dir / "teachers", cache_dir / "teachers" / name)


def read(path: Path, device) -> dict | None:
    """The cached model, or None where there is none; a damaged file is set aside (by rank 0) and None."""
    import torch

    if not path.exists():
        return None
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        if not dd.leader():  # rank 0 sets it aside and says so
            return None
        aside = path.with_name(path.name + ".damaged")
        os.replace(path, aside)
        print(f"warning: the cached model {path.name} is damaged ({type(exc).__name__}); set aside as "
              f"{aside.name}, training it again", file=sys.stderr)
        return None


def write(saved: dict, path: Path) -> None:
    from paperlab.lab.trainer import save_atomic

    save_atomic(saved, path)
