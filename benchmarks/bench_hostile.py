"""Time bounds of issue 13's defects 16-18, before and after, measured in one run.

    python benchmarks/bench_hostile.py

16  a venue label with a long run of spaces: the old regular expression (kept here as the baseline) against
    `venues.parse_label`.
17  search on a library whose note holds N matches: FTS5's snippet() (the old query, run on the same
    database) against `search.query`; and a long query, old (FTS5 MATCH of every word) against the new cap.
18  a silent arXiv server (accepts, never answers) with 1 s per try, 4 retries, backoff 0.1: no deadline
    (the old behaviour) against PAPERLAB_ARXIV_DEADLINE=2; and a 429 asking for an hour.
"""

from __future__ import annotations

import os
import re
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
OLD_LABEL = re.compile(r"(?P<name>.*?)[\s\-']*(?P<year>(?:19|20)\d{2})?(?:\s+(?P<detail>workshop|oral|spotlight))?",
                       re.I)


def timed(fn) -> float:
    started = time.perf_counter()
    try:
        fn()
    except Exception:  # the new code refuses some inputs: the time to refuse is what is measured
        pass
    return time.perf_counter() - started


def row(case: str, before: float, after: float) -> None:
    print(f"| {case} | {before:.3f} s | {after:.4f} s | {before / max(after, 1e-6):,.0f}× |", flush=True)


def venue_labels() -> None:
    from paperlab.library.venues import parse_label

    for spaces in (250, 500):
        label = "a" + " " * spaces + "b"
        row(f"16 venue label, {spaces} spaces", timed(lambda label=label: OLD_LABEL.fullmatch(label)),
            timed(lambda label=label: parse_label(label)))
    label = "a" + " " * 4000 + "b"
    print(f"| 16 venue label, 4000 spaces | 706 s (issue's figure, not re-run) | "
          f"{timed(lambda: parse_label(label)):.4f} s | |")


def search_notes(home: Path) -> None:
    os.environ.update(PAPERLAB_HOME=str(home))
    from paperlab.library.arxiv import Fetched
    from paperlab.library.db import Reader
    from paperlab.library.papers import session_scope, store
    from paperlab.library.search import query, sync_notes
    from paperlab.settings import load

    settings = load()
    with session_scope(settings) as session:
        outcome = store(session, settings, Fetched("1503.02531", 1, "Distilling the knowledge", ["G. Hinton"],
                                                   "Soft targets.", None, None, "stat.ML"), [], None)
    note = Path(outcome.note_path)
    base = note.read_text()
    old_sql = ("SELECT rowid, rank, snippet(paper_fts, -1, '«', '»', '…', 12) FROM paper_fts "
               "WHERE paper_fts MATCH '\"zebrafish\"' ORDER BY rank LIMIT 20")
    for matches in (10_000, 20_000, 80_000):
        note.write_text(base + "the zebrafish swims " + "zebrafish " * matches)
        with Reader(settings) as reader:
            sync_notes(reader)
            before = timed(lambda: sqlite3.connect(settings.db_path).execute(old_sql).fetchall()) \
                if matches <= 20_000 else float("nan")
            after = timed(lambda: query(reader, "zebrafish", 20))
        if matches <= 20_000:
            row(f"17 search, {matches:,} matches in one note", before, after)
        else:
            print(f"| 17 search, {matches:,} matches in one note | 40 s (issue's figure, not re-run) | "
                  f"{after:.4f} s | |")
    words = " ".join(f'"w{i}"' for i in range(2_000))
    with Reader(settings) as reader:
        row("17 a 2,000-word query", timed(lambda: sqlite3.connect(settings.db_path).execute(
            "SELECT rowid FROM paper_fts WHERE paper_fts MATCH ?", (words,)).fetchall()),
            timed(lambda: query(reader, words.replace('"', ""), 20)))


def silent_arxiv() -> None:
    from arxiv_server import ArxivStub

    from paperlab.errors import PaperlabError
    from paperlab.library.arxiv import fetch
    from paperlab.settings import load

    with ArxivStub() as stub:
        os.environ.update(PAPERLAB_ARXIV_URL=stub.url, PAPERLAB_ARXIV_DELAY="0", PAPERLAB_ARXIV_TIMEOUT="1",
                          PAPERLAB_ARXIV_RETRIES="4", PAPERLAB_ARXIV_BACKOFF="0.1")
        stub.silent_s = 30
        times = {}
        for deadline in ("1000000", "2"):
            os.environ["PAPERLAB_ARXIV_DEADLINE"] = deadline
            times[deadline] = timed(lambda: fetch([("1503.02531", None)], load()))
        row("18 silent server (1 s per try, 4 retries)", times["1000000"], times["2"])
        stub.silent_s = 0
        stub.fail_next.extend([429] * 5)
        stub.retry_after = "3600"
        message = "(no error)"
        os.environ["PAPERLAB_ARXIV_DEADLINE"] = "60"
        started = time.perf_counter()
        try:
            fetch([("1503.02531", None)], load())
        except PaperlabError as exc:
            message = str(exc)
        after = time.perf_counter() - started
        print(f"| 18 HTTP 429, Retry-After: 3600 | 120 s (issue's figure, not re-run) | {after:.4f} s | "
              f"says: {message[:60]}… |")


def main() -> None:
    print("| case | before | after | ratio |\n| --- | --- | --- | --- |")
    venue_labels()
    with tempfile.TemporaryDirectory() as home:
        search_notes(Path(home))
    silent_arxiv()


if __name__ == "__main__":
    main()
