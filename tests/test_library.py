"""`paperlab add/list/show/search/tag/venue/rm/export/import` against a local arXiv, each test on both
databases: the workspace's SQLite file and a fresh database on a real PostgreSQL server (conftest's
`backend`): same output, same exit codes."""

import json
import sys
from pathlib import Path

import bibtexparser
import pytest

pytestmark = pytest.mark.usefixtures("backend")


def test_add_every_id_form_and_json_shape(cli):
    r = cli("add", "1503.02531", "arXiv:1412.6550", "https://arxiv.org/pdf/2203.08679v2.pdf",
            "http://arxiv.org/abs/cs/0112017", "1505.00387v2")
    assert r.code == 0, r.err
    assert [line.split()[0] for line in r.out.splitlines()] == ["added"] * 5
    paper = cli("show", "1503.02531", "--json").json()
    assert paper["arxiv_id"] == "1503.02531" and paper["version"] == 1
    assert paper["authors"] == ["Geoffrey Hinton", "Oriol Vinyals", "Jeff Dean"]
    assert paper["published"] == "2015-03-09"
    assert (paper["venue"], paper["venue_detail"]) == ("NeurIPS 2014", "workshop")
    assert paper["categories"] == ["stat.ML", "cs.LG", "cs.NE"]
    assert Path(paper["note_path"]).is_file()
    listed = {p["arxiv_id"]: p for p in cli("list", "--json").json()}
    assert set(listed) == {"1503.02531", "1412.6550", "2203.08679", "cs/0112017", "1505.00387"}
    assert listed["2203.08679"]["venue"] == "CVPR 2022" and listed["2203.08679"]["version"] == 2
    assert listed["cs/0112017"]["authors"] == ["Zoë Ångström"]
    assert (listed["cs/0112017"]["venue"], listed["cs/0112017"]["venue_detail"]) == ("CVPR 2021", "oral")
    assert listed["1505.00387"]["authors"][-1] == "Jürgen Schmidhuber"
    for key in ("arxiv_id", "version", "title", "authors", "published", "venue", "venue_detail", "tags",
                "note_path"):
        assert key in listed["1412.6550"]


def test_ids_are_batched_in_one_polite_query(cli, arxiv):
    assert cli("add", "1503.02531", "1412.6550", "1505.00387").code == 0
    assert len(arxiv.requests) == 1
    assert "id_list=1503.02531%2C1412.6550%2C1505.00387" in arxiv.requests[0]["path"]
    assert arxiv.requests[0]["user_agent"].startswith("paperlab/")


def test_adding_again_refreshes_without_duplicate_or_touching_the_note(cli, library_sql):
    cli("add", "1503.02531")
    note = Path(cli("show", "1503.02531", "--json").json()["note_path"])
    note.write_text(note.read_text() + "\nMy own thoughts.\n")
    before = note.read_text()
    r = cli("add", "1503.02531v1", "--tag", "kd")
    assert r.code == 0 and r.out.startswith("refreshed") and "note untouched" in r.out
    assert note.read_text() == before
    rows = library_sql("SELECT count(*) FROM papers")[0]
    assert rows == (1,)
    assert cli("show", "1503.02531", "--json").json()["tags"] == ["kd"]


def test_one_bad_id_does_not_stop_the_rest(cli):
    r = cli("add", "1503.02531", "not-an-id", "2301.00001", "1412.6550")
    assert r.code == 2
    assert "malformed arXiv ID 'not-an-id'" in r.err and "2301.00001: not found on arXiv" in r.err
    assert len(r.err.strip().splitlines()) == 2
    assert {p["arxiv_id"] for p in cli("list", "--json").json()} == {"1503.02531", "1412.6550"}


def test_unknown_id_stores_nothing(cli):
    r = cli("add", "2301.00001")
    assert r.code == 2 and r.err.strip() == "error: 2301.00001: not found on arXiv"
    assert cli("list", "--json").json() == []


def test_arxiv_error_entry_for_a_refused_id(cli, arxiv):
    arxiv.refuse.add("1412.6550")
    r = cli("add", "1503.02531", "1412.6550")
    assert r.code == 2
    assert "arXiv rejected 1412.6550: incorrect id format for 1412.6550" in r.err
    assert [p["arxiv_id"] for p in cli("list", "--json").json()] == ["1503.02531"]


def test_503_and_429_are_retried_with_backoff(cli, arxiv):
    arxiv.fail_next.extend([503, 429])
    r = cli("add", "1503.02531")
    assert r.code == 0, r.err
    assert len(arxiv.requests) == 3


