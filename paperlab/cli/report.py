"""`paperlab report`: one page for a mentoring session."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer


def report(
    paper: str = typer.Option(None, "--paper", help="Every run of every template linked to this paper."),
    template: str = typer.Option(None, "--template", help="Every run of this template."),
    run: list[str] = typer.Option([], "--run", help="Exactly these runs (a parent run means its stages)."),
    fmt: str = typer.Option("html", "--format", "-f", help="html or md."),
    output: Path = typer.Option(None, "--output", "-o", help="Default: report-<id>-<date>.<ext> here."),
    open_: bool = typer.Option(False, "--open", help="Open the report in a browser."),
) -> None:
    """Paper claims vs reproduced numbers, runs, plots and failure analysis on one page."""
    from paperlab.errors import BadInput

    if sum(bool(x) for x in (paper, template, run)) != 1:
        raise BadInput("name exactly one of --paper ID, --template NAME or --run RUN_ID")
    _check_format(fmt)
    if template:
        from paperlab.lab.templates import template_names

        template_names(check=template)
    from paperlab.reports.collect import collect
    from paperlab.reports.render import write
    from paperlab.settings import load

    data = collect(load(), paper=paper, template=template, run_ids=run or None)
    subject = (paper or template or run[0][:12]).replace("/", "_")
    output = _output_path(output, f"report-{subject}-{date.today().isoformat()}.{fmt}", fmt)
    _show(write(data, output, fmt), open_)


def _check_format(fmt: str) -> None:
    from paperlab.errors import BadInput

    if fmt not in ("html", "md"):
        raise BadInput(f"unknown format {fmt!r}: use html or md")


def _show(page: Path, open_: bool) -> None:
    """Print where the page is; with --open, open it in a browser."""
    print(page.resolve())
    if open_:
        import webbrowser

        webbrowser.open(page.resolve().as_uri())


def _output_path(output: Path | None, default: str, fmt: str) -> Path:
    """-o FILE, -o FOLDER (the default name inside it) or nothing (the default name here); the format's
    extension is added to a name without one, so `-o rep -f md` gives rep.md beside its rep_files/."""
    if output is None:
        return Path(default)
    if output.is_dir():
        return output / default
    return output if output.suffix else output.with_name(f"{output.name}.{fmt}")


def compare(
    template: list[str] = typer.Option([], "--template", "-t", help="A template to compare (repeatable)."),
    tag: str = typer.Option(None, "--tag", help="The templates of the papers with this tag."),
    teacher: str = typer.Option(None, "--teacher", help="Only runs with this teacher net, e.g. resnet32x4."),
    student: str = typer.Option(None, "--student", help="Only runs with this student net, e.g. resnet8x4."),
    fmt: str = typer.Option("html", "--format", "-f", help="html or md."),
    output: Path = typer.Option(None, "--output", "-o", help="Default: compare-<date>.<ext> here."),
    open_: bool = typer.Option(False, "--open", help="Open the page in a browser."),
) -> None:
    """A leaderboard of methods per teacher/student pair: claims vs ours over seeds, significance, failures."""
    from paperlab.errors import BadInput

    _check_format(fmt)
    if not (template or tag or teacher or student):
        raise BadInput("name what to compare: --template NAME (repeatable), --tag TAG, or --teacher/--student NET")
    if template:
        from paperlab.lab.templates import template_names

        for name in template:
            template_names(check=name)
    from paperlab.reports.compare import build
    from paperlab.reports.render import comparison
    from paperlab.settings import load

    data = build(load(), template or None, tag, teacher, student)
    output = _output_path(output, f"compare-{date.today().isoformat()}.{fmt}", fmt)
    _show(comparison(data, output, fmt), open_)


def register(app: typer.Typer) -> None:
    app.command()(report)
    app.command()(compare)
