"""Full-text search over title, authors, abstract and notes (SQLite FTS5, ranked by bm25).

Notes are files a user edits anywhere; before each search, notes whose mtime changed are re-indexed.
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable

from paperlab.errors import BadInput, PaperlabError
from paperlab.library import notes

Execute = Callable[..., Any]


def index(execute: Execute, paper_id: int, arxiv_id: str, title: str, authors: list[str], abstract: str,
          note_text: str) -> None:
    execute("DELETE FROM paper_fts WHERE rowid = :id", id=paper_id)
    execute("INSERT INTO paper_fts (rowid, arxiv_id, title, authors, abstract, note) "
            "VALUES (:id, :aid, :title, :authors, :abstract, :note)",
            id=paper_id, aid=arxiv_id, title=title, authors=", ".join(authors), abstract=abstract,
            note=note_text)


def unindex(execute: Execute, paper_id: int) -> None:
    execute("DELETE FROM paper_fts WHERE rowid = :id", id=paper_id)


def _mtime(path: str | None) -> float | None:
    try:
        return os.stat(path).st_mtime if path else None
    except OSError:
        return None


def sync_notes(reader) -> int:
    """Re-index notes changed on disk since they were last indexed; returns how many."""
    changed = 0
    for row in reader.rows("SELECT id, note_path, note_mtime FROM papers WHERE note_path IS NOT NULL"):
        mtime = _mtime(row["note_path"])
        if mtime == row["note_mtime"]:
            continue
        reader.execute("UPDATE paper_fts SET note = :note WHERE rowid = :id", note=notes.body(row["note_path"]),
                       id=row["id"])
        reader.execute("UPDATE papers SET note_mtime = :m WHERE id = :id", m=mtime, id=row["id"])
        changed += 1
    if changed:
        reader.commit()
    return changed


def fts_query(text: str) -> str:
    """User words -> an FTS5 query: every word must appear; `word*` keeps a prefix search."""
    words = re.findall(r"\w+\*?", text)
    if not words:
        raise BadInput(f"nothing to search for in {text!r}")
    return " ".join(f'"{w.rstrip("*")}"' + ("*" if w.endswith("*") else "") for w in words)


def search(reader, text: str, limit: int = 50) -> list[dict[str, Any]]:
    """[{paper_id, score, snippet}] best first, after re-indexing notes changed on disk."""
    if not reader.is_sqlite:
        raise PaperlabError("search needs the SQLite library (FTS5); PAPERLAB_DB_URL points elsewhere")
    sync_notes(reader)
    return query(reader, text, limit)


def query(reader, text: str, limit: int = 50) -> list[dict[str, Any]]:
    """The FTS5 query alone."""
    return reader.rows(
        "SELECT rowid AS paper_id, rank AS score, snippet(paper_fts, -1, '«', '»', '…', 12) AS snippet "
        "FROM paper_fts WHERE paper_fts MATCH :q ORDER BY rank LIMIT :limit",  # rank: weighted bm25
        q=fts_query(text), limit=limit)
