"""ReportData -> one self-contained HTML page (images inline, no scripts, print CSS) or Markdown with its
images in a folder beside it. Jinja2 with autoescape; notes go through markdown-it with raw HTML off."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from paperlab.reports.collect import ReportData
from paperlab.reports.plots import all_figures, worst_classes


def _markdown(text: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).render(text)  # raw HTML comes out escaped


def _md_escape(value: object) -> str:
    """One line of Markdown text that renders as the value itself: no HTML, no emphasis, no table cells."""
    from markupsafe import Markup

    if isinstance(value, Markup):  # already made safe by a filter below
        return str(value)
    text = "" if value is None else str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]|#!])", r"\\\1", re.sub(r"\s+", " ", text))  # one line, spaces kept


def _md_code(value: object) -> str:
    """An inline code span of one line whose fence no backtick in the value can close; pipes kept in the cell."""
    from markupsafe import Markup

    text = " ".join(("" if value is None else str(value)).split()).replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return Markup(f"{fence} {text} {fence}") if text else Markup("")


def _md_block(text: object) -> str:
    """A note's own Markdown, kept as Markdown, with any raw HTML in it shown as text."""
    from markupsafe import Markup

    return Markup(str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def _md_link(url: object) -> str:
    from urllib.parse import quote

    from markupsafe import Markup

    return Markup(quote(str(url), safe=":/?#@!$&'*+,;=%~.-_"))


def _num(value: object, digits: int = 1) -> str:
    if value is None:
        return "–"
    if not isinstance(value, float):
        return f"{value:,}"
    text = f"{value:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text  # 100.0 with 0 digits is "100", not "1"


def _env(fmt: str):
    """HTML autoescapes every value; Markdown passes every value through _md_escape (its `finalize`), so a
    tag or title read from MLflow or the library is text in both, whatever it holds."""
    import jinja2
    from markupsafe import Markup

    from paperlab.resources import templates_dir

    options = {"autoescape": True} if fmt == "html" else {"finalize": _md_escape}
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates_dir() / "reports"), trim_blocks=True,
                             lstrip_blocks=True, undefined=jinja2.StrictUndefined, **options)
    env.filters["markdown"] = lambda text: Markup(_markdown(text))
    env.filters.update(code=_md_code, note=_md_block, link=_md_link, num=_num)
    return env


def _context(data: ReportData) -> dict:
    figures = all_figures(data)
    param_keys = [k for k in data.varying if not k.startswith(("name", "title"))]
    return {"d": data, "figures": figures, "worst": worst_classes(data), "param_keys": param_keys,
            "note_sections": [(s, data.note[s]) for s in ("Summary", "Key idea", "Questions for the mentor")
                              if s in data.note]}


def html(data: ReportData) -> str:
    context = _context(data)
    for figure in context["figures"]:
        figure.src = "data:image/png;base64," + base64.b64encode(figure.png).decode()
    return _env("html").get_template("report.html.j2").render(**context)


def markdown(data: ReportData, out: Path) -> str:
    context = _context(data)
    folder = out.with_name(out.stem + "_files")
    if context["figures"]:
        folder.mkdir(parents=True, exist_ok=True)
    for figure in context["figures"]:
        (folder / f"{figure.name}.png").write_bytes(figure.png)
        figure.src = f"{folder.name}/{figure.name}.png"
    return _env("md").get_template("report.md.j2").render(**context)


def _write_atomically(out: Path, make_text) -> Path:
    """Write the page through a temporary file; a Markdown page's image folder is removed again if the page
    cannot be written."""
    import os
    import shutil

    folder = out.with_name(out.stem + "_files")
    existed = folder.exists()
    temporary = out.with_name(f".{out.name}.tmp")
    try:
        temporary.write_text(make_text(), encoding="utf-8")
        os.replace(temporary, out)
    except BaseException:
        temporary.unlink(missing_ok=True)
        if not existed:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return out


def write(data: ReportData, out: Path, fmt: str) -> Path:
    return _write_atomically(out, lambda: html(data) if fmt == "html" else markdown(data, out))


def comparison(data, out: Path, fmt: str) -> Path:
    """The method comparison page (reports/compare.py) in the same two formats."""
    from paperlab.reports.plots import leaderboard

    def text() -> str:
        figures = [[leaderboard(group)] for group in data.groups]
        folder = out.with_name(out.stem + "_files")
        for i, group_figures in enumerate(figures):
            for figure in group_figures:
                if fmt == "html":
                    figure.src = "data:image/png;base64," + base64.b64encode(figure.png).decode()
                else:
                    folder.mkdir(parents=True, exist_ok=True)
                    (folder / f"{figure.name}-{i}.png").write_bytes(figure.png)
                    figure.src = f"{folder.name}/{figure.name}-{i}.png"
        name = "compare.html.j2" if fmt == "html" else "compare.md.j2"
        return _env(fmt).get_template(name).render(c=data, figures=figures)

    return _write_atomically(out, text)
