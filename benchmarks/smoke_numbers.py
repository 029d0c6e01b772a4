"""Every template's smoke run, one thread, in a fresh workspace: the test errors of each stage as JSON, to
check that a refactoring leaves the numbers as they were (run before and after; compare the two files).

    OMP_NUM_THREADS=1 python benchmarks/smoke_numbers.py > before.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile


def main() -> None:
    from paperlab.lab.templates import template_names

    env = {**os.environ, "PAPERLAB_HOME": tempfile.mkdtemp(prefix="paperlab-smoke-"), "OMP_NUM_THREADS": "1"}
    numbers = {}
    for name in template_names():
        out = subprocess.run([sys.executable, "-m", "paperlab", "run", name, "--profile", "smoke", "--device", "cpu",
                              "--json", *sys.argv[1:]], env=env, capture_output=True, text=True)
        numbers[name] = ({s["stage"]: s["test_error"] for s in json.loads(out.stdout)["stages"]}
                         if out.returncode == 0 else f"exit {out.returncode}: {out.stderr.strip()[-200:]}")
        print(name, numbers[name], file=sys.stderr, flush=True)
    print(json.dumps(numbers, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