def test_arxiv_down_for_good_fails_at_run_time_and_keeps_the_library(cli, arxiv, monkeypatch):
    cli("add", "1503.02531")
    monkeypatch.setenv("PAPERLAB_ARXIV_RETRIES", "2")
    arxiv.fail_next.extend([503] * 3)
    r = cli("add", "1503.02531", "1412.6550")
    assert r.code == 1 and "arXiv answered HTTP 503 after retries" in r.err
    assert [p["arxiv_id"] for p in cli("list", "--json").json()] == ["1503.02531"]


def test_network_down(cli, monkeypatch):
    cli("add", "1503.02531")
    monkeypatch.setenv("PAPERLAB_ARXIV_URL", "http://127.0.0.1:9/api/query")
    monkeypatch.setenv("PAPERLAB_ARXIV_RETRIES", "1")
    r = cli("add", "1412.6550")
    assert r.code == 1
    assert r.err.startswith("error: 1412.6550: cannot reach arXiv at http://127.0.0.1:9/api/query")
    assert len(r.err.splitlines()) == 1
    assert [p["arxiv_id"] for p in cli("list", "--json").json()] == ["1503.02531"]


def test_manual_venue_wins_and_survives_refresh(cli):
    assert cli("add", "1503.02531", "--venue", "ICML 2015").code == 0
    assert cli("show", "1503.02531", "--json").json()["venue"] == "ICML 2015"
    cli("add", "1503.02531")
    assert cli("show", "1503.02531", "--json").json()["venue"] == "ICML 2015"
    r = cli("venue", "1503.02531", "ICCV 2023")
    assert r.code == 0 and cli("show", "1503.02531", "--json").json()["venue"] == "ICCV 2023"


def test_unknown_venue_is_refused_with_close_matches(cli):
    cli("add", "1503.02531")
    r = cli("venue", "1503.02531", "ICVV 2023")
    assert r.code == 2 and "unknown venue 'ICVV 2023'" in r.err and "ICCV" in r.err
    assert cli("show", "1503.02531", "--json").json()["venue"] == "NeurIPS 2014"
    r = cli("add", "1412.6550", "--venue", "Bogus Conf")
    assert r.code == 2 and cli("list", "--json").json()[0]["arxiv_id"] == "1503.02531"


def test_list_filters(cli):
    cli("add", "1503.02531", "1412.6550", "2203.08679", "1512.03385")
    cli("tag", "2203.08679", "kd", "logits")
    ids = lambda *args: [p["arxiv_id"] for p in cli("list", "--json", *args).json()]  # noqa: E731
    assert ids("--venue", "CVPR") == ["2203.08679", "1512.03385"]
    assert ids("--venue", "CVPR 2022") == ["2203.08679"]
    assert ids("--year", "2015") == ["1412.6550"]
    assert ids("--tag", "kd") == ["2203.08679"]
    assert ids("--top-tier") == ["2203.08679", "1512.03385", "1503.02531", "1412.6550"]
    assert "4 papers" in cli("list").out
    assert cli("venues", "--json").json()[0]["short"] == "NeurIPS"


def test_search_ranks_and_sees_notes_edited_outside(cli):
    cli("add", "1503.02531", "1412.6550", "2203.08679", "1505.00387")
    hits = cli("search", "distillation", "--json").json()
    assert hits[0]["arxiv_id"] in {"2203.08679", "1503.02531"}  # the title matches rank first
    assert {h["arxiv_id"] for h in hits} == {"2203.08679", "1503.02531", "1412.6550"}
    assert "«" in hits[0]["snippet"]
    assert cli("search", "Schmidhuber", "--json").json()[0]["arxiv_id"] == "1505.00387"
    assert cli("search", "zebrafish", "--json").json() == []
    note = Path(cli("show", "1412.6550", "--json").json()["note_path"])
    note.write_text(note.read_text().replace("## Key idea\n", "## Key idea\nzebrafish hints from the middle\n"))
    found = cli("search", "zebrafish", "--json").json()
    assert [h["arxiv_id"] for h in found] == ["1412.6550"]
    r = cli("search", "***")
    assert r.code == 2 and "nothing to search for" in r.err


def test_tags_and_unknown_papers(cli):
    cli("add", "1503.02531")
    assert cli("tag", "1503.02531", "kd", "mnist").code == 0
    assert cli("show", "1503.02531", "--json").json()["tags"] == ["kd", "mnist"]
    cli("tag", "1503.02531", "mnist", "--remove")
    assert cli("show", "1503.02531", "--json").json()["tags"] == ["kd"]
    for args in (["show", "1412.6550"], ["tag", "1412.6550", "x"], ["rm", "1412.6550", "--yes"],
                 ["venue", "1412.6550", "ICLR 2015"], ["note", "1412.6550"]):
        r = cli(*args)
        assert r.code == 2 and "1412.6550 is not in the library" in r.err, args
    r = cli("show", "nonsense")
    assert r.code == 2 and "malformed arXiv ID" in r.err


