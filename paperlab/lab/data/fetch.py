"""One checked download: the first mirror whose file has the expected SHA-256 wins; a partial file never
takes the final name. PAPERLAB_DATA_MIRRORS (comma-separated base URLs) replaces the dataset's own mirrors."""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from pathlib import Path


def mirrors(default: tuple[str, ...]) -> list[str]:
    chosen = os.environ.get("PAPERLAB_DATA_MIRRORS")
    return chosen.split(",") if chosen else list(default)


def fetch(bases: list[str], name: str, final: Path, sha256: str) -> str | None:
    """Download `name` from the first base URL that serves it with the right digest into `final`; return None,
    or the last reason it failed."""
    final.parent.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + ".part")
    error = "no mirror"
    for base in bases:
        try:
            with urllib.request.urlopen(base.rstrip("/") + "/" + name, timeout=60) as response, \
                    open(part, "wb") as out:
                shutil.copyfileobj(response, out)
        except OSError as exc:
            part.unlink(missing_ok=True)
            error = f"{base}: {exc}"
            continue
        digest = hashlib.sha256()
        with open(part, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != sha256:
            part.unlink()
            error = f"{base}: SHA-256 mismatch for {name}"
            continue
        os.replace(part, final)
        return None
    return error
