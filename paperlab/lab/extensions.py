"""A user's own methods, without editing paperlab: every `$PAPERLAB_HOME/methods/*.py` (test_*.py left out)
is imported once, so its `@register(...)` decorators run exactly as the shipped ones' do, and so are the
entry points of installed packages (group `paperlab.methods`). Nothing else in the lab knows where a method
came from. An error in a user's file is one line naming that file and line. (Nets and datasets have no
registry yet: a user's net or data set needs paperlab's code changed; see README.)"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path

from paperlab.errors import BadInput

GROUPS = ("paperlab.methods",)
KINDS = ("methods",)
_loaded: set[str] = set()
ORIGIN: dict[str, str] = {}  # module name -> where it came from (a file, a distribution's entry point)


def workspace() -> Path:
    from paperlab.settings import load

    return load().home


def user_files(home: Path | None = None) -> list[Path]:
    home = home or workspace()
    return [p for kind in KINDS for p in sorted((home / kind).glob("*.py")) if not p.name.startswith("test_")]


def where(exc: BaseException, files: list[Path] | None = None) -> str | None:
    """'FILE:LINE' of the deepest frame of the traceback in a user's extension file, or None."""
    names = {str(p.resolve()) for p in (files if files is not None else user_files())}
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if str(Path(f.filename).resolve()) in names]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None


def load(home: Path | None = None) -> None:
    """Import the workspace's methods and nets and the installed packages' entry points, once each."""
    for path in user_files(home):
        key = str(path.resolve())
        if key in _loaded:
            continue
        _loaded.add(key)
        name = f"paperlab_user_{path.parent.name}_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(name, None)
            at = where(exc, [path]) or str(path)
            raise BadInput(f"{at}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
                           f"(while loading your {path.parent.name[:-1]} file; --debug for the traceback)") from exc
        ORIGIN[name] = str(path)
    from importlib.metadata import entry_points

    for group in GROUPS:
        for ep in entry_points(group=group):
            key = f"{group}:{ep.name}:{ep.value}"
            if key in _loaded:
                continue
            _loaded.add(key)
            try:
                ep.load()
            except Exception as exc:
                raise BadInput(f"entry point {ep.name} = {ep.value} ({group}) could not be loaded: "
                               f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
            ORIGIN[ep.value.split(":")[0]] = f"entry point {ep.name} ({group})"


def origin_of(cls) -> str:
    """'shipped', a user's file, or an entry point: where a registered class was defined."""
    module = getattr(cls, "__module__", "")
    if module.startswith("paperlab."):
        return "shipped"
    return ORIGIN.get(module, module)
