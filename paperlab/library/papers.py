"""Changing the library: add or refresh from arXiv, import, tag, set a venue, link a template, remove."""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from paperlab.errors import BadInput, NotFound, PaperlabError, shown
from paperlab.library import ids, notes, search, shared_notes, venues
from paperlab.library.arxiv import Fetched
from paperlab.settings import Settings


@dataclass
class Outcome:
    arxiv_id: str
    status: str  # "added", "refreshed" or "failed"
    title: str = ""
    venue: str | None = None
    note_path: str | None = None
    error: PaperlabError | None = None
    extra: dict = field(default_factory=dict)


@contextmanager
def session_scope(settings: Settings) -> Iterator:
    """A SQLModel session in one transaction: committed on success, rolled back on any error."""
    import sqlite3

    from sqlalchemy.exc import DBAPIError
    from sqlmodel import Session

    from paperlab.library.db import lock_for_writing, open_engine, storage_error

    try:
        engine = open_engine(settings)
    except (DBAPIError, sqlite3.Error) as exc:
        raise storage_error(exc, settings) from exc
    try:
        with Session(engine) as session:
            with session.begin():
                lock_for_writing(session.connection())
                yield session
    except (DBAPIError, sqlite3.Error) as exc:
        raise storage_error(exc, settings) from exc
    finally:
        engine.dispose()


def _execute(session):
    from sqlalchemy import text

    return lambda sql, **params: session.execute(text(sql), params)


def _dialect(session) -> str:
    return session.get_bind().dialect.name


def _find(session, raw_id: str):
    from sqlmodel import select

    from paperlab.library.models import Paper

    arxiv_id = ids.normalise(raw_id)
    paper = session.exec(select(Paper).where(Paper.arxiv_id == arxiv_id)).first()
    if paper is None:
        raise NotFound(f"{arxiv_id} is not in the library (add it with `paperlab add {arxiv_id}`)")
    return paper


def _names(session, paper) -> tuple[list[str], list[str]]:
    from sqlmodel import select

    from paperlab.library.models import Author, PaperAuthor, PaperTag, Tag

    authors = session.exec(select(Author.name).join(PaperAuthor, PaperAuthor.author_id == Author.id)
                           .where(PaperAuthor.paper_id == paper.id).order_by(PaperAuthor.position)).all()
    tags = session.exec(select(Tag.name).join(PaperTag, PaperTag.tag_id == Tag.id)
                        .where(PaperTag.paper_id == paper.id).order_by(Tag.name)).all()
    return list(authors), list(tags)


def _get_or_create(session, model, name: str):
    from sqlmodel import select

    found = session.exec(select(model).where(model.name == name)).first()
    if found is None:
        found = model(name=name)
        session.add(found)
        session.flush()
    return found


def _set_authors(session, paper, names: list[str]) -> None:
    from sqlmodel import delete

    from paperlab.library.models import Author, PaperAuthor

    session.exec(delete(PaperAuthor).where(PaperAuthor.paper_id == paper.id))
    for position, name in enumerate(names):
        session.add(PaperAuthor(paper_id=paper.id, position=position,
                                author_id=_get_or_create(session, Author, name).id))


def _add_tags(session, paper, tags: list[str]) -> None:
    from paperlab.library.models import PaperTag, Tag

    for name in tags:
        tag = _get_or_create(session, Tag, name)
        if session.get(PaperTag, (paper.id, tag.id)) is None:
            session.add(PaperTag(paper_id=paper.id, tag_id=tag.id))
    session.flush()


def _reindex(session, paper, note_text: str | None = None) -> None:
    authors, _ = _names(session, paper)
    text = notes.body(paper.note_path) if note_text is None else notes.without_front_matter(note_text)
    search.index(_execute(session), paper.id, paper.arxiv_id, paper.title, authors, paper.abstract, text,
                 _dialect(session))


def _write_note(settings: Settings, arxiv_id: str, path: Path, text: str, revision: int | None) -> bool:
    """A new paper's local note where none exists (a team's: recorded as synced at the library's revision)."""
    if revision is None:
        return notes.write_new(path, text)
    return shared_notes.write_local(settings, arxiv_id, text, revision)


MAX_TAG = 64


def clean_tags(tags: list[str]) -> list[str]:
    cleaned = [t.strip() for t in tags]
    for tag in cleaned:
        if not tag or any(c.isspace() or not c.isprintable() for c in tag):
            raise BadInput(f"a tag is one word of printable characters without spaces, got {shown(tag)}")
        if len(tag) > MAX_TAG:
            raise BadInput(f"tag too long: {shown(tag)} (at most {MAX_TAG} characters)")
    return sorted(set(cleaned))


