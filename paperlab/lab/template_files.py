"""Where templates come from: the shipped ones (inside the package or the repository) and the workspace's
($PAPERLAB_HOME/templates/*.yaml, bases in templates/bases/), the workspace's winning with a warning; each file
read as one YAML mapping or refused in one line naming it; templates found by the paper they reproduce."""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path
from typing import Any

from paperlab.errors import BadInput
from paperlab.lab.spec import NAME


def _experiments_dir() -> Path:
    from paperlab.resources import templates_dir

    return templates_dir() / "experiments"


def _workspace_dir() -> Path:
    from paperlab.settings import load

    return load().home / "templates"


_warned: set[str] = set()


def template_files() -> dict[str, tuple[Path, str]]:
    """Every template by name: its file and where it comes from ('shipped' or 'workspace'). A workspace
    template ($PAPERLAB_HOME/templates/NAME.yaml) may shadow a shipped one of its name, with a warning."""
    found = {p.stem: (p, "shipped") for p in _experiments_dir().glob("*.yaml")}
    for path in sorted(_workspace_dir().glob("*.yaml")):
        if not re.fullmatch(NAME, path.stem):
            continue
        if path.stem in found and path.stem not in _warned:
            _warned.add(path.stem)
            print(f"warning: your template {path} shadows the shipped template {path.stem!r}", file=sys.stderr)
        found[path.stem] = (path, "workspace")
    return dict(sorted(found.items()))


def template_file(name: str) -> tuple[Path, str]:
    template_names(check=name)
    return template_files()[name]


def template_names(check: str | None = None) -> list[str]:
    names = list(template_files())
    if check is not None and check not in names:
        shown = check if len(check) <= 80 else check[:77] + "..."
        close = difflib.get_close_matches(check, names, n=1) if re.match(NAME, check) else []
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise BadInput(f"unknown template {shown!r}{hint} (templates: {', '.join(names)})")
    return names


def _read_yaml(path: Path, where: str) -> dict[str, Any]:
    """One template file as a mapping; a file that is not one is one line naming it (no parser's names)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read template {where} ({path}): {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BadInput(f"template {where} ({path}) is not valid YAML{at}: {problem}") from None
    if not isinstance(data, dict):
        raise BadInput(f"template {where} ({path}) is not a mapping of keys to values")
    return data


def by_paper() -> dict[str, list[str]]:
    """Every template (shipped or the user's) by the arXiv ID of its `paper:` (its base's where it says none):
    how a paper in the library finds its experiments without `link`. A broken template is left out here."""
    out: dict[str, list[str]] = {}
    for name, (path, _) in template_files().items():
        try:
            data = _read_yaml(path, repr(name))
            paper = data.get("paper")
            if paper is None and data.get("extends"):
                base = next((b for b in (_workspace_dir() / "bases" / f"{data['extends']}.yaml",
                                         _experiments_dir() / "bases" / f"{data['extends']}.yaml") if b.is_file()), None)
                paper = _read_yaml(base, "base").get("paper") if base else None
        except (BadInput, TypeError):
            continue
        if paper:
            out.setdefault(str(paper), []).append(name)
    return out
