"""Paper library commands: init, add, list, show, search, tag, venue(s), note, sync, rm, export, import, link."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from paperlab.cli.output import clean, console, error_line, print_json, say, table

JSON = typer.Option(False, "--json", help="Print JSON for scripts.")


def with_templates(papers: list[dict]) -> list[dict]:
    """Each paper's templates: those linked by hand and every template whose `paper:` is the paper."""
    from paperlab.lab.templates import by_paper

    found = by_paper()
    for paper in papers:
        paper["templates"] = sorted({*paper["templates"], *found.get(paper["arxiv_id"], [])})
    return papers


def _settings():
    from paperlab.settings import load

    return load()


def init(rebuild: bool = typer.Option(False, "--rebuild", help="Add rows for notes whose paper is missing "
                                     "(after a lost or emptied paperlab.db), from the notes' front matter.")) -> None:
    """Create the workspace (idempotent) and print where things live."""
    from paperlab.library.db import open_engine, shown_url

    settings = _settings()
    settings.notes_dir.mkdir(parents=True, exist_ok=True)
    if rebuild:
        from paperlab.library.papers import rebuild_from_notes

        rebuilt, skipped = rebuild_from_notes(settings)
        for outcome in rebuilt:
            say(f"rebuilt   {outcome.arxiv_id}  {outcome.title}")
        for reason in skipped:
            say(f"skipped   {reason}")
        say(f"{len(rebuilt)} papers rebuilt from notes; `paperlab add ID...` brings back their authors and dates")
    open_engine(settings).dispose()
    for what, where in [
        ("workspace", settings.home), ("library database", shown_url(settings.db_url)), ("notes", settings.notes_dir),
        ("MLflow tracking", shown_url(settings.mlflow_uri)), ("datasets", settings.data_dir), ("arXiv API", settings.arxiv_url),
    ]:
        say(f"{what:>16}: {where}")


def add(
    arxiv_ids: list[str] = typer.Argument(..., metavar="ID...", help="arXiv IDs, arXiv: IDs or abs/pdf URLs."),
    tag: list[str] = typer.Option([], "--tag", "-t", help="Tag to add (repeatable)."),
    venue: str = typer.Option(None, "--venue", help='Venue set by hand, e.g. "CVPR 2022"; wins over detection.'),
) -> None:
    """Fetch papers from arXiv (one query), store or refresh them, and open a review note for each."""
    from paperlab.lab.templates import by_paper
    from paperlab.library.papers import add as add_papers

    code = 0
    templates = None  # by paper ID, read once
    for outcome in add_papers(_settings(), arxiv_ids, tag, venue):
        if outcome.error is not None:
            error_line(str(outcome.error) if outcome.arxiv_id in str(outcome.error)
                       else f"{outcome.arxiv_id}: {outcome.error}")
            code = max(code, 1) if outcome.error.exit_code == 1 else (code or 2)
            continue
        venue_text = f"  [{outcome.venue}]" if outcome.venue else ""
        note = "new note" if outcome.extra["wrote_note"] else "note untouched"
        templates = by_paper() if templates is None else templates
        found = templates.get(outcome.arxiv_id)
        runs = f"  [templates: {', '.join(found)}]" if found else ""
        say(f"{outcome.status:<9} {outcome.arxiv_id}v{outcome.extra['version']}  {outcome.title}{venue_text}"
            f"  ({note}: {outcome.note_path}){runs}")
    raise typer.Exit(code)


def list_(
    venue: str = typer.Option(None, "--venue", help='Venue, e.g. "CVPR" or "CVPR 2022".'),
    year: int = typer.Option(None, "--year", help="Venue year (or arXiv year when no venue)."),
    tag: str = typer.Option(None, "--tag", help="Only papers with this tag."),
    top_tier: bool = typer.Option(False, "--top-tier", help="Only papers at top-tier venues."),
    as_json: bool = JSON,
) -> None:
    """List the papers in the library, newest first."""
    from paperlab.library.db import Reader
    from paperlab.library.queries import list_papers, to_json, venue_label

    with Reader(_settings()) as reader:
        rows = list_papers(reader, venue, year, tag, top_tier)
    if as_json:
        return print_json(with_templates([to_json(r) for r in rows]))
    table(["arXiv", "published", "venue", "first author", "tags", "title"], [
        [r["arxiv_id"], str(r["published"] or "")[:10], venue_label(r),
         (r["authors"] or [""])[0] + (" et al." if len(r["authors"]) > 1 else ""), " ".join(r["tags"]), r["title"]]
        for r in rows], title=f"{len(rows)} papers")