def _venue_label(paper) -> str | None:
    """The venue with its year (CVPR 2022), or alone without one, as notes and `list` show it."""
    return f"{paper.venue} {paper.venue_year}" if paper.venue and paper.venue_year else paper.venue


def store(session, settings: Settings, fetched: Fetched, tags: list[str],
          manual: venues.Detected | None, write_note: bool = True) -> Outcome:
    """Insert or refresh one paper from fetched metadata; write its note only where none exists (or, with
    write_note=False, leave that to the caller once the rows are committed: extra["note_text"])."""
    from sqlmodel import select

    from paperlab.library.models import Paper

    now = datetime.now(timezone.utc)
    paper = session.exec(select(Paper).where(Paper.arxiv_id == fetched.arxiv_id)).first()
    created = paper is None
    if created:
        paper = Paper(arxiv_id=fetched.arxiv_id, title=fetched.title, added_at=now, refreshed_at=now)
    for name in ("version", "title", "abstract", "published", "updated", "primary_category", "comment",
                 "journal_ref", "doi", "pdf_url"):
        setattr(paper, name, getattr(fetched, name))
    paper.categories = " ".join(fetched.categories)
    paper.refreshed_at = now
    if manual is not None:
        paper.venue, paper.venue_year, paper.venue_detail, paper.venue_manual = (
            manual.venue, manual.year, manual.detail, True)
    elif not paper.venue_manual:
        found = venues.detect(fetched.comment, fetched.journal_ref)
        paper.venue, paper.venue_year, paper.venue_detail = (
            (found.venue, found.year, found.detail) if found else (None, None, None))
    team = shared_notes.in_team_mode(settings)
    if team or not paper.note_path:  # a team's library holds one machine's path; each machine has its own copy
        path = notes.note_path(settings.notes_dir, fetched.arxiv_id)
    else:
        path = Path(paper.note_path)
    paper.note_path = str(path)
    session.add(paper)
    session.flush()
    _set_authors(session, paper, fetched.authors)
    _add_tags(session, paper, tags)
    _, all_tags = _names(session, paper)
    label = _venue_label(paper)
    text = notes.render(paper.arxiv_id, paper.title, paper.abstract, label, all_tags)
    revision = None
    if team:  # the library's note wins; where it has none, this machine's own note (or a fresh one) seeds it
        text, revision = shared_notes.first_note(_execute(session), paper.id, shared_notes.local_text(path) or text)
    wrote = _write_note(settings, paper.arxiv_id, path, text, revision) if write_note else False
    try:
        _reindex(session, paper, text if team else None)
        session.flush()
    except BaseException:
        if wrote:
            path.unlink(missing_ok=True)
        raise
    return Outcome(paper.arxiv_id, "added" if created else "refreshed", paper.title, label, str(path),
                   extra={"version": paper.version, "wrote_note": wrote, "note_text": text, "paper_id": paper.id,
                          "note_revision": revision})


def add(settings: Settings, raw_ids: list[str], tags: list[str] = (), venue: str | None = None) -> list[Outcome]:
    """Fetch the IDs in one arXiv query and store each: one Outcome per requested ID, in order."""
    from paperlab.library.arxiv import fetch

    manual = venues.parse_label(venue) if venue else None
    tags = clean_tags(list(tags))
    outcomes: dict[str, Outcome] = {}
    requested: list[tuple[str, int | None]] = []
    for raw in raw_ids:
        try:
            arxiv_id, version = ids.parse(raw)
        except BadInput as exc:
            outcomes[raw] = Outcome(raw, "failed", error=exc)
            continue
        if arxiv_id not in {a for a, _ in requested}:
            requested.append((arxiv_id, version))
    fetched: dict = {}
    if requested:
        try:
            fetched = fetch(requested, settings)
        except PaperlabError as exc:
            fetched = {aid: exc for aid, _ in requested}
    for aid, _ in requested:
        result = fetched[aid]
        if isinstance(result, PaperlabError):
            outcomes[aid] = Outcome(aid, "failed", error=result)
            continue
        try:
            with session_scope(settings) as session:
                outcomes[aid] = store(session, settings, result, tags, manual)
        except PaperlabError as exc:
            outcomes[aid] = Outcome(aid, "failed", error=exc)
        except Exception as exc:  # one paper that cannot be stored does not hide what was stored before it
            outcomes[aid] = Outcome(aid, "failed", error=PaperlabError(
                f"{aid}: not stored ({type(exc).__name__}: {shown(exc, 200)})"))
    order = [ids.parse(r)[0] if r not in outcomes else r for r in raw_ids]
    return [outcomes[key] for key in dict.fromkeys(order)]


