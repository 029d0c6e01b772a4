"""Cold-start and query speed of the paper library.

    python benchmarks/bench_library.py [--papis PATH_TO_PAPIS]

Builds throwaway workspaces of 1,000 and 10,000 papers through paperlab's own write path, then times
fresh processes (median of 5) and the search query itself (median of 20). Prints ratios against
`python -c pass` measured in the same run, and against papis 0.16 `list` when its executable is given.
Targets (issue 2): list and search cold <= 250 ms at 1,000 papers; the query <= 20 ms at 10,000.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

WORDS = ("knowledge distillation teacher student logits temperature attention transfer hint layer "
         "ensemble compression residual network vision transformer contrastive momentum self supervised "
         "robust calibration pruning quantization dataset benchmark").split()


def build(home: Path, n: int) -> None:
    os.environ["PAPERLAB_HOME"] = str(home)
    from paperlab.library.arxiv import Fetched
    from paperlab.library.papers import session_scope, store
    from paperlab.settings import load

    rng = random.Random(n)
    settings = load()
    with session_scope(settings) as session:
        for i in range(n):
            title = " ".join(rng.choice(WORDS) for _ in range(8)).capitalize()
            fetched = Fetched(
                arxiv_id=f"2{i // 90000 + 1:03d}.{i % 90000 + 10000:05d}", version=1, title=title,
                authors=[f"Author {rng.randint(1, 3000)}" for _ in range(rng.randint(1, 6))],
                abstract=" ".join(rng.choice(WORDS) for _ in range(150)),
                published=date(2015 + i % 10, 1 + i % 12, 1), updated=None, primary_category="cs.LG",
                categories=["cs.LG"], comment=rng.choice(["Accepted to CVPR 2021", "ICLR 2020", None]))
            store(session, settings, fetched, [rng.choice(["kd", "vision", "nlp"])], None)


def cold(args: list[str], env: dict, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--papis", help="path to a papis 0.16 executable to time `papis list` beside us")
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="paperlab-bench-"))
    small, big = tmp / "p1000", tmp / "p10000"
    t0 = time.perf_counter()
    build(small, 1000)
    build(big, 10000)
    print(f"built workspaces of 1,000 and 10,000 papers in {time.perf_counter() - t0:.1f} s")

    # an installed wheel has its bytecode compiled by pip; a checkout under PYTHONDONTWRITEBYTECODE has not
    import compileall

    import paperlab

    compileall.compile_dir(str(Path(paperlab.__file__).parent), quiet=1)
    paperlab = [sys.executable, "-m", "paperlab"]
    env = {**os.environ, "PAPERLAB_HOME": str(small)}
    subprocess.run([*paperlab, "search", "warm"], env=env, capture_output=True)  # index notes once
    base = cold([sys.executable, "-c", "pass"], env)
    rows = [("python -c pass (baseline)", base)]
    rows.append(("paperlab --help", cold([*paperlab, "--help"], env)))
    rows.append(("paperlab list (1,000 papers)", cold([*paperlab, "list", "--json"], env)))
    rows.append(("paperlab search distillation (1,000)", cold([*paperlab, "search", "distillation"], env)))
    if opts.papis:
        papis_home = tmp / "papis"
        (papis_home / "lib").mkdir(parents=True)
        conf = papis_home / "config"
        conf.write_text(f"[settings]\ndefault-library = bench\n[bench]\ndir = {papis_home / 'lib'}\n")
        lib = str(papis_home / "lib")
        papis_env = {**env, "XDG_CONFIG_HOME": str(papis_home), "XDG_CACHE_HOME": str(papis_home / "cache")}
        for i in range(1000):
            doc = papis_home / "lib" / f"doc{i}"
            doc.mkdir()
            (doc / "info.yaml").write_text(f"title: Paper {i}\nauthor: Author {i}\nyear: 2020\n")
        subprocess.run([opts.papis, "--config", str(conf), "-l", lib, "list", "--all"], env=papis_env,
                       capture_output=True)  # papis builds its cache on the first call, as we index notes
        rows.append(("papis 0.16 list (1,000 documents)",
                     cold([opts.papis, "--config", str(conf), "-l", lib, "list", "--all", "--format",
                           "{doc[title]}"], papis_env)))
    print(f"\n{'command (cold, median of 5)':<42}{'ms':>8}{'x python':>10}")
    for name, ms in rows:
        print(f"{name:<42}{ms:>8.0f}{ms / base:>10.1f}")

    os.environ["PAPERLAB_HOME"] = str(big)
    from paperlab.library.db import Reader
    from paperlab.library.search import query, sync_notes
    from paperlab.settings import load

    with Reader(load()) as reader:
        sync_notes(reader)
        for text in ("distillation", "teacher student", "calib*"):
            times = []
            for _ in range(20):
                start = time.perf_counter()
                hits = query(reader, text, limit=20)
                times.append(time.perf_counter() - start)
            print(f"FTS query {text!r} on 10,000 papers: {statistics.median(times) * 1000:.1f} ms "
                  f"(median of 20, {len(hits)} hits shown; the synthetic abstracts make most papers match)")
        times = []
        for _ in range(5):
            start = time.perf_counter()
            sync_notes(reader)
            times.append(time.perf_counter() - start)
        print(f"note check before each search (stat 10,000 notes): {statistics.median(times) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
