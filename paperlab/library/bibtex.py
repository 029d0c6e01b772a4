"""BibTeX out and in, through bibtexparser (v2). Citation keys are stable: hinton2015distilling."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from paperlab.errors import BadInput, shown
from paperlab.library.arxiv import Fetched
from paperlab.library.venues import Detected

_STOPWORDS = {"a", "an", "the", "on", "in", "of", "for", "to", "and", "with", "from", "via", "by", "is", "are",
              "do", "does", "at", "towards", "toward"}
_ARXIV_IN_TEXT = re.compile(r"(?:arxiv[:\s/]*|abs/|pdf/)(\d{4}\.\d{4,5}(?:v\d+)?|[a-z\-]+(?:\.[A-Z]{2})?/\d{7})",
                            re.I)


def _ascii_word(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower())


def citation_key(authors: list[str], published: Any, title: str) -> str:
    last = _ascii_word(authors[0].split()[-1]) if authors else "anon"
    year = str(published)[:4] if published else "nd"
    words = [_ascii_word(w) for w in title.split()]
    first = next((w for w in words if w and w not in _STOPWORDS), "untitled")
    return f"{last}{year}{first}"


def _entry(paper: dict[str, Any], key: str):
    from bibtexparser.model import Entry, Field

    from paperlab.library.venues import registry

    venue = registry().get(paper["venue"]) if paper.get("venue") else None
    venue_year = paper.get("venue_year") if venue else None
    label = " ".join(str(p) for p in (paper.get("venue"), venue_year, paper.get("venue_detail")) if p)
    fields = {
        "title": paper["title"],
        "author": " and ".join(paper["authors"]),
        "year": str(venue_year or str(paper["published"] or "")[:4]) or None,  # a venue's own year first
        "eprint": paper["arxiv_id"],
        "archiveprefix": "arXiv",
        "primaryclass": paper["primary_category"],
        "doi": paper["doi"],
        "url": f"https://arxiv.org/abs/{paper['arxiv_id']}",
        "abstract": paper["abstract"] or None,
        "keywords": ", ".join(paper["tags"]) or None,
        # what BibTeX has no field for, so that `export` then `import` gives back the same library
        "version": str(paper["version"]) if paper.get("version") else None,
        "date": str(paper["published"])[:10] if paper["published"] else None,
        "updated": str(paper["updated"])[:10] if paper.get("updated") else None,
        "categories": paper.get("categories") or None,
        "comments": paper.get("comment"),
        "journalref": paper.get("journal_ref"),
        "pdfurl": paper.get("pdf_url"),
        "venue": label if paper.get("venue_manual") and label else None,  # detected venues come back by detection
        "templates": ", ".join(paper.get("templates") or []) or None,
    }
    if venue and venue.kind == "journal":
        kind, fields["journal"] = "article", venue.full
    elif venue and paper.get("venue_detail") != "workshop":
        kind, fields["booktitle"] = "inproceedings", venue.full
    else:
        kind = "misc"
        if venue:
            fields["note"] = f"{venue.short} {paper.get('venue_year') or ''} workshop".replace("  ", " ")
        else:
            fields["note"] = f"arXiv:{paper['arxiv_id']}"
    return Entry(kind, key, [Field(k, v if k in RAW_FIELDS else latex_escape(v)) for k, v in fields.items() if v])


RAW_FIELDS = {"url", "pdfurl", "doi", "eprint"}  # identifiers, written as they are


def latex_escape(text: str) -> str:
    """%, & and # as BibTeX and LaTeX read them literally (a bare % starts a comment: the rest of the field
    was lost on import); import decodes them back (LatexDecodingMiddleware)."""
    return re.sub(r"(?<!\\)([%&#])", r"\\\1", text)


def export(papers: list[dict[str, Any]]) -> str:
    """BibTeX for papers (rows from library.queries); clashing keys get a, b, c... in arXiv ID order."""
    import bibtexparser

    keys: dict[str, list[dict[str, Any]]] = {}
    for paper in sorted(papers, key=lambda p: p["arxiv_id"]):
        keys.setdefault(citation_key(paper["authors"], paper["published"], paper["title"]), []).append(paper)
    library = bibtexparser.Library()
    for key, group in sorted(keys.items()):
        for i, paper in enumerate(group):
            library.add(_entry(paper, key if len(group) == 1 else f"{key}{chr(ord('a') + i)}"))
    return bibtexparser.write_string(library)


@dataclass
class Record:
    """One importable entry: the paper and what paperlab keeps beside it."""

    key: str
    fetched: Fetched
    tags: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    venue: Detected | None = None


def _arxiv_id(values: dict[str, Any]) -> tuple[str, int | None]:
    """The entry's arXiv ID: its eprint field, else the first valid arXiv ID named in any field."""
    from paperlab.library import ids

    if values.get("eprint"):
        try:
            return ids.parse(str(values["eprint"]))
        except BadInput:
            raise BadInput(f"eprint {shown(values['eprint'], 40)} is not an arXiv ID") from None
    for value in values.values():
        for match in _ARXIV_IN_TEXT.finditer(str(value)):
            try:
                return ids.parse(match.group(1))
            except BadInput:  # "arXiv:1234.5678" in a note: no such month, not an ID
                continue
    raise BadInput("no arXiv ID in the entry")


