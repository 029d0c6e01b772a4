"""Start this week's paper from the closest shipped thing: `templates new NAME --from dkd` writes an editable
copy of a template into the workspace (its recipe kept, the claims emptied for the new paper's own, the
paper linked); `methods new NAME --from kd` writes a method file (the source method's code under the new
name, its docstring a skeleton for the formula) and a test file the user runs with pytest."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from paperlab.errors import BadInput
from paperlab.lab.spec import NAME


def _check_name(name: str, kind: str) -> None:
    if not re.fullmatch(NAME, name) or len(name) > 60:
        raise BadInput(f"{kind} name {name[:60]!r}: letters, digits, '-' and '_' only, starting with a letter or digit")


def new_template(home: Path, name: str, source: str, paper: str | None = None) -> Path:
    import yaml

    from paperlab.lab.templates import template_file, template_names

    _check_name(name, "template")
    if name in template_names():
        raise BadInput(f"a template named {name!r} exists already; choose another name")
    data = yaml.safe_load(template_file(source)[0].read_text(encoding="utf-8"))
    if paper is not None:
        from paperlab.library.ids import normalise

        data["paper"] = normalise(paper)
    data["name"] = name
    data["title"] = f"{name} (started from {source}: {data.get('title', '')})"
    data["claims"] = []  # the new paper's numbers go here, each with its source (table, row)
    data.pop("claim_defaults", None)
    for block in (data.get("pairs") or {}).values():
        (block or {}).pop("claims", None)
    folder = home / "templates"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.yaml"
    header = (f"# Started from the shipped template {source!r} (`paperlab templates new {name} --from {source}`).\n"
              "# Its recipe is kept; add the paper's claims under claims: (stage, value, metric, dataset, epoch,\n"
              "# source: the table and row), and say in `differs:` where our loss departs from the paper's code.\n")
    target.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return target


def new_method(home: Path, name: str, source: str) -> tuple[Path, Path]:
    from paperlab.lab import extensions
    from paperlab.lab.distillers import REGISTRY, get

    _check_name(name, "method")
    extensions.load(home)
    if name in REGISTRY:
        raise BadInput(f"a method named {name!r} exists already; choose another name")
    cls = get(source)
    code = Path(inspect.getsourcefile(cls)).read_text(encoding="utf-8")
    code = re.sub(r'^"""(.*?)"""', lambda m: _docstring(name, source, m.group(1)), code, count=1, flags=re.S)
    code = code.replace(f'@register("{source}")', f'@register("{name}")')
    folder = home / "methods"
    folder.mkdir(parents=True, exist_ok=True)
    module = name.replace("-", "_")
    target, test = folder / f"{module}.py", folder / f"test_{module}.py"
    if target.exists() or test.exists():
        raise BadInput(f"{target} or {test} exists already; move it aside or choose another name")
    target.write_text(code, encoding="utf-8")
    test.write_text(TEST.format(name=name, module=module), encoding="utf-8")
    return target, test


def _docstring(name: str, source: str, original: str) -> str:
    return (f'"""{name}: <the paper, its arXiv ID>. Started from paperlab\'s {source!r} method.\n\n'
            "    <the loss, term by term, as the paper writes it; then say whose code it equals and where it\n"
            "    departs from the paper>\n\n"
            f"What {source} was (edit it away once yours is written):\n" + original.strip() + '\n"""')


TEST = '''"""Tests of the {name} method: `pytest {module}.py` from this folder, or `paperlab methods check {name}`."""

import torch

from paperlab.lab import extensions
from paperlab.lab.method_check import check


def test_{module}_passes_the_method_checks():
    extensions.load()
    failed = [f.line() for f in check("{name}") if not f.ok]
    assert not failed, failed


def test_{module}_by_hand():
    """Replace with the loss on tiny tensors against a value you work out by hand (plain Python sums)."""
    from paperlab.lab.distillers import get

    extensions.load()
    assert get("{name}").Params is not None
    assert torch.isfinite(torch.tensor(0.0))
'''
