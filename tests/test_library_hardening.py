"""Issue 13's defects in the paper library (input at the edge, arXiv faults, notes, BibTeX, storage): each case
failed before its fix. The security cases are in test_hostile.py, the exit-code contract in test_cli_contract.py."""

import subprocess
import sys
import time


def test_14_oversized_versions_are_refused_at_the_edge_and_the_rest_reported(cli):
    r = cli("add", "2203.08679", "1503.02531v99999999999999999999999", "1412.6550")
    assert r.code == 2 and "malformed arXiv ID '1503.02531v99999999999999999999999'" in r.err
    assert [line.split()[:2] for line in r.out.splitlines()] == [["added", "2203.08679v2"], ["added", "1412.6550v4"]]


def test_16_a_venue_label_is_read_in_linear_time(home):
    # before: a regular expression that backtracked for 706 s on this label; the subprocess's timeout fails it
    args = [sys.executable, "-m", "paperlab", "list", "--venue", "a" + " " * 4000 + "b"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "unknown venue 'a" in r.stderr and "(4,002 characters)" in r.stderr
    assert len(r.stderr) < 300  # the argument is not echoed in full


def test_18_a_silent_arxiv_fails_by_its_deadline_and_says_so(cli, arxiv, monkeypatch):
    monkeypatch.setenv("PAPERLAB_ARXIV_TIMEOUT", "0.5")
    monkeypatch.setenv("PAPERLAB_ARXIV_DEADLINE", "2")
    arxiv.silent_s = 3
    started = time.monotonic()
    r = cli("add", "1503.02531")
    assert time.monotonic() - started < 10  # deadline + one try, not retries × timeout
    assert r.code == 1 and "cannot reach" not in r.err, r.err
    assert "PAPERLAB_ARXIV_DEADLINE" in r.err or "did not answer within 0.5 s per try" in r.err, r.err


def test_18_a_429_asking_for_an_hour_fails_at_once_with_its_reason(cli, arxiv):
    arxiv.fail_next.extend([429] * 5)
    arxiv.retry_after = "3600"
    r = cli("add", "1503.02531")
    assert r.code == 1 and "asks to wait 3600 s" in r.err, r.err
    assert len(arxiv.requests) == 1


def test_23_an_unreadable_reply_is_not_reported_as_not_found(cli, arxiv):
    arxiv.junk = True
    r = cli("add", "1503.02531")
    assert r.code == 1 and "reply could not be read" in r.err and "not found" not in r.err, r.err
    assert cli("list", "--json").json() == []


def test_26_ids_take_ascii_digits_and_versions_from_1(cli, arxiv):
    for raw in ("١٥03.٠٢٥٣١", "１５０３.０２５３１", "1503.02531v0"):
        r = cli("add", raw)
        assert r.code == 2 and "malformed arXiv ID" in r.err, (raw, r.err)
    assert arxiv.requests == []  # nothing was sent to arXiv


def test_30_bad_numeric_settings_are_one_line(cli, monkeypatch):
    for key, value in (("PAPERLAB_ARXIV_DELAY", "abc"), ("PAPERLAB_ARXIV_TIMEOUT", "0"),
                       ("PAPERLAB_ARXIV_RETRIES", "-1"), ("PAPERLAB_ARXIV_DEADLINE", "nan")):
        monkeypatch.setenv(key, value)
        r = cli("add", "1503.02531")
        assert r.code == 2 and r.err.startswith(f"error: {key} must be") and len(r.err.splitlines()) == 1, r.err
        monkeypatch.delenv(key)


def test_32_tags_and_venues_have_a_length_limit(cli):
    assert cli("add", "1503.02531").code == 0
    r = cli("tag", "1503.02531", "x" * 100_000)
    assert r.code == 2 and "tag too long" in r.err and len(r.err) < 300
    r = cli("venue", "1503.02531", "y" * 120_000)
    assert r.code == 2 and "venue name too long" in r.err and len(r.err) < 300
    assert cli("show", "1503.02531", "--json").json()["tags"] == []


def test_17_search_is_bounded_by_what_it_shows_not_by_matches_in_a_note(cli, sh):
    from pathlib import Path

    assert cli("add", "1503.02531", "1412.6550").code == 0
    note = Path(cli("show", "1412.6550", "--json").json()["note_path"])
    note.write_text(note.read_text() + "\nthe zebrafish swims " + "zebrafish " * 80_000, encoding="utf-8")
    r = sh("search", "zebrafish", "--json")  # before: 40 s of FTS5 snippet() work (bench_hostile.py)
    assert r.code == 0 and [h["arxiv_id"] for h in r.json()] == ["1412.6550"], r.err
    assert "the «zebrafish» swims" in r.json()[0]["snippet"]
    r = cli("search", " ".join(["word"] * 20_000))
    assert r.code == 2 and "at most 32 words" in r.err


def test_9_a_latin_1_note_is_read_and_named_not_fatal(cli, tmp_path):
    from pathlib import Path

    assert cli("add", "1503.02531", "1412.6550").code == 0
    note = Path(cli("show", "1412.6550", "--json").json()["note_path"])
    note.write_bytes(note.read_bytes() + "\nNotes from the café about Adam\n".encode("latin-1"))
    r = cli("search", "adam", "--json")
    assert r.code == 0 and [h["arxiv_id"] for h in r.json()] == ["1412.6550"], r.err
    assert f"the note {note} is not UTF-8" in r.err
    refreshed = cli("add", "1412.6550", "1503.02531")  # a refresh re-indexes the note; the batch goes on
    assert refreshed.code == 0 and len(refreshed.out.splitlines()) == 2, refreshed.err
    r = cli("report", "--paper", "1412.6550", "-o", str(tmp_path / "r.html"))
    assert r.code == 2 and "no finished runs found for 1412.6550" in r.err  # read the note, then found no runs


def test_10_a_note_that_cannot_be_written_leaves_nothing_behind(cli, home):
    from disk import fill, small_disk

    assert cli("add", "1503.02531").code == 0
    notes = home / "notes"
    saved = {p.name: p.read_bytes() for p in notes.iterdir()}
    with small_disk(notes, "64k"):
        for name, data in saved.items():
            (notes / name).write_bytes(data)
        fill(notes / ".filler")
        r = cli("add", "1412.6550")
        assert r.code == 1 and "cannot write the note" in r.err and "No space left" in r.err, r.err
        assert len(r.err.strip().splitlines()) == 1
        assert sorted(p.name for p in notes.iterdir()) == [".filler", "1503.02531.md"]  # no empty note, no temporary
        assert [p["arxiv_id"] for p in cli("list", "--json").json()] == ["1503.02531"]
        (notes / ".filler").unlink()
        (notes / "1412.6550.md").write_text("")  # an empty note, as an older paperlab left them
        assert cli("add", "1412.6550").code == 0
        assert "## Key idea" in (notes / "1412.6550.md").read_text()


def test_30_editor_settings_that_cannot_work_are_one_line(cli, monkeypatch):
    assert cli("add", "1503.02531").code == 0
    for editor, message in (('vim "x', "cannot read $EDITOR="), ("   ", "holds only spaces")):
        monkeypatch.setenv("EDITOR", editor)
        r = cli("note", "1503.02531")
        assert r.code == 1 and message in r.err and len(r.err.strip().splitlines()) == 1, r.err


def test_12_export_then_import_gives_back_the_same_library(cli, tmp_path, monkeypatch):
    assert cli("add", "1503.02531", "2203.08679", "1412.6550", "cs/0112017", "--tag", "week3").code == 0
    assert cli("tag", "1412.6550", "optimisers").code == 0
    assert cli("venue", "1412.6550", "ICLR 2015 oral").code == 0  # a venue set by hand
    assert cli("link", "1503.02531", "kd-hinton").code == 0
    bib = tmp_path / "lib.bib"
    assert cli("export", "-o", str(bib)).code == 0
    assert "year = {2022}" in bib.read_text()  # CVPR 2022's own year

    def library():
        rows = cli("list", "--json").json()
        shown = [cli("show", r["arxiv_id"], "--json").json() for r in rows]
        return [{k: v for k, v in p.items() if k != "note_path"} for p in rows + shown]

    before = library()
    monkeypatch.setenv("PAPERLAB_HOME", str(tmp_path / "fresh"))
    monkeypatch.setenv("PAPERLAB_ARXIV_URL", "http://127.0.0.1:9/api/query")  # offline
    assert cli("import", str(bib)).code == 0
    after = library()
    for old, new in zip(before, after):
        assert {k: v for k, v in old.items() if old[k] != new.get(k)} == {}, (old["arxiv_id"], new)
    assert after == before
    assert (before[0]["venue"], before[0]["venue_detail"]) != (None, None)


def test_13_odd_entries_are_skipped_with_their_reason_and_the_rest_imported(cli, tmp_path):
    bib = tmp_path / "odd.bib"
    bib.write_text(
        "@misc{zero, title={A}, year={0}, eprint={1503.02531}}\n"
        "@misc{huge, title={B}, year={99999}, eprint={1412.6550}}\n"
        "@misc{seenote, title={C}, note={see arXiv:1234.5678}}\n"
        "@misc{longversion, title={D}, eprint={2001.00054v9999999999999999999999}}\n"
        "@misc{good, title={Highway networks}, year={2015}, eprint={1505.00387}}\n"
        "@misc{broken, title={E\n", encoding="utf-8")
    r = cli("import", str(bib))
    assert r.code == 1, r.err
    assert [line.split()[:2] for line in r.out.splitlines() if line.startswith("added")] == [["added", "1505.00387"]]
    for key, reason in (("zero", "year '0' is not a year"), ("huge", "year '99999' is not a year"),
                        ("seenote", "no arXiv ID"), ("longversion", "is not an arXiv ID")):
        assert any(line.startswith(f"skipped   {key}: ") and reason in line for line in r.out.splitlines()), r.out
    assert "entries skipped" in r.err and "Traceback" not in r.err and "WARNING" not in r.err


def test_15_a_long_import_lets_other_writers_in_and_its_notes_follow_its_rows(cli, sh, home, tmp_path):
    import threading

    assert cli("add", "1503.02531").code == 0
    count = 1000  # five batches
    bib = tmp_path / "many.bib"
    bib.write_text("".join(f"@misc{{k{i}, title={{Paper {i}}}, year={{2024}}, eprint={{2412.9{i:04d}}}}}\n"
                           for i in range(count)), encoding="utf-8")
    done = {}

    def run(name, *args):
        done[name] = (sh(*args), time.monotonic())

    importer = threading.Thread(target=run, args=("import", "import", str(bib)))
    importer.start()
    while importer.is_alive() and not list((home / "notes").glob("2412.9*.md")):  # its first batch is in
        time.sleep(0.01)
    run("tag", "tag", "1503.02531", "between-batches")
    importer.join()
    (imported, import_end), (tagged, tag_end) = done["import"], done["tag"]
    assert imported.code == 0 and tagged.code == 0, (imported.err, tagged.err)
    assert tag_end < import_end  # it got in between two batches instead of waiting for the whole import
    rows = {p["arxiv_id"] for p in cli("list", "--json").json()}
    notes = {p.stem for p in (home / "notes").glob("*.md")}
    assert len(rows) == count + 1 and notes == rows


def test_bibtex_round_trip_keeps_percent_and_ampersand_and_turns_zotero_phrases_into_tags(cli, tmp_path, monkeypatch):
    bib = tmp_path / "zotero.bib"
    bib.write_text("@article{cut, title = {Cut at 50\\% here and a \\& b \\#1}, eprint = {1503.02531}, year = {2015},\n"
                   "  abstract = {Soft targets \\& hard ones: 99\\% of it},\n"
                   "  keywords = {Computer Science - Machine Learning, knowledge distillation}}\n", encoding="utf-8")
    r = cli("import", str(bib))
    assert r.code == 0, r.err
    assert r.err.count("warning:") == 1 and "2 keywords were phrases" in r.err
    shown = cli("show", "1503.02531", "--json").json()
    assert shown["title"] == "Cut at 50% here and a & b #1"
    assert set(shown["tags"]) == {"Computer-Science-Machine-Learning", "knowledge-distillation"}
    out = tmp_path / "out.bib"
    assert cli("export", "-o", str(out)).code == 0
    assert "50\\% here and a \\& b \\#1" in out.read_text()
    monkeypatch.setenv("PAPERLAB_HOME", str(tmp_path / "fresh"))
    assert cli("import", str(out)).code == 0
    again = cli("show", "1503.02531", "--json").json()
    assert again["title"] == shown["title"] and again["abstract"] == "Soft targets & hard ones: 99% of it"