def set_tags(settings: Settings, raw_id: str, tags: list[str], remove: bool = False) -> list[str]:
    from sqlmodel import delete, select

    from paperlab.library.models import PaperTag, Tag

    tags = clean_tags(tags)
    with session_scope(settings) as session:
        paper = _find(session, raw_id)
        if remove:
            tag_ids = session.exec(select(Tag.id).where(Tag.name.in_(tags))).all()
            session.exec(delete(PaperTag).where(PaperTag.paper_id == paper.id, PaperTag.tag_id.in_(tag_ids)))
        else:
            _add_tags(session, paper, tags)
        return _names(session, paper)[1]


def set_venue(settings: Settings, raw_id: str, label: str) -> str:
    manual = venues.parse_label(label)
    with session_scope(settings) as session:
        paper = _find(session, raw_id)
        paper.venue, paper.venue_year, paper.venue_detail, paper.venue_manual = (
            manual.venue, manual.year, manual.detail, True)
        session.add(paper)
    return manual.label()


def link_template(settings: Settings, raw_id: str, template: str) -> None:
    from paperlab.library.models import TemplateLink

    with session_scope(settings) as session:
        paper = _find(session, raw_id)
        if session.get(TemplateLink, (paper.id, template)) is None:
            session.add(TemplateLink(paper_id=paper.id, template=template))


def remove(settings: Settings, raw_id: str, purge: bool = False) -> Outcome:
    from sqlmodel import delete

    from paperlab.library.models import PaperAuthor, PaperTag, TemplateLink

    with session_scope(settings) as session:
        paper = _find(session, raw_id)
        outcome = Outcome(paper.arxiv_id, "removed", paper.title, note_path=paper.note_path)
        search.unindex(_execute(session), paper.id, _dialect(session))
        for model in (PaperAuthor, PaperTag, TemplateLink):
            session.exec(delete(model).where(model.paper_id == paper.id))
        session.delete(paper)
    if purge and outcome.note_path:
        Path(outcome.note_path).unlink(missing_ok=True)
    return outcome


def migrate(settings: Settings, target_url: str) -> tuple[list[Outcome], list[tuple[str, str]]]:
    """Copy this workspace's library into a team's database (PostgreSQL), notes included: every paper with
    its metadata, authors, venue, tags and template links (through the lossless BibTeX round trip of
    `export`/`import`), each note's text from this machine's notes. Papers already there are kept, so running
    it again copies only what is new."""
    import tempfile
    from dataclasses import replace

    from paperlab.library import bibtex
    from paperlab.library.db import Reader
    from paperlab.library.queries import list_papers
    from paperlab.settings import normalise_db_url

    target = replace(settings, db_url=normalise_db_url(target_url))
    if target.db_path is not None:
        raise BadInput("--to takes a team's database URL (postgresql://user@host/db); this workspace's library "
                       "is the SQLite file it copies from")
    with Reader(settings) as reader:
        rows = list_papers(reader)
    with tempfile.TemporaryDirectory(prefix="paperlab-migrate-") as folder:
        path = Path(folder) / "library.bib"
        path.write_text(bibtex.export(rows), encoding="utf-8")
        return import_bib(target, path) if rows else ([], [])


IMPORT_BATCH = 200  # rows per transaction: a long import lets other commands in between batches


def keyword_tags(keywords: list[str]) -> tuple[list[str], list[str]]:
    """Another tool's keywords as tags: a phrase ("Computer Science - Machine Learning", as Zotero exports
    them) becomes one hyphenated word ("Computer-Science-Machine-Learning"); one that cannot be a tag (too
    long, unprintable) is dropped. The tags, and the keywords turned or dropped."""
    out, changed = [], []
    for keyword in keywords:
        tag = re.sub(r"\s*-\s*|\s+", "-", keyword.strip())
        try:
            out += clean_tags([tag])
        except BadInput:
            changed.append(keyword)
            continue
        if tag != keyword.strip():
            changed.append(keyword)
    return sorted(set(out)), changed


