"""Team mode: one library on a real PostgreSQL server (tests/postgres.py) shared by several processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from paperlab.library.db import SCHEMA_HEAD


def _bib(ids: list[str]) -> str:
    return "".join(f"@misc{{synthetic{i},\n  title = {{Synthetic paper {aid}}},\n  author = {{Author, Test}},\n"
                   f"  year = {{2024}},\n  eprint = {{{aid}}},\n  archiveprefix = {{arXiv}}\n}}\n"
                   for i, aid in enumerate(ids))


@pytest.mark.usefixtures("backend")
def test_eight_processes_at_once_lose_nothing_and_duplicate_nothing(cli, tmp_path, library_sql):
    """4 adds of overlapping ID ranges, 2 imports of one file and 2 taggings of one paper, all at once:
    every paper once, one author row, every tag there; on SQLite and on PostgreSQL alike."""
    ids = [f"2412.9{n:04d}" for n in range(50)]
    assert cli("add", "2412.90099").code == 0  # the paper the two `tag`s race on
    bib = tmp_path / "team.bib"
    bib.write_text(_bib(ids[30:50]))
    commands = [["add", *ids[i * 10:i * 10 + 20], "--tag", f"team{i}"] for i in range(4)]
    commands += [["import", str(bib), "--tag", "imported"]] * 2
    commands += [["tag", "2412.90099", "a", "b"], ["tag", "2412.90099", "b", "c"]]
    procs = [subprocess.Popen([sys.executable, "-m", "paperlab", *args], env=os.environ.copy(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for args in commands]
    results = [(p.wait(timeout=240), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert [code for code, _ in results] == [0] * 8, results
    papers = {p["arxiv_id"]: p for p in cli("list", "--json").json()}
    assert sorted(papers) == sorted([*ids, "2412.90099"])
    assert library_sql("SELECT count(*) FROM papers") == [(51,)]
    assert library_sql("SELECT count(*) FROM authors") == [(1,)]
    assert papers["2412.90099"]["tags"] == ["a", "b", "c"]
    for n, aid in enumerate(ids):
        expected = {f"team{i}" for i in range(4) if i * 10 <= n < i * 10 + 20} | ({"imported"} if n >= 30 else set())
        assert set(papers[aid]["tags"]) == expected, aid
        assert papers[aid]["authors"] in (["Test Author"],), aid


def test_postgres_search_is_its_own_full_text_search(cli, pg_url, monkeypatch, library_sql):
    """A weighted tsvector with a GIN index, made by the migrations; title matches outrank abstract ones,
    prefixes work, and a note's words are found after the note is edited outside paperlab."""
    monkeypatch.setenv("PAPERLAB_DB_URL", pg_url)
    assert cli("add", "1503.02531", "1412.6550", "2203.08679", "1505.00387").code == 0
    indexes = library_sql("SELECT indexdef FROM pg_indexes WHERE tablename = 'paper_text'")
    assert any("USING gin (document)" in row[0] for row in indexes)
    assert library_sql("SELECT version_num FROM alembic_version") == [(SCHEMA_HEAD,)]
    hits = cli("search", "distillation", "--json").json()
    assert [h["arxiv_id"] for h in hits][:2] in (["2203.08679", "1503.02531"], ["1503.02531", "2203.08679"])
    assert hits[-1]["arxiv_id"] == "1412.6550" and "«" in hits[0]["snippet"]
    assert hits[0]["score"] > hits[-1]["score"]
    assert {h["arxiv_id"] for h in cli("search", "distil*", "--json").json()} >= {"2203.08679", "1503.02531"}
    assert cli("search", "highway networks", "--json").json()[0]["arxiv_id"] == "1505.00387"
    note = cli("show", "1412.6550", "--json").json()["note_path"]
    with open(note, "a", encoding="utf-8") as out:
        out.write("\nzebrafish\x00 hints\n")  # a NUL PostgreSQL's text cannot hold
    assert [h["arxiv_id"] for h in cli("search", "zebrafish", "--json").json()] == ["1412.6550"]
    assert cli("rm", "1412.6550", "--yes").code == 0
    assert cli("search", "zebrafish", "--json").json() == []


