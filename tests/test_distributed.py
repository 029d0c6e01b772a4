"""`paperlab run --nproc N`: torchrun's workers on CPU (gloo), against one process; a worker killed with -9."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SMOKE = ["run", "kd-hinton", "--profile", "smoke", "--device", "cpu", "--set", "train.epochs=10", "--json"]


def _errors(result) -> dict[str, int]:
    return {s["stage"]: s["test_error"] for s in result.json()["stages"]}


def _pid_of_rank(rank: int, home: Path) -> int | None:
    """The worker of `rank` among the processes working in `home` (read from /proc)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env and f"PAPERLAB_HOME={home}".encode() in env:
            return int(pid)
    return None


def test_the_helpers_and_crds_memory_bank_under_two_workers(tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          str(worker)], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "OMP_NUM_THREADS": "1", "PAPERLAB_TEST_OUT": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-2000:]
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["mine"] for r in seen] == [[0, 2, 4], [1, 3]]                  # every other row of the batch
    assert [r["weight"] for r in seen] == [1.2, 0.8]                         # 3/5 x 2 and 2/5 x 2: mean of 1
    assert [(r["lone"], r["lone_weight"]) for r in seen] == [([0], 2.0), ([0], 0.0)]  # no rank is left empty
    assert all(r["gathered"] == [0, 20, 40, 10, 30] and r["total"] == 3.0 for r in seen)
    # CRD's memory bank: each worker moved the rows of the whole batch, its own and the other's, alike
    assert all(r["changed"] == [1, 4, 7, 10, 11] and r["banks_agree"] for r in seen)
    assert seen[0]["z"] == seen[1]["z"]


def test_two_workers_match_one_process_and_a_killed_worker_is_resumed(sh, home, tmp_path):
    one = sh(*SMOKE, env={"PAPERLAB_HOME": str(tmp_path / "one")})
    assert one.code == 0, one.err
    proc = subprocess.Popen([sys.executable, "-m", "paperlab", *SMOKE, "--nproc", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    deadline = time.time() + 240
    while time.time() < deadline and not list(home.glob("runs/*/kd.ckpt")):
        time.sleep(0.02)
    os.kill(_pid_of_rank(1, home), signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1] == ("error: worker 1 of 2 was killed by SIGKILL, so the run stopped; the "
                                            "same command with --resume continues it")
    two = sh(*SMOKE, "--nproc", "2", "--resume")
    assert two.code == 0, two.err
    assert "kd       epoch   1/10" not in two.err        # it continued from the checkpoint
    assert two.err.count("kd       epoch  10/10") == 1   # rank 0 alone speaks
    # the same global batch of 64, split 32/32: the students (no dropout, no augmentation) differ from one
    # process's only by the order of floating-point sums; the teacher's dropout masks are drawn per worker
    a, b = _errors(one), _errors(two)
    assert abs(a["teacher"] - b["teacher"]) <= 10 and abs(a["student"] - b["student"]) <= 3 \
        and abs(a["kd"] - b["kd"]) <= 5, (a, b)
    runs = sh("runs", "--json").json()
    assert sorted(r["stage"] for r in runs) == ["kd", "student", "teacher"]
    assert {r["status"] for r in runs} == {"FINISHED"} and len({r["parent_run_id"] for r in runs}) == 1


def test_nproc_is_refused_where_it_cannot_run(sh, tmp_path):
    r = sh("run", "kd-hinton", "--profile", "smoke", "--device", "cuda", "--nproc", "2")
    assert r.code == 1 and r.err.strip() == ("error: --nproc 2: this machine has 0 CUDA devices; give at most that "
                                             "many, or --device cpu")
    r = sh("run", "kd-hinton", "--profile", "smoke", "--nproc", "0")
    assert r.code == 2
    r = sh("run", "kd-hinton", "--profile", "smoke", "--nproc", "2", env={"WORLD_SIZE": "2"})
    assert r.code == 2 and r.err.strip() == ("error: --nproc: this is already a torchrun worker; give --nproc to "
                                             "paperlab, or run torchrun")
    # bad input met by every worker (a dataset that is not there): said once, with one process's exit code
    r = sh("run", "kd-hinton", "--profile", "smoke", "--device", "cpu", "--nproc", "2", "--dataset", "mnist",
           "--data-dir", str(tmp_path))
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r.err
    assert r.err.startswith(f"error: {tmp_path} lacks train-images-idx3-ubyte")
    r = sh("sweep", "kd-hinton", "--profile", "smoke", env={"WORLD_SIZE": "2"})
    assert r.code == 2 and "not under torchrun" in r.err