def show(arxiv_id: str = typer.Argument(..., metavar="ID"), as_json: bool = JSON) -> None:
    """Everything stored about one paper."""
    from paperlab.library.db import Reader
    from paperlab.library.queries import get_paper, to_json

    with Reader(_settings()) as reader:
        paper = with_templates([to_json(get_paper(reader, arxiv_id))])[0]
    if as_json:
        return print_json(paper)
    out = console()
    out.print(clean(paper["title"]), style="bold", markup=False)
    for key in ("arxiv_id", "version", "authors", "published", "updated", "venue", "venue_detail", "tags",
                "templates", "primary_category", "comment", "journal_ref", "doi", "url", "pdf_url", "note_path"):
        value = paper[key]
        if value in (None, [], ""):
            continue
        out.print(f"{key:>16}: ", end="", markup=False)
        out.print(clean(", ".join(value) if isinstance(value, list) else value), markup=False)
    out.print()
    out.print(clean(paper["abstract"]), markup=False)


def search(query: str = typer.Argument(..., help="Words to find (all must match; word* for a prefix)."),
           limit: int = typer.Option(20, "--limit", "-n"), as_json: bool = JSON) -> None:
    """Full-text search over titles, authors, abstracts and notes, best match first."""
    from paperlab.library.db import Reader
    from paperlab.library.queries import papers_by_id, to_json
    from paperlab.library.search import search as run_search

    with Reader(_settings()) as reader:
        hits = run_search(reader, query, limit)
        papers = papers_by_id(reader, [h["paper_id"] for h in hits])
    results = [to_json(papers[h["paper_id"]]) | {"score": round(-h["score"], 4), "snippet": h["snippet"]}
               for h in hits]
    if as_json:
        return print_json(results)
    table(["arXiv", "title", "match"], [[r["arxiv_id"], r["title"], r["snippet"]] for r in results],
          title=f"{len(results)} hits for {query!r}")


def tag(arxiv_id: str = typer.Argument(..., metavar="ID"),
        tags: list[str] = typer.Argument(..., metavar="TAG..."),
        remove: bool = typer.Option(False, "--remove", help="Remove these tags instead.")) -> None:
    """Add tags to a paper (or remove them)."""
    from paperlab.library.papers import set_tags

    now = set_tags(_settings(), arxiv_id, tags, remove)
    say(f"{arxiv_id}: tags now {' '.join(now) or '(none)'}")


def venue(arxiv_id: str = typer.Argument(..., metavar="ID"),
          name: str = typer.Argument(..., metavar="VENUE", help='e.g. "ICCV 2023" or "NeurIPS 2014 workshop".')
          ) -> None:
    """Set a paper's venue by hand (kept when the paper is refreshed)."""
    from paperlab.library.papers import set_venue

    say(f"{arxiv_id}: venue set to {set_venue(_settings(), arxiv_id, name)}")


def venues(as_json: bool = JSON) -> None:
    """The venue registry: canonical names, full names, area, aliases, tier."""
    from dataclasses import asdict

    from paperlab.library.venues import registry

    rows = list(registry().values())
    if as_json:
        return print_json([asdict(v) for v in rows])
    table(["venue", "full name", "kind", "area", "top tier", "aliases"],
          [[v.short, v.full, v.kind, v.area, "yes" if v.top_tier else "", ", ".join(v.aliases)] for v in rows])