def test_a_password_in_the_database_url_is_never_printed(cli, monkeypatch, pg_server):
    url = pg_server.replace("postgres@", "postgres:s3cret@").rsplit("/", 1)[0] + "/no_such_db"
    monkeypatch.setenv("PAPERLAB_DB_URL", url)
    r = cli("list")
    assert r.code == 1 and "s3cret" not in r.err and "postgres:***@" in r.err and "no_such_db" in r.err


def test_notes_are_shared_and_a_second_save_of_the_same_note_is_refused_with_both_texts_kept(
        cli, pg_url, monkeypatch, tmp_path):
    """Two machines (two workspaces) on one team library: a note written on one is read and searched on the
    other; when both edit it, the second save is refused, nothing is overwritten, and after the merge both
    machines hold the merged text."""
    from pathlib import Path

    monkeypatch.setenv("PAPERLAB_DB_URL", pg_url)
    machines = {name: tmp_path / name for name in ("ada", "bo")}

    def on(name, *args):
        monkeypatch.setenv("PAPERLAB_HOME", str(machines[name]))
        return cli(*args)

    assert on("ada", "add", "1503.02531").code == 0
    ada_note = Path(on("ada", "show", "1503.02531", "--json").json()["note_path"])
    ada_note.write_text(ada_note.read_text() + "\nAda: the soft targets carry the dark knowledge.\n")
    assert on("ada", "sync").out.split() == ["pushed", "1503.02531"]
    # Bo's machine has no copy yet: a report on the paper shows Ada's note, search finds her words
    from paperlab.reports.collect import _paper
    from paperlab.settings import load

    monkeypatch.setenv("PAPERLAB_HOME", str(machines["bo"]))
    assert "Ada: the soft targets" in _paper(load(), "1503.02531")[1]["Questions for the mentor"]
    bo_note = machines["bo"] / "notes" / "1503.02531.md"
    assert [h["arxiv_id"] for h in on("bo", "search", "dark", "--json").json()] == ["1503.02531"]
    assert "Ada: the soft targets" in bo_note.read_text() and on("bo", "sync").out == ""
    assert on("bo", "show", "1503.02531", "--json").json()["note_path"] == str(bo_note)
    # both edit; Ada saves first, through `paperlab note` and an editor that appends a line
    bo_note.write_text(bo_note.read_text() + "\nBo: why T=20 on MNIST?\n")
    monkeypatch.setenv("EDITOR", f"{sys.executable} -c \"import sys; open(sys.argv[1], 'a').write('Ada again\\n')\"")
    r = on("ada", "note", "1503.02531")
    assert r.code == 0 and "pushed" in r.out, r.err
    monkeypatch.delenv("EDITOR")
    r = on("bo", "sync")
    assert r.code == 1 and "saved by" in r.err and "nothing was overwritten" in r.err, r.err
    theirs = bo_note.with_name("1503.02531.theirs.md")
    assert "Bo: why T=20" in bo_note.read_text() and "Ada again" in theirs.read_text()
    assert on("bo", "sync").code == 1  # still refused while the other text is unmerged
    assert "Bo: why T=20" not in on("ada", "search", "T=20", "--json").out
    bo_note.write_text(theirs.read_text() + "\nBo: why T=20 on MNIST?\n")
    theirs.unlink()
    assert on("bo", "sync").out.split() == ["pushed", "1503.02531"]
    assert on("ada", "sync").out.split() == ["pulled", "1503.02531"]
    merged = ada_note.read_text()
    assert all(s in merged for s in ("Ada: the soft targets", "Ada again", "Bo: why T=20"))
    assert on("ada", "sync").out == ""  # nothing left to do
    monkeypatch.delenv("PAPERLAB_DB_URL")
    assert on("ada", "sync").code == 2  # a single user's library has nothing to sync