def import_bib(settings: Settings, path: Path, tags: list[str] = (),
               warn=lambda line: None) -> tuple[list[Outcome], list[tuple[str, str]]]:
    """Add the arXiv papers of a .bib file without the network; papers already there keep their metadata and
    only gain the command line's tags (whichever of two racing imports or adds stores a paper first).

    Committed in batches; each batch's notes are written after its rows are committed, so a killed import
    leaves no note without its paper (and importing again writes the notes a kill left unwritten)."""
    from sqlmodel import select

    from paperlab.library import bibtex
    from paperlab.library.models import Paper, TemplateLink

    records, skipped = bibtex.read(path)
    tags = clean_tags(list(tags))
    outcomes: list[Outcome] = []
    turned: list[str] = []
    for start in range(0, len(records), IMPORT_BATCH):
        to_write: list[tuple[str, Path, str, int | None]] = []
        with session_scope(settings) as session:
            for record in records[start:start + IMPORT_BATCH]:
                fetched = record.fetched
                present = session.exec(select(Paper).where(Paper.arxiv_id == fetched.arxiv_id)).first()
                if present is not None:
                    _add_tags(session, present, tags)
                    outcomes.append(Outcome(fetched.arxiv_id, "kept", present.title))
                    if present.note_path and not Path(present.note_path).exists() and \
                            not shared_notes.in_team_mode(settings):
                        to_write.append((present.arxiv_id, Path(present.note_path), notes.render(
                            present.arxiv_id, present.title, present.abstract, _venue_label(present),
                            _names(session, present)[1]), None))
                    continue
                own_tags, changed = keyword_tags(record.tags)
                turned += changed
                outcome = store(session, settings, fetched, sorted({*tags, *own_tags}), record.venue, write_note=False)
                for template in record.templates:
                    session.add(TemplateLink(paper_id=outcome.extra["paper_id"], template=template))
                outcomes.append(outcome)
                to_write.append((outcome.arxiv_id, Path(outcome.note_path), outcome.extra["note_text"],
                                 outcome.extra["note_revision"]))
        for arxiv_id, note, text, revision in to_write:
            _write_note(settings, arxiv_id, note, text, revision)
    if turned:
        warn(f"{len(turned)} keywords were phrases or not tags: hyphenated into one word where they could be "
             f"(e.g. {shown(turned[0], 60)}), dropped otherwise")
    return outcomes, skipped


def rebuild_from_notes(settings: Settings) -> tuple[list[Outcome], list[str]]:
    """Rows for the notes whose paper is missing from the library, from each note's front matter (ID, title,
    venue, tags) and its quoted abstract; an empty (0-byte) library file is replaced. Authors and dates come
    back with `paperlab add`. Returns the outcomes and the notes skipped, with why."""
    import yaml
    from sqlmodel import select

    from paperlab.library.models import Paper

    path = settings.db_path
    if path is not None and path.exists() and path.stat().st_size == 0:
        path.unlink()
    outcomes, skipped = [], []
    with session_scope(settings) as session:
        for note in sorted(settings.notes_dir.glob("*.md")):
            text = notes.read(note)
            front = re.match(r"\A---\n(.*?)\n---\n", text, re.S)
            try:
                meta = yaml.safe_load(front.group(1)) if front else None
                arxiv_id = ids.normalise(str(meta["arxiv_id"]))
            except (yaml.YAMLError, TypeError, KeyError, BadInput):
                skipped.append(f"{note.name}: no arxiv_id in its front matter")
                continue
            if note != notes.note_path(settings.notes_dir, arxiv_id):
                skipped.append(f"{note.name}: its file name does not match its arxiv_id {arxiv_id}")
                continue
            if session.exec(select(Paper.id).where(Paper.arxiv_id == arxiv_id)).first() is not None:
                continue
            abstract = " ".join(line[2:] for line in text.splitlines() if line.startswith("> "))
            fetched = Fetched(arxiv_id, 1, str(meta.get("title") or arxiv_id), [], abstract, None, None, None)
            try:
                venue = venues.parse_label(meta["venue"]) if meta.get("venue") else None
            except BadInput:
                venue = None
            tags = [t for t in meta.get("tags") or [] if isinstance(t, str)]
            outcome = store(session, settings, fetched, clean_tags(tags) if tags else [], venue)
            # as detected before: a refresh from arXiv may detect it again
            session.get(Paper, outcome.extra["paper_id"]).venue_manual = False
            outcomes.append(Outcome(arxiv_id, "rebuilt", outcome.title, outcome.venue, outcome.note_path))
    return outcomes, skipped

