"""Full-text search over title, authors, abstract and notes: SQLite's FTS5 ranked by weighted bm25, or on
PostgreSQL a weighted tsvector with a GIN index (migration 0003), `websearch_to_tsquery` and ts_rank.

Notes are files a user edits anywhere; before each search, notes whose mtime changed are re-indexed.
Snippets are cut here, not by FTS5's snippet(): its cost grows with the square of the matches in a column
(80,000 matches in one note took 40 s). Instead the first match's token position comes from the index
(an fts5vocab instance table), and a window of words around it is cut from the text: time bounded by the
position of that first match, whatever the note holds.
"""

from __future__ import annotations

import itertools
import os
import re
from typing import Any, Callable

from paperlab.errors import BadInput, shown
from paperlab.library import notes

Execute = Callable[..., Any]
MAX_WORDS = 32
MAX_TOKENS_SCANNED = 1_000_000  # a first match further into a note than this is named, not shown
_TOKEN = re.compile(r"[^\W_]+")  # FTS5's unicode61 tokens: runs of letters and digits


def index(execute: Execute, paper_id: int, arxiv_id: str, title: str, authors: list[str], abstract: str,
          note_text: str, dialect: str = "sqlite") -> None:
    if dialect == "postgresql":
        execute("INSERT INTO paper_text (paper_id, arxiv_id, title, authors, abstract, note) "
                "VALUES (:id, :aid, :title, :authors, :abstract, :note) ON CONFLICT (paper_id) DO UPDATE SET "
                "arxiv_id = excluded.arxiv_id, title = excluded.title, authors = excluded.authors, "
                "abstract = excluded.abstract, note = excluded.note",
                id=paper_id, aid=arxiv_id, title=title, authors=", ".join(authors), abstract=abstract,
                note=no_nul(note_text))
        return
    execute("DELETE FROM paper_fts WHERE rowid = :id", id=paper_id)
    execute("INSERT INTO paper_fts (rowid, arxiv_id, title, authors, abstract, note) "
            "VALUES (:id, :aid, :title, :authors, :abstract, :note)",
            id=paper_id, aid=arxiv_id, title=title, authors=", ".join(authors), abstract=abstract,
            note=note_text)


def unindex(execute: Execute, paper_id: int, dialect: str = "sqlite") -> None:
    if dialect == "sqlite":  # PostgreSQL's paper_text row goes with the paper (ON DELETE CASCADE)
        execute("DELETE FROM paper_fts WHERE rowid = :id", id=paper_id)


def no_nul(text: str) -> str:
    return text.replace("\x00", " ")  # PostgreSQL's text cannot hold NUL (SQLite's can): a word break


def _mtime(path: str | None) -> float | None:
    try:
        return os.stat(path).st_mtime if path else None
    except OSError:
        return None


def reindex_note(reader, paper_id: int, text: str) -> None:
    """A note's new text in the index (front matter left out)."""
    table, key = ("paper_fts", "rowid") if reader.is_sqlite else ("paper_text", "paper_id")
    reader.execute(f"UPDATE {table} SET note = :note WHERE {key} = :id",
                   note=no_nul(notes.without_front_matter(text)), id=paper_id)


def sync_notes(reader) -> int:
    """SQLite: re-index notes changed on disk since they were last indexed; returns how many."""
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


def _words(text: str) -> list[str]:
    words = re.findall(r"\w+\*?", text[:10_000])
    if not words:
        raise BadInput(f"nothing to search for in {shown(text)}")
    if len(words) > MAX_WORDS or len(text) > 10_000:
        count = len(re.findall(r"\w+", text))
        raise BadInput(f"a search takes at most {MAX_WORDS} words; this one has {count:,}")
    return words


def fts_query(words: list[str]) -> str:
    """User words -> an FTS5 query: every word must appear; `word*` keeps a prefix search."""
    return " ".join(f'"{w.rstrip("*")}"' + ("*" if w.endswith("*") else "") for w in words)


def search(reader, text: str, limit: int = 50) -> list[dict[str, Any]]:
    """[{paper_id, score, snippet}] best first, after re-indexing notes changed on disk."""
    if not reader.is_sqlite:  # a team's library: push this machine's note edits first (shared_notes)
        from paperlab.library.shared_notes import sync_warning_on_conflict

        sync_warning_on_conflict(reader, reader.settings)
        return postgres_query(reader, text, limit)
    import sqlite3

    try:
        sync_notes(reader)
    except sqlite3.OperationalError as exc:
        if "readonly" not in str(exc):
            raise
        reader.copy_to_memory()  # a read-only workspace: index the changed notes in a copy
        sync_notes(reader)
    return query(reader, text, limit)


