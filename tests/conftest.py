"""Shared fixtures: a workspace in a temporary folder, the local arXiv server, and the CLI in-process."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):  # two workers on two cores: one thread each, their runs' processes too
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"

sys.path.insert(0, str(Path(__file__).parent))
from arxiv_server import ArxivStub  # noqa: E402


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        import json

        return json.loads(self.out)


@pytest.fixture(scope="session")
def arxiv_stub():
    with ArxivStub() as stub:
        yield stub


@pytest.fixture
def arxiv(arxiv_stub):
    arxiv_stub.fail_next.clear()
    arxiv_stub.requests.clear()
    arxiv_stub.refuse.clear()
    arxiv_stub.retry_after, arxiv_stub.silent_s, arxiv_stub.junk = "0", 0.0, False
    return arxiv_stub


@pytest.fixture
def home(tmp_path, monkeypatch, arxiv):
    """A fresh workspace whose arXiv is the local server; no MLflow or data outside tmp_path."""
    ws = tmp_path / "home"
    env = {
        "PAPERLAB_HOME": str(ws), "PAPERLAB_ARXIV_URL": arxiv.url, "PAPERLAB_ARXIV_DELAY": "0",
        "PAPERLAB_ARXIV_BACKOFF": "0.01", "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
        "PAPERLAB_REGISTER": "0",  # MLflow's log_model costs 2-7 s a model; the registry's own tests turn it on
    }
    for key in ("PAPERLAB_DB_URL", "MLFLOW_TRACKING_URI", "PAPERLAB_DATA_DIR", "EDITOR", "VISUAL"):
        monkeypatch.setenv(key, "")  # records the value before, so teardown also undoes what code sets later
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return ws


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server for the session (tests/postgres.py), or PAPERLAB_TEST_PG_URL's; skipped without one."""
    url = os.environ.get("PAPERLAB_TEST_PG_URL")
    if url:
        yield url
        return
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[test]')")
    import postgres

    if postgres.binaries() is None:
        pytest.skip("PostgreSQL is not installed here (apt-get install postgresql); .ci/run installs it")
    server = postgres.Server().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server):
    """A fresh database on the session's PostgreSQL server."""
    import postgres

    return postgres.new_database(pg_server)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, home, monkeypatch):
    """The library on each database: the workspace's SQLite file, then a fresh PostgreSQL database."""
    if request.param == "postgresql":
        monkeypatch.setenv("PAPERLAB_DB_URL", request.getfixturevalue("pg_url"))
    return request.param


@pytest.fixture
def library_sql(home):
    """Run SQL on the workspace's library, whichever database holds it: a list of row tuples."""
    def run(sql: str, **params):
        from sqlalchemy import create_engine, text

        from paperlab.settings import load

        engine = create_engine(load().db_url)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(text(sql), params)]
        finally:
            engine.dispose()

    return run


@pytest.fixture
def cli(home):
    """Run `paperlab ARGS` in this process, through the same entry point as the console script."""
    from paperlab.cli import main

    def run(*args: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        old_argv = sys.argv
        sys.argv = ["paperlab", *args]
        code = 0
        try:
            with redirect_stdout(out), redirect_stderr(err):
                main()
        except SystemExit as exc:
            code = exc.code or 0
        finally:
            sys.argv = old_argv
        return Result(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def sh(home):
    """Run `paperlab ARGS` as a separate process (what a user's shell does)."""
    def run(*args: str, env: dict | None = None, **kwargs) -> Result:
        proc = subprocess.run([sys.executable, "-m", "paperlab", *args], capture_output=True, text=True,
                              env={**os.environ, **(env or {})}, timeout=300, **kwargs)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run
