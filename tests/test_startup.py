"""The paper commands start fast: no torch, mlflow, matplotlib or SQLAlchemy on their path."""

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "mlflow", "matplotlib", "sqlalchemy", "sqlmodel", "alembic", "numpy")
PROBE = ("import json, sys, runpy\n"
         "sys.argv = ['paperlab'] + sys.argv[1:]\n"
         "try:\n    runpy.run_module('paperlab', run_name='__main__')\n"
         "except SystemExit:\n    pass\n"
         "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n")


@pytest.mark.parametrize("args", [["--help"], ["list"], ["search", "distillation"], ["show", "1503.02531"],
                                  ["venues"]])
def test_read_commands_import_nothing_heavy(cli, args, home):
    assert cli("add", "1503.02531").code == 0  # the workspace exists and is migrated
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True)
    loaded = set(json.loads(proc.stderr.strip().splitlines()[-1]))
    assert not loaded & set(HEAVY), loaded & set(HEAVY)