def _day(text: Any) -> date | None:
    try:
        return date.fromisoformat(str(text)[:10]) if text else None
    except ValueError:
        return None


def _record(key: str, values: dict[str, Any]) -> Record:
    from paperlab.library.venues import parse_label

    arxiv_id, version = _arxiv_id(values)
    if not values.get("title"):
        raise BadInput("no title")
    year = str(values.get("year", "")).strip()
    if year and not (year.isdigit() and 1900 <= int(year) <= 2100):
        raise BadInput(f"year {shown(year, 20)} is not a year")
    if values.get("version"):
        version = int(values["version"]) if re.fullmatch(r"[1-9]\d{0,2}", str(values["version"])) else version
    authors = values.get("author") or []
    venue_text = values.get("booktitle") or values.get("journal")
    if "date" in values:  # paperlab's own export: arXiv's journal_ref as it was (None too)
        journal_ref = values.get("journalref")
    else:  # another tool's entry: its booktitle or journal is where the venue can be detected from
        journal_ref = f"{venue_text} {year}".strip() if venue_text else None
    published = _day(values.get("date")) or (date(int(year), 1, 1) if year else None)
    try:
        venue = parse_label(str(values["venue"])) if values.get("venue") else None
    except BadInput:
        venue = None
    fetched = Fetched(
        arxiv_id=arxiv_id, version=version or 1, title=" ".join(str(values["title"]).split()),
        authors=authors if isinstance(authors, list) else [authors],
        abstract=" ".join(str(values.get("abstract", "")).split()), published=published,
        updated=_day(values.get("updated")), primary_category=values.get("primaryclass"),
        categories=str(values.get("categories", "")).split(), comment=values.get("comments"),
        journal_ref=journal_ref, doi=values.get("doi"),
        pdf_url=values.get("pdfurl") or f"https://arxiv.org/pdf/{arxiv_id}",
    )
    split = lambda name: [t.strip() for t in str(values.get(name, "")).split(",") if t.strip()]  # noqa: E731
    return Record(key, fetched, split("keywords"), split("templates"), venue)


def read(path: Path) -> tuple[list[Record], list[tuple[str, str]]]:
    """The entries of a .bib file with an arXiv ID; and (key, reason) for each entry skipped."""
    import logging

    import bibtexparser
    from bibtexparser import middlewares as m

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read {path}: {exc}") from exc
    logging.getLogger("bibtexparser").setLevel(logging.ERROR)  # its warnings are reported per entry below
    library = bibtexparser.parse_string(text, parse_stack=[
        m.LatexDecodingMiddleware(), m.SeparateCoAuthors(), m.SplitNameParts(), m.MergeNameParts(style="first")])
    if not library.entries:
        raise BadInput(f"{path} holds no BibTeX entries")
    skipped = [(getattr(b, "key", None) or f"line {(b.start_line or 0) + 1}",
                f"not valid BibTeX ({str(getattr(b, 'error', '') or '')[:100] or 'cannot be parsed'})")
               for b in library.failed_blocks]
    found = []
    for entry in library.entries:
        values = {k.lower(): v.value for k, v in entry.fields_dict.items()}
        try:
            found.append(_record(entry.key, values))
        except BadInput as exc:
            skipped.append((entry.key, str(exc)))
    return found, skipped