def query(reader, text: str, limit: int = 50) -> list[dict[str, Any]]:
    """The FTS5 query (rank: weighted bm25), then a snippet for each hit."""
    words = _words(text)
    hits = reader.rows("SELECT rowid AS paper_id, rank AS score FROM paper_fts WHERE paper_fts MATCH :q "
                       "ORDER BY rank LIMIT :limit", q=fts_query(words), limit=limit)
    if hits:
        terms = _index_terms(reader, words)
        for hit in hits:
            hit["snippet"] = _snippet(reader, hit["paper_id"], terms)
    return hits


_HEADLINE = "StartSel=«, StopSel=», MaxWords=14, MinWords=6, MaxFragments=1, FragmentDelimiter=…"


def postgres_query(reader, text: str, limit: int = 50) -> list[dict[str, Any]]:
    """Plain words through `websearch_to_tsquery` (all must match), `word*` as a tsquery prefix; ranked by
    ts_rank over the weighted document (negated, so that lower is better as with bm25); the snippet is
    ts_headline of the first column that matches, title first."""
    words = _words(text)
    plain = " ".join(w for w in words if not w.endswith("*"))
    prefixes = " & ".join(f"{w.rstrip('*')}:*" for w in words if w.endswith("*"))
    parts = ["websearch_to_tsquery('english', :plain)"] if plain else []
    parts += ["to_tsquery('english', :prefixes)"] if prefixes else []
    columns = ("title", "authors", "abstract", "note")
    headline = "CASE " + " ".join(
        f"WHEN to_tsvector('english', t.{c}) @@ q.q THEN "
        f"ts_headline('english', t.{c}, q.q, :options)" for c in columns) + " ELSE '' END"
    return reader.rows(
        f"SELECT t.paper_id, -ts_rank(t.document, q.q) AS score, {headline} AS snippet "
        f"FROM paper_text t, (SELECT {' && '.join(parts)} AS q) q WHERE t.document @@ q.q "
        "ORDER BY score, t.paper_id LIMIT :limit", plain=plain, prefixes=prefixes, options=_HEADLINE, limit=limit)


def _index_terms(reader, words: list[str]) -> list[tuple[str, bool]]:
    """The query's words as the index stores them (porter stems), each with whether it is a prefix."""
    reader.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_words USING fts5(w, "
                   "tokenize='porter unicode61 remove_diacritics 2')")
    reader.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_terms USING fts5vocab(temp, query_words, instance)")
    reader.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.paper_terms USING fts5vocab(main, paper_fts, instance)")
    reader.execute("DELETE FROM temp.query_words")
    terms = []
    for word in words:
        reader.execute("INSERT INTO temp.query_words (w) VALUES (:w)", w=word.rstrip("*"))
        stems = [r["term"] for r in reader.rows("SELECT term FROM temp.query_terms ORDER BY offset")]
        terms += [(stem, word.endswith("*")) for stem in stems[:1]]  # FTS5 stems a prefix too
        reader.execute("DELETE FROM temp.query_words")
    return terms


def _snippet(reader, paper_id: int, terms: list[tuple[str, bool]], words: int = 12) -> str:
    """About `words` words around the first match, in the first column that matches (title first)."""
    first = None
    for term, prefix in terms:
        where = "term >= :t AND term < :end" if prefix else "term = :t"
        row = reader.rows(f"SELECT col, offset FROM temp.paper_terms WHERE {where} AND doc = :id LIMIT 1",
                          t=term, end=term + "\U0010ffff", id=paper_id)
        if row and (first is None or (_COLUMNS.index(row[0]["col"]), row[0]["offset"]) <
                    (_COLUMNS.index(first["col"]), first["offset"])):
            first = row[0]
    if first is None:
        return ""
    text = reader.rows(f"SELECT {first['col']} AS text FROM paper_fts WHERE rowid = :id", id=paper_id)[0]["text"]
    at = first["offset"]
    if at > MAX_TOKENS_SCANNED:
        return f"… a match at word {at:,} of the {first['col']} …"
    before = max(0, at - words // 2)
    tokens = list(itertools.islice(_TOKEN.finditer(text or ""), before, before + words))
    if not tokens or at - before >= len(tokens):
        return ""
    hit = tokens[at - before]
    start, end = tokens[0].start(), tokens[-1].end()
    cut = text[start:hit.start()] + "«" + hit.group() + "»" + text[hit.end():end]
    return ("…" if start > 0 else "") + " ".join(cut.split()) + ("…" if end < len(text) else "")


_COLUMNS = ["arxiv_id", "title", "authors", "abstract", "note"]
