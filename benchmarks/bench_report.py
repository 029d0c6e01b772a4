"""How long `paperlab report` takes over ~50 runs, imports included.

    python benchmarks/bench_report.py

Makes 17 real smoke runs (51 stage runs: a temperature sweep over seeds, the teacher trained once) in a
throwaway workspace, then times `paperlab report --template kd-hinton` as fresh processes (median of 3),
HTML and Markdown, against `paperlab --help` measured in the same run. Target (issue 4): under 10 s.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="paperlab-report-bench-"))
    os.environ["PAPERLAB_HOME"] = str(tmp / "home")
    from paperlab.lab.pipeline import Run
    from paperlab.lab.templates import load
    from paperlab.settings import load as settings

    start = time.perf_counter()
    combos = [(t, s) for s in (0, 1, 2) for t in (1, 2, 4, 8, 20)] + [(20, 3), (20, 4)]
    for temperature, seed in combos:
        spec = load("kd-hinton", "smoke", {"distill.temperature": temperature, "seed": seed})
        Run(spec, settings(), "cpu", command=f"paperlab run kd-hinton --profile smoke --seed {seed} "
                                             f"--set distill.temperature={temperature}").run_all()
    print(f"made {len(combos)} runs ({3 * len(combos)} stage runs) in {time.perf_counter() - start:.0f} s")

    def cold(args: list[str]) -> float:
        times = []
        for _ in range(3):
            begin = time.perf_counter()
            subprocess.run([sys.executable, "-m", "paperlab", *args], check=True, cwd=tmp,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - begin)
        return statistics.median(times)

    base = cold(["--help"])
    print(f"{'command (fresh process, median of 3)':<52}{'s':>7}{'x --help':>10}")
    print(f"{'paperlab --help (baseline)':<52}{base:>7.2f}{1:>10.1f}")
    for fmt in ("html", "md"):
        seconds = cold(["report", "--template", "kd-hinton", "--format", fmt, "-o", f"r.{fmt}"])
        print(f"{'paperlab report --template kd-hinton -f ' + fmt + ' (51 runs)':<52}{seconds:>7.2f}"
              f"{seconds / base:>10.1f}")
    print(f"HTML size: {(tmp / 'r.html').stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
