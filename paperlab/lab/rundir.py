"""A run's folder under runs/: its key (the recipe, the data and the device, not the template's title or
claims), its lock (one process per run), and its state file (the stages done, the child runs open), which
`--resume` reads back."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from paperlab.errors import BadInput, PaperlabError
from paperlab.lab import distributed as dd
from paperlab.lab.spec import RunSpec


def key(*parts) -> str:
    """16 hex digits of what made something (a run, a cached model)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def world() -> list[str]:
    """Part of a run's and a model's key under torchrun: N processes do not give one process's numbers."""
    return [f"world={dd.world()}"] if dd.world() > 1 else []


def folder_names(spec: RunSpec, checksum: str, device: str) -> tuple[str, str]:
    """A run's folder under runs/, keyed by its recipe, data and device; and the name it had when the key held
    the whole resolved YAML (claims and estimate included), still found by --resume."""
    from paperlab.lab.templates import recipe_yaml, resolved_yaml

    return (f"{spec.name}-{key(recipe_yaml(spec), checksum, device, *world())}",
            f"{spec.name}-{key(resolved_yaml(spec), checksum, device, *world())}")


def inside(root: Path, path: Path) -> Path:
    """`path`, refused unless it lies under `root` (names from templates, --set and tags become paths)."""
    if not path.resolve().is_relative_to(root.resolve()):
        raise BadInput(f"{path} is outside the workspace {root}")
    return path


def hold(folder: Path, take: bool = True):
    """The lock of a run folder, taken at once or refused in one line (under torchrun rank 0 alone takes it)."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(folder) + ".lock")
    try:
        if take:
            lock.acquire(timeout=0)
    except Timeout:
        raise PaperlabError(f"the same run is already going on in another process (it holds {lock.lock_file});"
                            f" wait for it to finish, or change the seed or a setting") from None
    return lock


def _move_legacy(old: Path, new: Path) -> None:
    """A run begun when the key held the whole YAML moves to its recipe key, under its old lock: a process
    still running in the old folder is not moved from under."""
    lock = hold(old)
    try:
        os.replace(old, new)
    finally:
        lock.release()
    Path(lock.lock_file).unlink(missing_ok=True)


class RunDir:
    """The folder of one run, locked while this process works in it; `state` is its state file's contents."""

    def __init__(self, runs: Path, spec: RunSpec, checksum: str, device: str, resume: bool):
        name, legacy = folder_names(spec, checksum, device)
        self.path = inside(runs, runs / name)
        if resume and dd.leader() and not self.path.exists() and (runs / legacy).is_dir():
            _move_legacy(runs / legacy, self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = hold(self.path, take=dd.leader())  # under torchrun, rank 0 holds the run for all its workers
        try:
            self.state = self._open(resume)
        except BaseException:
            self.lock.release()
            raise

    def _open(self, resume: bool) -> dict:
        state_file = self.path / "state.json"
        if dd.leader():
            if not resume and self.path.exists():
                shutil.rmtree(self.path)
            self.path.mkdir(parents=True, exist_ok=True)
        dd.barrier()  # the other ranks read the run folder as rank 0 left it
        try:
            return json.loads(state_file.read_text()) if resume and state_file.exists() else {"stages": {}}
        except ValueError:
            return {"stages": {}}

    def save(self) -> None:
        if not dd.leader():
            return
        tmp = self.path / "state.json.tmp"
        try:
            tmp.write_text(json.dumps(self.state, indent=2))
            os.replace(tmp, self.path / "state.json")
        finally:
            tmp.unlink(missing_ok=True)

    def release(self) -> None:
        self.lock.release()
