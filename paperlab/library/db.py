"""Opening the library's database.

Writes go through a SQLAlchemy engine (SQLModel sessions). Read-only commands (`list`, `search`, `show`)
must start fast, and SQLAlchemy alone costs ~230 ms to import, so on SQLite they read through the
standard `sqlite3` module with the same SQL (`Reader`). Either path upgrades an older schema first.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from paperlab.errors import PaperlabError
from paperlab.settings import Settings

SCHEMA_HEAD = "0004"  # the newest file in migrations/versions; a test checks alembic agrees
BUSY_TIMEOUT_S = 30


def shown_url(url: str) -> str:
    """A database URL as it may be printed: its password, if any, as ***."""
    from paperlab.settings import redact

    return redact(url)


def storage_error(exc: BaseException, settings: Settings) -> PaperlabError:
    """Turn a database driver error into one line a user can act on."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    where = settings.db_path or shown_url(settings.db_url)
    if "file is not a database" in text or "malformed" in text:
        return PaperlabError(f"{where} is not a paperlab database ({text})")
    import os

    read_only = settings.db_path is not None and not os.access(settings.db_path.parent, os.W_OK)
    if "readonly" in text or "read-only" in text or (read_only and "unable to open" in text):
        return PaperlabError(f"the workspace is read-only: cannot write {where}")
    if "disk is full" in text or "disk I/O error" in text:
        import shutil

        free = shutil.disk_usage(settings.db_path.parent).free if settings.db_path else None
        if free is not None and free < 1 << 20:
            return PaperlabError(f"no space left on the disk holding {where} ({free:,} bytes free); nothing was changed")
    if "connection failed" in text or "could not connect" in text or "Connection refused" in text:
        reason = text.rsplit("failed:", 1)[-1].strip()
        return PaperlabError(f"cannot reach the library's database server at {where} ({reason}); is it running, and "
                             "does PAPERLAB_DB_URL name it?")
    if "unable to open database" in text:
        return PaperlabError(f"cannot open the database at {where} ({text})")
    return PaperlabError(f"database error at {where}: {text}")


def _sqlite_pragmas(conn: Any) -> None:
    cur = conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
    cur.execute("PRAGMA foreign_keys = ON")
    if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        cur.execute("PRAGMA journal_mode = WAL")
    cur.close()


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let the "begin" listener emit BEGIN itself
    _sqlite_pragmas(dbapi_connection)


def _unwritable(exc: sqlite3.Error) -> bool:
    text = str(exc)
    return any(s in text for s in ("disk I/O error", "readonly", "read-only", "unable to open", "disk is full"))


def _read_only_connection(path: Path) -> sqlite3.Connection:
    """For a workspace that cannot be written (read-only, or a full disk where WAL's shared-memory file
    cannot grow): the file as it is, without locks or WAL. Nothing else can be writing to it then."""
    return sqlite3.connect(f"{path.absolute().as_uri()}?immutable=1", uri=True)


