"""BibTeX out and in, through bibtexparser (v2). Citation keys are stable: hinton2015distilling."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from pathlib import Path
from typing import Any

from paperlab.errors import BadInput
from paperlab.library.arxiv import Fetched

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
    fields = {
        "title": paper["title"],
        "author": " and ".join(paper["authors"]),
        "year": str(paper["published"])[:4] if paper["published"] else None,
        "eprint": paper["arxiv_id"],
        "archiveprefix": "arXiv",
        "primaryclass": paper["primary_category"],
        "doi": paper["doi"],
        "url": f"https://arxiv.org/abs/{paper['arxiv_id']}",
        "abstract": paper["abstract"] or None,
        "keywords": ", ".join(paper["tags"]) or None,
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
    return Entry(kind, key, [Field(k, v) for k, v in fields.items() if v])


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


def read(path: Path) -> tuple[list[Fetched], list[str]]:
    """Papers with an arXiv ID in a .bib file (venue text kept as journal_ref); and the keys skipped."""
    import bibtexparser
    from bibtexparser import middlewares as m

    from paperlab.library import ids

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read {path}: {exc}") from exc
    library = bibtexparser.parse_string(text, parse_stack=[
        m.LatexDecodingMiddleware(), m.SeparateCoAuthors(), m.SplitNameParts(), m.MergeNameParts(style="first")])
    if not library.entries:
        raise BadInput(f"{path} holds no BibTeX entries")
    found, skipped = [], []
    for entry in library.entries:
        values = {k.lower(): v.value for k, v in entry.fields_dict.items()}
        candidates = [values.get("eprint", "")] + [str(v) for v in values.values()]
        arxiv = None
        for candidate in candidates:
            try:
                arxiv = ids.parse(str(candidate)) if candidate == values.get("eprint") else None
            except BadInput:
                arxiv = None
            if arxiv is None:
                match = _ARXIV_IN_TEXT.search(str(candidate))
                arxiv = ids.parse(match.group(1)) if match else None
            if arxiv:
                break
        if arxiv is None or not values.get("title"):
            skipped.append(entry.key)
            continue
        year = values.get("year", "")
        authors = values.get("author") or []
        venue_text = values.get("booktitle") or values.get("journal")
        found.append(Fetched(
            arxiv_id=arxiv[0], version=arxiv[1] or 1, title=" ".join(str(values["title"]).split()),
            authors=authors if isinstance(authors, list) else [authors],
            abstract=" ".join(str(values.get("abstract", "")).split()),
            published=date(int(year), 1, 1) if str(year).isdigit() else None, updated=None,
            primary_category=values.get("primaryclass"), doi=values.get("doi"),
            pdf_url=f"https://arxiv.org/pdf/{arxiv[0]}",
            journal_ref=f"{venue_text} {year}".strip() if venue_text else None,
        ))
    return found, skipped
