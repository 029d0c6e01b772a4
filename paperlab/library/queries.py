"""Reading the library (plain SQL through db.Reader, so read commands start fast) and its JSON shape."""

from __future__ import annotations

from typing import Any

from paperlab.errors import NotFound
from paperlab.library import ids

_COLUMNS = ("id, arxiv_id, version, title, abstract, published, updated, primary_category, categories, "
            "comment, journal_ref, doi, pdf_url, venue, venue_year, venue_detail, venue_manual, note_path")


def _in(name: str, values: list) -> tuple[str, dict]:
    params = {f"{name}{i}": v for i, v in enumerate(values)}
    return ", ".join(f":{k}" for k in params) or "NULL", params


def _attach(reader, rows: list[dict[str, Any]], ids_sql: str | None = None, **params: Any) -> list[dict[str, Any]]:
    """Add authors (in order), tags and linked templates to paper rows. `ids_sql` selects the rows' IDs
    (cheaper than binding a thousand parameters); without it the IDs are bound one by one."""
    if not rows:
        return rows
    if ids_sql is None:
        ids_sql, params = _in("p", [r["id"] for r in rows])
    by_id = {r["id"]: r | {"authors": [], "tags": [], "templates": []} for r in rows}
    if not reader.is_sqlite:  # a team's library: each machine's own copy of the note (shared_notes)
        from paperlab.library.notes import note_path

        for row in by_id.values():
            row["note_path"] = str(note_path(reader.settings.notes_dir, row["arxiv_id"]))
    for a in reader.rows("SELECT pa.paper_id, a.name FROM paper_authors pa JOIN authors a ON a.id = pa.author_id "
                         f"WHERE pa.paper_id IN ({ids_sql}) ORDER BY pa.paper_id, pa.position", **params):
        by_id[a["paper_id"]]["authors"].append(a["name"])
    for t in reader.rows("SELECT pt.paper_id, t.name FROM paper_tags pt JOIN tags t ON t.id = pt.tag_id "
                         f"WHERE pt.paper_id IN ({ids_sql}) ORDER BY t.name", **params):
        by_id[t["paper_id"]]["tags"].append(t["name"])
    for t in reader.rows("SELECT paper_id, template FROM template_links "
                         f"WHERE paper_id IN ({ids_sql}) ORDER BY template", **params):
        by_id[t["paper_id"]]["templates"].append(t["template"])
    return [by_id[r["id"]] for r in rows]


def list_papers(reader, venue: str | None = None, year: int | None = None, tag: str | None = None,
                top_tier: bool = False) -> list[dict[str, Any]]:
    where, params = [], {}
    if venue:
        from paperlab.library.venues import parse_label

        wanted = parse_label(venue)
        where.append("venue = :venue")
        params["venue"] = wanted.venue
        if wanted.year and not year:
            year = wanted.year
    if year:
        # a date range rather than a year function: the same SQL on SQLite (ISO strings) and PostgreSQL
        where.append("(venue_year = :year OR (venue_year IS NULL AND published >= :year_from "
                     "AND published < :year_to))")
        params.update(year=year, year_from=f"{year:04d}-01-01", year_to=f"{year + 1:04d}-01-01")
    if tag:
        where.append("id IN (SELECT pt.paper_id FROM paper_tags pt JOIN tags t ON t.id = pt.tag_id "
                     "WHERE t.name = :tag)")
        params["tag"] = tag
    if top_tier:
        from paperlab.library.venues import registry

        placeholders, top = _in("tt", [v.short for v in registry().values() if v.top_tier])
        params.update(top)
        where.append(f"venue IN ({placeholders})")
    condition = " WHERE " + " AND ".join(where) if where else ""
    rows = reader.rows(f"SELECT {_COLUMNS} FROM papers{condition} ORDER BY published DESC, arxiv_id", **params)
    return _attach(reader, rows, f"SELECT id FROM papers{condition}", **params)


def get_paper(reader, raw_id: str) -> dict[str, Any]:
    arxiv_id = ids.normalise(raw_id)
    rows = reader.rows(f"SELECT {_COLUMNS} FROM papers WHERE arxiv_id = :aid", aid=arxiv_id)
    if not rows:
        raise NotFound(f"{arxiv_id} is not in the library (add it with `paperlab add {arxiv_id}`)")
    return _attach(reader, rows)[0]


def papers_by_id(reader, paper_ids: list[int]) -> dict[int, dict[str, Any]]:
    placeholders, params = _in("p", paper_ids)
    rows = reader.rows(f"SELECT {_COLUMNS} FROM papers WHERE id IN ({placeholders})", **params)
    return {r["id"]: r for r in _attach(reader, rows)}


def venue_label(row: dict[str, Any]) -> str | None:
    if not row.get("venue"):
        return None
    return f"{row['venue']} {row['venue_year']}" if row.get("venue_year") else row["venue"]


def to_json(row: dict[str, Any]) -> dict[str, Any]:
    """The documented JSON shape of a paper (scripts rely on these keys)."""
    def iso(value: Any) -> str | None:
        return str(value)[:10] if value else None

    return {
        "arxiv_id": row["arxiv_id"],
        "version": row["version"],
        "title": row["title"],
        "authors": row["authors"],
        "published": iso(row["published"]),
        "updated": iso(row["updated"]),
        "venue": venue_label(row),
        "venue_detail": row["venue_detail"],
        "venue_manual": bool(row["venue_manual"]),
        "tags": row["tags"],
        "templates": row["templates"],
        "abstract": row["abstract"],
        "primary_category": row["primary_category"],
        "categories": (row["categories"] or "").split(),
        "comment": row["comment"],
        "journal_ref": row["journal_ref"],
        "doi": row["doi"],
        "pdf_url": row["pdf_url"],
        "url": f"https://arxiv.org/abs/{row['arxiv_id']}",
        "note_path": row["note_path"],
    }