def _sqlite_version(path: Path) -> str | None:
    """The alembic revision stored in an SQLite file, or None when the file has none yet."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        if not _unwritable(exc):
            raise
        conn = _read_only_connection(path)
    try:
        row = conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='alembic_version'"
        ).fetchone()
        if row is None:
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
            if tables:  # someone else's database, or ours without its version: never add tables to it
                raise PaperlabError(f"{path} has tables but no schema version (no alembic_version table), so it is "
                                    "not a paperlab library or its version was lost; move it aside (`paperlab init "
                                    "--rebuild` then rebuilds the library from the notes)")
            return None
        found = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return found[0] if found else None
    finally:
        conn.close()


WRITE_LOCK = 0x7061_7065  # PostgreSQL: the advisory lock every library write holds ("pape")


def lock_for_writing(connection: Any) -> None:
    """PostgreSQL: take the library's write lock until the transaction ends. Writers queue behind it as they
    do behind SQLite's BEGIN IMMEDIATE, so concurrent adds, tags and imports never race to insert the same
    paper, author or tag (no duplicates, no unique-key failures); readers are not held up."""
    from sqlalchemy import text

    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK})


def _server_version(engine: Any) -> str | None:
    """The alembic revision of a server database, or None before the first migration."""
    from sqlalchemy import inspect, text

    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _upgrade(engine: Any) -> None:
    from alembic import command
    from alembic.config import Config

    from paperlab.resources import migrations_dir

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    with engine.begin() as connection:
        lock_for_writing(connection)  # several first commands at once: one migrates, the others then find it done
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _refuse_emptied(settings: Settings) -> None:
    """A 0-byte library beside notes is a library that lost its rows (a crash, a bad copy), not a new one."""
    path = settings.db_path
    if path is None or not path.exists() or path.stat().st_size > 0 or not settings.notes_dir.is_dir():
        return
    count = sum(1 for _ in settings.notes_dir.glob("*.md"))
    if count:
        raise PaperlabError(f"{path} is empty (0 bytes) but {settings.notes_dir} holds {count:,} notes: the library's "
                            "rows are gone, the notes are not; `paperlab init --rebuild` rebuilds it from the notes")


def _ensure_schema(settings: Settings, engine_factory: Any) -> None:
    path = settings.db_path
    if path is None:
        engine = engine_factory()
        version = _server_version(engine)
        if version is not None and version > SCHEMA_HEAD:
            raise PaperlabError(f"the library at {shown_url(settings.db_url)} was written by a newer paperlab (schema "
                                f"{version}; this one knows up to {SCHEMA_HEAD}): upgrade paperlab")
        if version != SCHEMA_HEAD:
            _upgrade(engine)
        return
    version = _sqlite_version(path)
    if version == SCHEMA_HEAD:
        return
    if version is not None and version > SCHEMA_HEAD:  # revisions are zero-padded numbers
        raise PaperlabError(f"{path} was written by a newer paperlab (library schema {version}; this one knows up to "
                            f"{SCHEMA_HEAD}): upgrade paperlab to use this workspace")
    _refuse_emptied(settings)
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock", timeout=120):
        if _sqlite_version(path) != SCHEMA_HEAD:
            _upgrade(engine_factory())


def open_engine(settings: Settings):
    """A SQLAlchemy engine on an up-to-date schema (SQLite: WAL mode, busy timeout, foreign keys)."""
    from sqlalchemy import create_engine, event

    if settings.db_path is not None:
        settings.db_path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(settings.db_url, connect_args={"timeout": BUSY_TIMEOUT_S})
        event.listen(engine, "connect", _on_connect)
        # Writers take the lock when their transaction starts, so concurrent `add`s queue up behind the
        # busy timeout instead of failing on a read-then-write upgrade (SQLAlchemy's pysqlite recipe).
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    else:
        try:
            engine = create_engine(settings.db_url, pool_pre_ping=True)
        except ModuleNotFoundError as exc:
            package = {"psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary"}.get(exc.name, exc.name)
            raise PaperlabError(f"PAPERLAB_DB_URL needs the Python package {exc.name}: pip install '{package}'") from exc
        except Exception as exc:  # sqlalchemy.exc.ArgumentError, NoSuchModuleError: a URL it cannot use
            raise PaperlabError(f"PAPERLAB_DB_URL={shown_url(settings.db_url)!r} is not a database URL SQLAlchemy can use "
                                f"({str(exc).splitlines()[0][:120]})") from exc
    _ensure_schema(settings, lambda: engine)
    return engine


class Reader:
    """Plain SQL with `:name` parameters, on sqlite3 (fast start) or on SQLAlchemy (other databases)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.engine = None
        path = settings.db_path
        if path is not None:
            if _sqlite_version(path) != SCHEMA_HEAD:
                open_engine(settings).dispose()  # creates or upgrades the schema (the slow path, once)
            try:
                self._sqlite = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
                _sqlite_pragmas(self._sqlite)
                self._sqlite.execute("SELECT count(*) FROM papers").fetchone()
            except sqlite3.OperationalError as exc:
                if not _unwritable(exc):
                    raise
                self._sqlite = _read_only_connection(path)
        else:
            self._sqlite = None
            self.engine = open_engine(settings)
            self._conn = self.engine.connect()

    @property
    def is_sqlite(self) -> bool:
        return self._sqlite is not None

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        if self._sqlite is not None:
            cur = self._sqlite.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
        from sqlalchemy import text

        return [dict(r._mapping) for r in self._conn.execute(text(sql), params)]

    def execute(self, sql: str, **params: Any) -> None:
        if self._sqlite is not None:
            self._sqlite.execute(sql, params)
        else:
            from sqlalchemy import text

            self._conn.execute(text(sql), params)

    def update(self, sql: str, **params: Any) -> int:
        """Run a write; the number of rows it changed."""
        if self._sqlite is not None:
            return self._sqlite.execute(sql, params).rowcount
        from sqlalchemy import text

        return self._conn.execute(text(sql), params).rowcount

    def commit(self) -> None:
        (self._sqlite or self._conn).commit()

    def copy_to_memory(self) -> None:
        """Go on reading from an in-memory copy: for a read-only workspace, where a search still has to
        index the notes changed on disk (SQLite's backup API; a few milliseconds for thousands of papers)."""
        memory = sqlite3.connect(":memory:")
        self._sqlite.backup(memory)
        self._sqlite.close()
        self._sqlite = memory

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        else:
            self._conn.close()
            self.engine.dispose()

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
