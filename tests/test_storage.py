"""The workspace on disk: schema upgrades, WAL, faults, concurrent writers, and the installed wheel."""

import json
import os
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from paperlab.library.db import SCHEMA_HEAD

ROOT = Path(__file__).resolve().parents[1]


def test_schema_head_matches_the_migrations():
    from alembic.script import ScriptDirectory

    assert ScriptDirectory(str(ROOT / "migrations")).get_current_head() == SCHEMA_HEAD


def test_init_is_idempotent_and_uses_wal(cli, home):
    first = cli("init")
    assert first.code == 0 and str(home) in first.out
    assert cli("init").code == 0
    conn = sqlite3.connect(home / "paperlab.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == SCHEMA_HEAD


def test_an_older_database_upgrades_in_place(cli, home):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    home.mkdir(parents=True)
    engine = create_engine(f"sqlite:///{home / 'paperlab.db'}")
    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    engine.dispose()
    conn = sqlite3.connect(home / "paperlab.db")
    conn.execute("INSERT INTO papers (arxiv_id, version, title, abstract, categories, venue_manual, added_at, "
                 "refreshed_at) VALUES ('1503.02531', 1, 'Kept across upgrades', '', '', 0, '2020-01-01', "
                 "'2020-01-01')")
    conn.commit()
    conn.close()
    listed = cli("list", "--json").json()
    assert [p["title"] for p in listed] == ["Kept across upgrades"]
    conn = sqlite3.connect(home / "paperlab.db")
    assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == SCHEMA_HEAD
    assert conn.execute("SELECT count(*) FROM template_links").fetchone() == (0,)


def test_a_file_that_is_not_a_database(cli, home):
    home.mkdir(parents=True)
    db = home / "paperlab.db"
    db.write_bytes(b"these are my thesis notes, not a database\n" * 100)
    before = db.read_bytes()
    for args in (["list"], ["add", "1503.02531"], ["init"]):
        r = cli(*args)
        assert r.code == 1, args
        assert r.err.count("\n") == 1 and "is not a paperlab database" in r.err, r.err
    assert db.read_bytes() == before


@contextmanager
def read_only(path: Path):
    """Make a folder read-only for paperlab: file modes, or (root ignores them) a read-only bind mount."""
    if os.geteuid() != 0:
        for p in [path, *path.rglob("*")]:
            os.chmod(p, 0o555 if p.is_dir() else 0o444)
        try:
            yield
        finally:
            for p in [path, *path.rglob("*")]:
                os.chmod(p, 0o755 if p.is_dir() else 0o644)
        return
    mounted = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True).returncode == 0
    if not mounted or subprocess.run(["mount", "-o", "remount,bind,ro", str(path)]).returncode != 0:
        if mounted:
            subprocess.run(["umount", str(path)])
        pytest.skip("running as root without permission to mount a read-only folder")
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_read_only_workspace(sh, home):
    assert sh("add", "1503.02531").code == 0
    db = home / "paperlab.db"
    before = sqlite3.connect(db).execute("SELECT count(*) FROM papers").fetchone()
    note = home / "notes" / "1503.02531.md"
    note.write_text(note.read_text() + "\nzebrafish\n")  # changed on disk: search would re-index it
    with read_only(home):
        r = sh("add", "1412.6550")
        listed = sh("list", "--json")
        reads = [sh("show", "1503.02531"), sh("search", "zebrafish", "--json"), sh("export"), sh("list")]
    for read in reads:  # issue 13, defect 24: reading needs no write access
        assert read.code == 0 and read.err == "", read.err
    assert reads[1].json()[0]["arxiv_id"] == "1503.02531"
    assert r.code == 1, r.err
    assert len(r.err.strip().splitlines()) == 1 and "read-only" in r.err, r.err
    assert listed.code == 0 and listed.json()[0]["arxiv_id"] == "1503.02531"
    assert sqlite3.connect(db).execute("SELECT count(*) FROM papers").fetchone() == before == (1,)


def test_eight_processes_adding_at_once_all_land(sh, home):
    ids = [f"2412.9{n:04d}" for n in range(8)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda aid: sh("add", aid, "--tag", "batch"), ids))
    assert [r.code for r in results] == [0] * 8, [r.err for r in results]
    conn = sqlite3.connect(home / "paperlab.db")
    assert sorted(r[0] for r in conn.execute("SELECT arxiv_id FROM papers")) == ids
    assert conn.execute("SELECT count(*) FROM tags").fetchone() == (1,)


