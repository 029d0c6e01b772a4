"""The library under load: N clients at once against PostgreSQL and against SQLite, and `search` at 10,000.

    python benchmarks/bench_team.py [--clients 8] [--ops 25] [--papers 10000]

Starts its own PostgreSQL (tests/postgres.py; PAPERLAB_TEST_PG_URL names an existing server instead) and
the local arXiv stub (synthetic IDs). Part 1: N processes at once, each adding `ops` papers one `add` at a
time (library API, no process start per call) then running `ops` searches; wall time and operations per
second on each database, PostgreSQL's figure as a ratio of SQLite's measured in the same run. Part 2: a
library of `papers` papers built through paperlab's own write path on each database, then the full search
path (a team's note sync included) timed, median of 20.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def _client(args: tuple[str, str, str, int, int]) -> float:
    home, db_url, arxiv_url, worker, ops = args
    os.environ.update(PAPERLAB_HOME=home, PAPERLAB_DB_URL=db_url, PAPERLAB_ARXIV_URL=arxiv_url,
                      PAPERLAB_ARXIV_DELAY="0")
    from paperlab.library.db import Reader
    from paperlab.library.papers import add
    from paperlab.library.search import search
    from paperlab.settings import load

    settings = load()
    start = time.perf_counter()
    for i in range(ops):
        [outcome] = add(settings, [f"2412.9{worker * 1000 + i:04d}"], ["load"])
        assert outcome.status == "added", outcome.error
    for i in range(ops):
        with Reader(settings) as reader:
            search(reader, "distillation" if i % 2 else "synthetic", limit=20)
    return time.perf_counter() - start


def load_test(name: str, db_url: str, arxiv_url: str, clients: int, ops: int, tmp: Path) -> float:
    home = tmp / f"load-{name}"
    jobs = [(str(home), db_url, arxiv_url, w, ops) for w in range(clients)]
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        pool.map(_client, jobs[:1])  # the schema and imports once, outside the timing
        start = time.perf_counter()
        pool.map(_client, [(h, u, a, w + 1, o) for h, u, a, w, o in jobs])
        wall = time.perf_counter() - start
    total = clients * ops * 2
    print(f"{name:<11} {clients} clients x ({ops} adds + {ops} searches): {wall:6.2f} s, {total / wall:6.1f} ops/s")
    return wall


def search_latency(name: str, db_url: str, papers: int, tmp: Path) -> dict[str, float]:
    from bench_library import build

    home = tmp / f"search-{name}"
    os.environ["PAPERLAB_DB_URL"] = db_url
    start = time.perf_counter()
    build(home, papers)
    print(f"{name}: built {papers:,} papers in {time.perf_counter() - start:.0f} s")
    from paperlab.library.db import Reader
    from paperlab.library.search import search
    from paperlab.settings import load

    figures = {}
    with Reader(load()) as reader:
        search(reader, "warm")
        for text in ("distillation", "teacher student", "calib*"):
            times = []
            for _ in range(20):
                begin = time.perf_counter()
                search(reader, text, limit=20)
                times.append(time.perf_counter() - begin)
            figures[text] = statistics.median(times) * 1000
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--ops", type=int, default=25)
    parser.add_argument("--papers", type=int, default=10_000)
    opts = parser.parse_args()
    import postgres
    from arxiv_server import ArxivStub

    server = None
    pg = os.environ.get("PAPERLAB_TEST_PG_URL")
    if not pg:
        server = postgres.Server().start()
        pg = server.url
    tmp = Path(tempfile.mkdtemp(prefix="paperlab-team-bench-"))
    try:
        with ArxivStub() as stub:
            print(f"part 1: concurrent clients ({os.cpu_count()} CPU cores)")
            lite = load_test("SQLite", f"sqlite:///{tmp / 'load.db'}", stub.url, opts.clients, opts.ops, tmp)
            post = load_test("PostgreSQL", postgres.new_database(pg), stub.url, opts.clients, opts.ops, tmp)
            print(f"PostgreSQL / SQLite wall time: {post / lite:.2f}")
        print(f"\npart 2: search at {opts.papers:,} papers (full path, median of 20, ms)")
        lite = search_latency("SQLite", f"sqlite:///{tmp / 'search.db'}", opts.papers, tmp)
        post = search_latency("PostgreSQL", postgres.new_database(pg), opts.papers, tmp)
        print(f"{'query':<18}{'SQLite':>9}{'PostgreSQL':>12}{'ratio':>8}")
        for text in lite:
            print(f"{text!r:<18}{lite[text]:>9.1f}{post[text]:>12.1f}{post[text] / lite[text]:>8.2f}")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