def note(arxiv_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Open a paper's review note in $EDITOR (or print its path when no editor is set). In a team's library the
    note is synced before and after: others' edits come in first, yours go out when the editor closes."""
    from paperlab.library.db import Reader
    from paperlab.library.notes import open_in_editor
    from paperlab.library.queries import get_paper

    settings = _settings()
    with Reader(settings) as reader:
        paper = get_paper(reader, arxiv_id)
        path = Path(paper["note_path"])
        team = not reader.is_sqlite
        if team:
            _report_sync(reader, settings, [paper["arxiv_id"]])
    if not path.exists():
        from paperlab.errors import PaperlabError

        raise PaperlabError(f"the note {path} is gone; `paperlab add {arxiv_id}` writes a fresh one")
    if not open_in_editor(path):
        say(path)
        if team:
            say("edit it, then run `paperlab sync` to save it to the team's library", err=True)
        return
    if team:
        with Reader(settings) as reader:
            _report_sync(reader, settings, [paper["arxiv_id"]])


def _report_sync(reader, settings, arxiv_ids: list[str] | None = None) -> None:
    from paperlab.errors import PaperlabError
    from paperlab.library.shared_notes import sync as sync_notes

    results = sync_notes(reader, settings, arxiv_ids)
    for r in results:
        if r.action in ("pushed", "pulled"):
            say(f"{r.action:<9} {r.arxiv_id}")
    conflicts = [r.message for r in results if r.action == "conflict"]
    if conflicts:
        for message in conflicts[:-1]:
            error_line(message)
        raise PaperlabError(conflicts[-1])


def sync() -> None:
    """A team's library: save this machine's note edits to it and fetch the others' (refused, with both texts
    kept, where someone saved the same note first)."""
    from paperlab.errors import BadInput
    from paperlab.library.db import Reader

    settings = _settings()
    with Reader(settings) as reader:
        if reader.is_sqlite:
            raise BadInput("`paperlab sync` is for a team's library (PAPERLAB_DB_URL=postgresql://...); "
                           "this workspace's notes are its own files")
        _report_sync(reader, settings)


def rm(arxiv_id: str = typer.Argument(..., metavar="ID"),
       yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
       purge: bool = typer.Option(False, "--purge", help="Delete the note file too.")) -> None:
    """Remove a paper from the library (its note file is kept unless --purge)."""
    from paperlab.library.db import Reader
    from paperlab.library.papers import remove
    from paperlab.library.queries import get_paper

    with Reader(_settings()) as reader:
        paper = get_paper(reader, arxiv_id)
    if not yes and not sys.stdin.isatty():
        from paperlab.errors import BadInput

        raise BadInput(f"not removing {paper['arxiv_id']} without a terminal to confirm on: add --yes")
    if not yes and not typer.confirm(f"remove {paper['arxiv_id']} {paper['title']!r}?"):
        raise typer.Exit(1)
    outcome = remove(_settings(), arxiv_id, purge)
    kept = "note deleted" if purge else f"note kept at {outcome.note_path}"
    say(f"removed {outcome.arxiv_id} {outcome.title} ({kept})")


def export(fmt: str = typer.Option("bibtex", "--format", "-f", help="bibtex or json."),
           output: Path = typer.Option(None, "--output", "-o", help="Write here instead of stdout.")) -> None:
    """Export the library as BibTeX or JSON."""
    import json

    from paperlab.errors import BadInput
    from paperlab.library.db import Reader
    from paperlab.library.queries import list_papers, to_json

    if fmt not in ("bibtex", "json"):
        raise BadInput(f"unknown format {fmt!r}: use bibtex or json")
    with Reader(_settings()) as reader:
        rows = list_papers(reader)
    if fmt == "bibtex":
        from paperlab.library.bibtex import export as to_bibtex

        text = to_bibtex(rows)
    else:
        text = json.dumps([to_json(r) for r in rows], indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(clean(text) if sys.stdout.isatty() else text)
    else:
        output.write_text(text, encoding="utf-8")
        say(f"wrote {len(rows)} papers to {output}")


def import_(path: Path = typer.Argument(..., metavar="FILE.bib"),
            tag: list[str] = typer.Option([], "--tag", "-t", help="Tag to add (repeatable).")) -> None:
    """Add the arXiv papers of a BibTeX file, without the network (papers already there are kept)."""
    from paperlab.library.papers import import_bib

    outcomes, skipped = import_bib(_settings(), path, tag, warn=lambda line: print(f"warning: {line}", file=sys.stderr))
    for outcome in outcomes:
        say(f"{outcome.status:<9} {outcome.arxiv_id}  {outcome.title}")
    for key, reason in skipped:
        say(f"skipped   {key}: {reason}")
    if skipped:
        error_line(f"{len(skipped)} of {len(outcomes) + len(skipped)} entries skipped (listed above); the others "
                   "are in the library")
        raise typer.Exit(1)


db_app = typer.Typer(help="The library's database.", no_args_is_help=True)


@db_app.command("migrate")
def db_migrate(to: str = typer.Option(..., "--to", metavar="URL",
                                      help="The team's database, e.g. postgresql://user@host/paperlab.")) -> None:
    """Copy this workspace's library (SQLite) into a team's database, notes included; safe to run again."""
    from paperlab.library.db import shown_url
    from paperlab.library.papers import migrate

    outcomes, skipped = migrate(_settings(), to)
    for outcome in outcomes:
        say(f"{'copied' if outcome.status == 'added' else outcome.status:<9} {outcome.arxiv_id}  {outcome.title}")
    for key, reason in skipped:
        say(f"skipped   {key}: {reason}")
    copied = sum(o.status == "added" for o in outcomes)
    say(f"{copied} papers copied to {shown_url(to)}, {len(outcomes) - copied} already there; point "
        "PAPERLAB_DB_URL at it to use the team's library")
    if skipped:
        raise typer.Exit(1)


def link(arxiv_id: str = typer.Argument(..., metavar="PAPER"),
         template: str = typer.Argument(..., metavar="TEMPLATE")) -> None:
    """Link a paper to an experiment template."""
    from paperlab.lab.templates import template_names
    from paperlab.library.papers import link_template

    template_names(check=template)
    link_template(_settings(), arxiv_id, template)
    say(f"linked {arxiv_id} to template {template}")


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(add)
    app.command("list")(list_)
    app.command()(show)
    app.command()(search)
    app.command()(tag)
    app.command()(venue)
    app.command()(venues)
    app.command()(note)
    app.command()(sync)
    app.command()(rm)
    app.command()(export)
    app.command("import")(import_)
    app.command()(link)
    app.add_typer(db_app, name="db")