@pytest.mark.slow
def test_the_built_wheel_ships_templates_and_migrations(tmp_path, home, arxiv):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)], check=True,
                   capture_output=True)
    wheel = next(dist.glob("paperlab-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # the dependencies come from this environment (no multi-GB downloads); the project from the wheel
    site = subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   text=True).strip()
    deps = [p for p in sys.path if p.endswith("site-packages")][0]
    Path(site, "deps.pth").write_text(deps + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)], check=True,
                   capture_output=True)
    env = {**os.environ, "PAPERLAB_HOME": str(tmp_path / "wheel-home")}
    exe = venv / "bin" / "paperlab"
    run = lambda *a: subprocess.run([str(exe), *a], capture_output=True, text=True, env=env, cwd=tmp_path)  # noqa
    assert run("init").returncode == 0
    added = run("add", "1503.02531")
    assert added.returncode == 0, added.stderr
    note = tmp_path / "wheel-home" / "notes" / "1503.02531.md"
    assert "## Questions for the mentor" in note.read_text()
    where = subprocess.check_output([str(python), "-c", "import paperlab.resources as r; "
                                     "print(r.templates_dir()); print(r.migrations_dir())"], text=True, cwd=tmp_path)
    assert all("site-packages/paperlab/_data" in line for line in where.splitlines())
    # this week's paper, in the workspace only: a method from kd edited to another loss, a template from dkd
    installed = Path(site) / "paperlab"
    before = {p: p.read_bytes() for p in installed.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    workspace = tmp_path / "wheel-home"
    assert run("templates", "new", "mykd", "--from", "dkd", "--paper", "2203.08679").returncode == 0
    made = run("methods", "new", "mse-kd", "--from", "kd")
    assert made.returncode == 0, made.stderr
    method = workspace / "methods" / "mse_kd.py"
    code = method.read_text()
    assert '@register("mse-kd")' in code and (workspace / "methods" / "test_mse_kd.py").is_file()
    method.write_text(code.replace("soft = soft_kl(zs, zt, self.p.temperature)",
                                   "soft = F.mse_loss(zs / self.p.temperature, zt / self.p.temperature)"))
    import yaml

    template = workspace / "templates" / "mykd.yaml"
    data = yaml.safe_load(template.read_text())
    assert data["claims"] == [] and data["extends"] == "cifar100-benchmark" and data["paper"] == "2203.08679"
    data["method"], data["distill"] = "mse-kd", {"temperature": 4.0, "alpha": 0.9}
    data["profiles"] = {"smoke": {}, "quick": {}, "paper": {}}  # dkd's warm-up is not a setting of this method
    data["stages"][2] = {"name": "mse-kd", "model": "student", "method": "mse-kd", "teacher": "teacher"}
    template.write_text(yaml.safe_dump(data))
    checked = run("methods", "check", "mse-kd", "--set", "distill.temperature=4", "--set", "distill.alpha=0.9")
    assert checked.returncode == 0 and "FAIL" not in checked.stdout, checked.stdout + checked.stderr
    listed = run("templates", "--json")
    assert "mykd" in listed.stdout and run("methods").stdout.count("mse_kd.py") == 1
    ran = run("run", "mykd", "--profile", "smoke", "--epochs", "2", "--device", "cpu", "--json")
    assert ran.returncode == 0, ran.stderr
    assert [s["stage"] for s in json.loads(ran.stdout)["stages"]] == ["teacher", "student", "mse-kd"]
    compared = run("compare", "-t", "mykd", "-f", "md", "-o", str(tmp_path / "compare.md"))
    assert compared.returncode == 0 and compared.stderr == "", compared.stderr  # no progress bars either
    assert "mse-kd" in (tmp_path / "compare.md").read_text()
    report = run("report", "--template", "mykd", "-o", str(tmp_path / "mykd.html"))
    assert report.returncode == 0 and "mse-kd" in (tmp_path / "mykd.html").read_text(), report.stderr
    after = {p: p.read_bytes() for p in installed.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert after == before  # the package's own files are untouched


def test_a_full_disk_still_reads(sh, cli, home):
    """Issue 13, defect 24: on a full disk `list` said "disk I/O error" (WAL's shared-memory file cannot grow)."""
    from disk import fill, small_disk

    with small_disk(home, "2m"):
        assert cli("add", "1503.02531").code == 0
        fill(home / "filler")
        reads = [sh("list", "--json"), sh("show", "1503.02531"), sh("search", "distillation", "--json"), sh("export")]
        for read in reads:
            assert read.code == 0 and read.err == "", read.err
        assert reads[0].json()[0]["arxiv_id"] == "1503.02531"
        r = sh("add", "1412.6550")
        assert r.code == 1 and "no space left" in r.err and len(r.err.strip().splitlines()) == 1, r.err


def test_an_emptied_library_beside_notes_is_refused_and_rebuilt_from_them(cli, home):
    """Issue 13, defect 28: a 0-byte paperlab.db with notes on disk was taken as a new, empty library."""
    assert cli("add", "1503.02531", "2203.08679", "--tag", "week3").code == 0
    before = {p["arxiv_id"]: p for p in cli("list", "--json").json()}
    (home / "paperlab.db").write_bytes(b"")
    for name in ("paperlab.db-wal", "paperlab.db-shm"):
        (home / name).unlink(missing_ok=True)
    for args in (["list"], ["add", "1412.6550"], ["init"]):
        r = cli(*args)
        assert r.code == 1 and "is empty (0 bytes)" in r.err and "init --rebuild" in r.err, r.err
    (home / "notes" / "stray.md").write_text("no front matter here\n")
    r = cli("init", "--rebuild")
    assert r.code == 0 and "2 papers rebuilt" in r.out and "skipped   stray.md" in r.out, r.err
    after = {p["arxiv_id"]: p for p in cli("list", "--json").json()}
    assert set(after) == set(before)
    for key in ("title", "venue", "tags", "note_path"):
        assert [after[k][key] for k in sorted(after)] == [before[k][key] for k in sorted(before)], key
    assert cli("search", "distillation", "--json").json()  # the abstract and note are indexed again
    assert "0 papers rebuilt" in cli("init", "--rebuild").out  # idempotent


def test_a_damaged_mlflow_store_is_named_not_the_library(cli, home):
    """Issue 13, defect 6: a corrupted mlflow.db was reported as "paperlab.db is not a paperlab database"."""
    assert cli("add", "1503.02531").code == 0
    (home / "mlflow.db").write_bytes(b"not a database, really\n" * 200)
    for args in (["runs"], ["report", "--template", "kd-hinton"], ["run", "kd-hinton", "--profile", "smoke"]):
        r = cli(*args)
        assert r.code == 1 and "the MLflow tracking store" in r.err and "mlflow.db is damaged" in r.err, r.err
        assert "paperlab.db" not in r.err and len(r.err.strip().splitlines()) == 1
    assert cli("list", "--json").json()[0]["arxiv_id"] == "1503.02531"
    (home / "mlflow.db").write_bytes(b"")  # emptied, beside the artifacts of earlier runs
    (home / "mlartifacts" / "kd-hinton" / "0123").mkdir(parents=True)
    r = cli("runs")
    assert r.code == 0 and "mlflow.db is empty (0 bytes)" in r.err and "records are lost" in r.err, r.err


def test_30_schema_and_store_urls_that_cannot_work_are_one_line(cli, home, monkeypatch):
    """Issue 13, defect 30: a newer schema, a database without its version, bad URLs, a missing driver."""
    assert cli("init").code == 0
    db = home / "paperlab.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
    r = cli("list")
    assert r.code == 1 and "written by a newer paperlab" in r.err and "upgrade paperlab" in r.err, r.err
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE alembic_version")
    before = db.read_bytes()
    r = cli("add", "1503.02531")
    assert r.code == 1 and "no schema version" in r.err and len(r.err.splitlines()) == 1, r.err
    assert db.read_bytes() == before  # nothing created in someone else's database
    db.unlink()
    for key, value, message in (("MLFLOW_TRACKING_URI", "foo://bar", "is not a tracking URI MLflow can use"),
                                ("PAPERLAB_DB_URL", "postgresql+psycopg2://u@127.0.0.1:9/x",
                                 "pip install 'psycopg2-binary'"),
                                ("PAPERLAB_DB_URL", "postgresql://u:pw@127.0.0.1:9/x",
                                 "cannot reach the library's database server at postgresql+psycopg://u:***@127.0.0.1:9/x"),
                                ("PAPERLAB_DB_URL", "foo://u@127.0.0.1/x", "is not a database URL")):
        monkeypatch.setenv(key, value)
        r = cli("runs" if key.startswith("MLFLOW") else "list")
        assert r.code == 1 and message in r.err and len(r.err.splitlines()) == 1, r.err
        monkeypatch.delenv(key)