def test_rm_keeps_the_note_unless_purged(cli):
    cli("add", "1503.02531", "1412.6550")
    note = Path(cli("show", "1503.02531", "--json").json()["note_path"])
    assert cli("rm", "1503.02531", "--yes").code == 0
    assert note.exists() and cli("show", "1503.02531").code == 2
    assert cli("search", "ensemble", "--json").json() == []
    other = Path(cli("show", "1412.6550", "--json").json()["note_path"])
    assert cli("rm", "1412.6550", "--yes", "--purge").code == 0 and not other.exists()
    assert cli("rm", "1412.6550", "--yes").code == 2


def test_note_opens_the_editor_or_prints_the_path(cli, monkeypatch):
    cli("add", "1503.02531")
    path = cli("note", "1503.02531").out.strip()
    assert path.endswith("1503.02531.md")
    editor = f"{sys.executable} -c \"import sys; open(sys.argv[1], 'a').write('edited in editor')\""
    monkeypatch.setenv("EDITOR", editor)
    assert cli("note", "1503.02531").code == 0
    assert Path(path).read_text().endswith("edited in editor")


def test_bibtex_export_and_offline_import(cli, tmp_path, monkeypatch, backend, request):
    cli("add", "1503.02531", "1412.6550", "2203.08679", "1505.00387", "--tag", "kd")
    out = tmp_path / "lib.bib"
    assert cli("export", "--format", "bibtex", "-o", str(out)).code == 0
    library = bibtexparser.parse_file(str(out))
    entries = {e.key: e for e in library.entries}
    assert set(entries) == {"hinton2015distilling", "romero2014fitnets", "zhao2022decoupled",
                            "srivastava2015highway"}
    assert entries["zhao2022decoupled"].entry_type == "inproceedings"
    assert entries["hinton2015distilling"]["eprint"] == "1503.02531"
    assert "Schmidhuber" in entries["srivastava2015highway"]["author"]
    exported = json.loads(cli("export", "--format", "json").out)
    assert len(exported) == 4
    # a second library, with arXiv unreachable, takes the file in
    monkeypatch.setenv("PAPERLAB_HOME", str(tmp_path / "other"))
    if backend == "postgresql":
        import postgres

        monkeypatch.setenv("PAPERLAB_DB_URL", postgres.new_database(request.getfixturevalue("pg_server")))
    monkeypatch.setenv("PAPERLAB_ARXIV_URL", "http://127.0.0.1:9/api/query")
    r = cli("import", str(out))
    assert r.code == 0 and r.out.count("added") == 4
    mine = {p["arxiv_id"]: p for p in cli("list", "--json").json()}
    assert mine["2203.08679"]["venue"] == "CVPR 2022"
    assert mine["1503.02531"]["authors"] == ["Geoffrey Hinton", "Oriol Vinyals", "Jeff Dean"]
    assert cli("import", str(out)).out.count("kept") == 4
    assert cli("export", "--format", "yaml").code == 2


def test_import_of_a_google_scholar_entry_and_a_bad_file(cli, tmp_path):
    bib = tmp_path / "scholar.bib"
    bib.write_text("@article{hinton2015distilling,\n  title={Distilling the knowledge in a neural network},\n"
                   "  author={Hinton, Geoffrey and Vinyals, Oriol and Dean, Jeff},\n"
                   "  journal={arXiv preprint arXiv:1503.02531},\n  year={2015}\n}\n"
                   "@book{goodfellow2016deep, title={Deep Learning}, author={Goodfellow, Ian}, year={2016}}\n")
    r = cli("import", str(bib))
    assert r.code == 1 and "added    " in r.out and "skipped   goodfellow2016deep: no arXiv ID" in r.out
    assert "1 of 2 entries skipped" in r.err
    assert cli("show", "1503.02531", "--json").json()["authors"][0] == "Geoffrey Hinton"
    empty = tmp_path / "empty.bib"
    empty.write_text("just text\n")
    assert cli("import", str(empty)).code == 2
    assert cli("import", str(tmp_path / "missing.bib")).code == 2


def test_link_a_paper_to_a_template(cli):
    cli("add", "1412.6550")
    assert cli("link", "1412.6550", "kd-hinton").code == 0
    assert cli("link", "1412.6550", "kd-hinton").code == 0  # idempotent
    assert cli("show", "1412.6550", "--json").json()["templates"] == ["fitnet", "kd-hinton"]  # its own and the link
    r = cli("link", "1412.6550", "fitnets")
    assert r.code == 2 and "unknown template 'fitnets'; did you mean 'fitnet'" in r.err
    assert cli("link", "1503.02531", "kd-hinton").code == 2  # not in the library