def test_a_local_library_moves_into_the_team_database_with_its_notes_and_again_copies_nothing(
        cli, pg_url, monkeypatch, tmp_path):
    from pathlib import Path

    assert cli("add", "1503.02531", "1412.6550", "2203.08679", "--tag", "kd").code == 0
    cli("venue", "1412.6550", "ICLR 2015 workshop")
    cli("link", "2203.08679", "dkd")
    note = Path(cli("show", "1503.02531", "--json").json()["note_path"])
    note.write_text(note.read_text() + "\nMy own notes on dark knowledge.\n")
    mine = cli("list", "--json").json()
    r = cli("db", "migrate", "--to", pg_url.replace("postgresql+psycopg://", "postgresql://"))
    assert r.code == 0 and r.out.count("\ncopied ") == 2 and "3 papers copied" in r.out, r.err
    again = cli("db", "migrate", "--to", pg_url)
    assert again.code == 0 and "0 papers copied" in again.out and again.out.count("kept") == 3
    monkeypatch.setenv("PAPERLAB_DB_URL", pg_url)
    assert cli("list", "--json").json() == mine  # same papers, authors, venues, tags, links, note paths
    assert [h["arxiv_id"] for h in cli("search", "dark knowledge", "--json").json()] == ["1503.02531"]
    assert cli("sync").out == ""  # this machine's notes are the library's: nothing to push or pull
    # another member's machine gets the note as written here
    monkeypatch.setenv("PAPERLAB_HOME", str(tmp_path / "other"))
    assert cli("sync").code == 0
    assert "My own notes on dark knowledge." in (tmp_path / "other" / "notes" / "1503.02531.md").read_text()
    monkeypatch.delenv("PAPERLAB_DB_URL")
    bad = cli("db", "migrate", "--to", "sqlite:///elsewhere.db")
    assert bad.code == 2 and "team's database URL" in bad.err


def test_a_sweep_shared_by_workers_runs_each_point_once_and_a_killed_workers_point_again(
        pg_url, tmp_path, request):
    """Two workers (two workspaces, as on two machines) share one study in PostgreSQL and one MLflow
    server; one is killed with SIGKILL in the middle of a point: the other finds its heartbeat gone, runs
    that point again, and every point ends as one finished run under the sweep's one parent."""
    import signal

    from mlflow import MlflowClient
    from mlflow_server import MlflowServer
    from optuna import load_study
    from optuna.trial import TrialState

    server = MlflowServer(pg_url, tmp_path / "artifacts").start()
    import postgres

    sweeps = postgres.new_database(request.getfixturevalue("pg_server"))
    command = [sys.executable, "-m", "paperlab", "sweep", "kd-hinton", "--profile", "smoke", "--device", "cpu",
               "--grid", "distill.temperature=2,8", "--seeds", "2", "--study", "team", "--storage", sweeps,
               "--set", "train.epochs=5"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.url, "PAPERLAB_SWEEP_HEARTBEAT": "1",
           "PAPERLAB_DB_URL": "", "PAPERLAB_REGISTER": "0"}
    try:
        victim = subprocess.Popen(command, env={**env, "PAPERLAB_HOME": str(tmp_path / "a")},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        survivor = subprocess.Popen(command, env={**env, "PAPERLAB_HOME": str(tmp_path / "b")},
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for line in victim.stderr:
            if line.startswith("kd ") and "epoch   3/" in line:  # in the middle of one of its points
                victim.send_signal(signal.SIGKILL)
                break
        victim.wait(timeout=120)
        victim.stderr.close()
        assert victim.returncode == -signal.SIGKILL
        out, err = survivor.communicate(timeout=600)
        assert survivor.returncode == 0, err
        trials = load_study(study_name="team", storage=sweeps).get_trials()
        done = [t.params["point"] for t in trials if t.state == TrialState.COMPLETE]
        assert sorted(done) == [0, 1, 2, 3]  # each point once
        assert [t.state for t in trials].count(TrialState.FAIL) == 1  # the killed worker's, run again
        client = MlflowClient(server.url)
        kd = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                "tags.`paperlab.stage` = 'kd' and attributes.status = 'FINISHED'")
        assert sorted(r.data.tags["paperlab.sweep_point"] for r in kd) == [
            "distill.temperature=2,seed=0", "distill.temperature=2,seed=1", "distill.temperature=8,seed=0",
            "distill.temperature=8,seed=1"]
        assert len({r.data.tags["mlflow.parentRunId"] for r in kd}) == 1
        parent = client.get_run(kd[0].data.tags["mlflow.parentRunId"])
        assert parent.info.status == "FINISHED" and parent.data.tags["paperlab.study"] == "team"
        other = [*command[:command.index("distill.temperature=2,8")], "distill.temperature=4",
                 *command[command.index("distill.temperature=2,8") + 1:]]
        refused = subprocess.run(other, env={**env, "PAPERLAB_HOME": str(tmp_path / "b")}, capture_output=True,
                                 text=True, timeout=120)
        assert refused.returncode == 2 and "holds another sweep" in refused.stderr, refused.stderr
    finally:
        server.stop()
