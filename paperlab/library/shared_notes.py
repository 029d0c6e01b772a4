"""A team's notes: the library database holds each note (table `notes`, with a revision number); every
machine edits a local Markdown copy in its own notes folder, as a single user does.

Syncing a note compares the local copy with what was last synced here (`.sync.json` in the notes folder:
revision and SHA-256 of the text):
- unchanged here, newer in the library: the local copy is replaced by the library's;
- changed here: saved to the library only if the library still holds the revision it was edited from
  (`UPDATE … WHERE revision = base`, atomic). Otherwise someone saved first: nothing is overwritten, their
  text is put beside the local copy as `ID.theirs.md`, and the save is refused until that file has been
  merged and deleted. No edit is lost silently on either side.
A single user's SQLite library does not use any of this: its notes are plain files.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from paperlab.errors import PaperlabError
from paperlab.library import notes
from paperlab.settings import Settings

STATE = ".sync.json"


def in_team_mode(settings: Settings) -> bool:
    return settings.db_path is None


def who() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no login name (a container): the host is enough
        user = "someone"
    return f"{user}@{socket.gethostname()}"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class SyncState:
    """What this machine last synced, per note: {arxiv_id: {revision, sha256, seen}}."""

    def __init__(self, settings: Settings):
        self.path = settings.notes_dir / STATE
        self.dirty = False
        try:
            self.entries: dict[str, dict] = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.entries = {}
        except (OSError, ValueError) as exc:
            raise PaperlabError(f"{self.path} cannot be read ({exc}); move it aside and run `paperlab sync` "
                                "(every local note then counts as edited here)") from exc

    def record(self, arxiv_id: str, revision: int, text: str, path: Path | None = None) -> None:
        entry = {"revision": revision, "sha256": _sha(text)}
        if path is not None:  # the file as synced: an unchanged stat needs no read next time
            stat = path.stat()
            entry |= {"mtime_ns": stat.st_mtime_ns, "size": stat.st_size}
        self.entries[arxiv_id] = entry
        self.dirty = True

    def untouched(self, arxiv_id: str, path: Path) -> bool:
        """True when the file is as last synced, judged by its size and mtime (no read)."""
        entry = self.entries.get(arxiv_id)
        try:
            stat = path.stat()
        except OSError:
            return False
        return entry is not None and entry.get("mtime_ns") == stat.st_mtime_ns and entry.get("size") == stat.st_size

    def save(self) -> None:
        if not self.dirty:
            return
        self.dirty = False
        notes.replace(self.path, json.dumps(self.entries, indent=1, sort_keys=True))


def first_note(execute, paper_id: int, text: str) -> tuple[str, int]:
    """The library's note of a paper, created from `text` if it has none: (body, revision)."""
    execute("INSERT INTO notes (paper_id, body, revision, updated_at, updated_by) VALUES (:id, :body, 1, :at, :by) "
            "ON CONFLICT (paper_id) DO NOTHING", id=paper_id, body=text, at=_now(), by=who())
    row = execute("SELECT body, revision FROM notes WHERE paper_id = :id", id=paper_id).one()
    return row[0], row[1]


def local_text(path: Path) -> str | None:
    """This machine's copy of a note, or None where it has none (or an empty one)."""
    try:
        text = notes.read(path)
    except (FileNotFoundError, IsADirectoryError):
        return None
    return text or None


def write_local(settings: Settings, arxiv_id: str, body: str, revision: int) -> bool:
    """After the rows are committed: the local copy of a note, where this machine has none yet; a copy that
    already holds the library's text counts as synced. True if written."""
    path = notes.note_path(settings.notes_dir, arxiv_id)
    wrote = notes.write_new(path, body)
    if wrote or local_text(path) == body:
        state = SyncState(settings)
        state.record(arxiv_id, revision, body, path)
        state.save()
    return wrote


@dataclass
class Synced:
    arxiv_id: str
    action: str  # "pushed", "pulled", "same" or "conflict"
    message: str = ""


def sync(reader, settings: Settings, arxiv_ids: list[str] | None = None) -> list[Synced]:
    """Push this machine's edits and pull the others', for the given papers or all; one Synced each."""
    state = SyncState(settings)
    where = ""
    params: dict = {}
    if arxiv_ids is not None:
        params = {f"a{i}": a for i, a in enumerate(arxiv_ids)}
        where = " WHERE p.arxiv_id IN (" + (", ".join(f":{k}" for k in params) or "NULL") + ")"
    rows = reader.rows("SELECT p.id, p.arxiv_id, n.revision FROM papers p JOIN notes n ON n.paper_id = p.id"
                       f"{where} ORDER BY p.arxiv_id", **params)
    results = []
    try:
        for row in rows:
            results.append(_sync_one(reader, settings, state, row))
    finally:
        state.save()
    return results


def sync_warning_on_conflict(reader, settings: Settings, arxiv_ids: list[str] | None = None,
                             after: str = "") -> None:
    """Sync before reading (search, reports): a conflict is a warning line there, not a failure."""
    import sys

    for synced in sync(reader, settings, arxiv_ids):
        if synced.action == "conflict":
            print(f"warning: {synced.message}{after}", file=sys.stderr)


def _sync_one(reader, settings: Settings, state: SyncState, row: dict) -> Synced:
    aid, revision = row["arxiv_id"], row["revision"]
    path = notes.note_path(settings.notes_dir, aid)
    entry = state.entries.get(aid)
    if state.untouched(aid, path) and entry["revision"] == revision:  # the common case: two stats, no reads
        return Synced(aid, "same")
    body = reader.rows("SELECT body FROM notes WHERE paper_id = :id", id=row["id"])[0]["body"]
    local = local_text(path)
    if local is None or (entry is not None and _sha(local) == entry["sha256"]):  # not edited here
        if local is None or revision != entry["revision"]:
            notes.replace(path, body)
            state.record(aid, revision, body, path)
            return Synced(aid, "pulled")
        state.record(aid, revision, body, path)
        return Synced(aid, "same")
    if local == body:
        state.record(aid, revision, body, path)
        return Synced(aid, "same")
    theirs = path.with_name(path.stem + ".theirs.md")
    if theirs.exists():
        return Synced(aid, "conflict", f"{aid}: merge {theirs} into {path} and delete it, then sync again "
                                       "(nothing was saved to the library)")
    base = (entry or {}).get("seen", (entry or {}).get("revision", 0))
    from paperlab.library.search import no_nul, reindex_note

    saved = reader.update("UPDATE notes SET body = :body, revision = revision + 1, updated_at = :at, "
                          "updated_by = :by WHERE paper_id = :id AND revision = :base",
                          body=no_nul(local), at=_now(), by=who(), id=row["id"], base=base)
    if saved:
        reindex_note(reader, row["id"], local)
        reader.commit()
        state.record(aid, base + 1, local, path)
        return Synced(aid, "pushed")
    reader.commit()
    current = reader.rows("SELECT body, revision, updated_by, updated_at FROM notes WHERE paper_id = :id",
                          id=row["id"])[0]
    notes.replace(theirs, current["body"])
    state.entries[aid] = {**(entry or {"revision": base, "sha256": ""}), "seen": current["revision"]}
    state.dirty = True
    return Synced(aid, "conflict",
                  f"{aid}: the note was saved by {current['updated_by']} at {str(current['updated_at'])[:16]} "
                  f"(revision {current['revision']}) after this copy was synced; nothing was overwritten: your "
                  f"text stays in {path}, theirs is in {theirs}; merge them into {path}, delete {theirs.name}, "
                  "then sync again")
