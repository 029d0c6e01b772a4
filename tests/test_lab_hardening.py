"""Defects of issue 13 in the code the lab rewrite touched: each case failed before its fix (the security
cases 1, 4 and 5 are in test_hostile.py)."""

import os
import threading

SMOKE = ["run", "kd-hinton", "--profile", "smoke", "--device", "cpu", "--json"]


def test_7_a_damaged_teacher_cache_is_set_aside_and_retrained(cli, home):
    first = cli(*SMOKE, "--stage", "teacher", "--epochs", "2").json()["stages"][0]
    cache = next((home / "cache" / "teachers").glob("*.pt"))
    cache.write_bytes(cache.read_bytes()[:100])  # a kill mid-save, before writes became atomic
    r = cli(*SMOKE, "--stage", "teacher", "--epochs", "2")
    assert r.code == 0, r.err
    assert "is damaged" in r.err and "training it again" in r.err
    assert r.json()["stages"][0]["reused"] is False and r.json()["stages"][0]["test_error"] == first["test_error"]
    assert list(cache.parent.glob("*.damaged")) and not list(cache.parent.glob("*.tmp"))


def test_8_two_identical_runs_do_not_share_a_run_folder(cli, home):
    from filelock import FileLock

    spec_dir = home / "runs"
    assert cli(*SMOKE, "--stage", "student", "--epochs", "1").code == 0
    run_dir = next(p for p in spec_dir.iterdir() if p.is_dir())
    held = threading.Event()
    release = threading.Event()

    def hold():
        with FileLock(str(run_dir) + ".lock"):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(10)
    try:
        r = cli(*SMOKE, "--stage", "student", "--epochs", "1")
        assert r.code == 1 and "the same run is already going on in another process" in r.err
    finally:
        release.set()
        thread.join()


def test_11_sweep_grids_are_honoured_or_refused(cli):
    r = cli("sweep", "kd-hinton", "--profile", "smoke", "--grid", "seed=3,4")
    assert r.code == 2 and "--seeds" in r.err
    r = cli("sweep", "kd-hinton", "--profile", "smoke", "--grid", "distill.temperature=1",
            "--grid", "distill.temperature=2")
    assert r.code == 2 and "given twice" in r.err
    r = cli("sweep", "kd-hinton", "--profile", "smoke", "--grid", "=1,2")
    assert r.code == 2 and "--grid takes key=v1,v2" in r.err


def test_21_the_whole_spec_is_validated_before_anything_runs(cli, home):
    cases = {"method=nope": "unknown distillation method 'nope'", "paper=nonsense": "malformed arXiv ID",
             "student.net.hidden=[-1]": "student.net.hidden.0", "student.net.hidden=[0]": "student.net.hidden.0",
             "seed=-1": "bad value for 'seed'", "train.lr=.inf": "bad value for 'train.lr'",
             "distill.temperature=.inf": "bad value for 'distill.temperature'",
             "train.weight_decay=.inf": "bad value for 'train.weight_decay'",
             "stages=[{name: kd, model: student, method: kd, teacher: nobody}]": "not an earlier stage",
             "teacher.net.kind=resnet9": "does not match any of the expected tags",
             "teacher.net.widht=3": "unknown key 'teacher.net.widht'"}
    for pair, message in cases.items():
        r = cli(*SMOKE, "--set", pair)
        assert r.code == 2 and message in r.err, (pair, r.err)
        assert len(r.err.strip().splitlines()) == 1, r.err
    r = cli(*SMOKE, "--set", "profile=paper")
    assert r.code == 2 and "use --profile" in r.err
    r = cli(*SMOKE, "--compile", "fast")
    assert r.code == 2 and r.err.strip() == ("error: --compile 'fast': give one of off, default, reduce-overhead, "
                                             "max-autotune"), r.err
    assert not (home / "mlflow.db").exists()  # nothing ran, no RUNNING run left behind


def test_27_empty_profile_refused_and_arxiv_ids_read_as_text(cli):
    r = cli("run", "kd-hinton", "--profile", "")
    assert r.code == 2 and "--profile is empty" in r.err
    shown = cli("templates", "show", "kd-hinton", "--profile", "smoke", "--set", "paper=2101.00010").out
    assert "paper: '2101.00010'" in shown


def test_31_checkpoints_are_removed_after_their_stage(cli, home):
    assert cli(*SMOKE, "--epochs", "2").code == 0
    assert not list(home.glob("runs/**/*.ckpt")) and not list(home.glob("runs/**/*.weights.pt"))
    assert list(home.glob("runs/*/state.json"))


def test_22_a_full_disk_during_a_run_is_one_line_and_leaves_no_temporaries(sh, home):
    import subprocess
    import sys
    import time

    from disk import fill, small_disk

    with small_disk(home, "24m"):
        args = [*SMOKE, "--set", "train.epochs=20"]
        proc = subprocess.Popen([sys.executable, "-m", "paperlab", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        while proc.poll() is None and not list(home.glob("runs/*/*.ckpt")):
            time.sleep(0.02)
        fill(home / "filler")
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, err
        lines = [line for line in err.splitlines() if "epoch" not in line]
        assert lines == [lines[-1]] and "no space left on the disk" in lines[-1], err  # before: ~700 lines
        assert not [p for p in home.rglob("*") if p.name.endswith(".tmp")]
        (home / "filler").unlink()
        seen = sh("runs", "--json")  # the stage its process could not mark FAILED on a full disk
        assert seen.code == 0 and {r["status"] for r in seen.json()} <= {"FAILED", "KILLED"}, seen.out
        resumed = sh(*args, "--resume")
        assert resumed.code == 0, resumed.err


def test_25_killed_sweeps_are_reaped_and_resumed_under_their_parent(sh, home):
    import json
    import signal
    import subprocess
    import sys
    import time

    args = ["sweep", "kd-hinton", "--profile", "smoke", "--device", "cpu", "--grid", "distill.temperature=2,4",
            "--set", "train.epochs=4", "--json"]
    proc = subprocess.Popen([sys.executable, "-m", "paperlab", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def points_done() -> int:
        done = 0
        for state in home.glob("runs/*/state.json"):
            try:
                done += "kd" in json.loads(state.read_text())["stages"]
            except ValueError:
                pass
        return done

    while proc.poll() is None and points_done() < 1:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    seen = sh("runs", "--json")
    assert "now marked KILLED" in seen.err, seen.err
    parent = seen.json()[0]["parent_run_id"]
    finished_before = {r["run_id"] for r in seen.json() if r["status"] == "FINISHED"}
    assert finished_before and {r["status"] for r in seen.json()} <= {"FINISHED", "KILLED"}
    resumed = sh(*args, "--resume")
    assert resumed.code == 0, resumed.err
    assert resumed.json()["parent_run_id"] == parent  # under the killed sweep's parent, not a new one
    after = sh("runs", "--json").json()
    assert {r["parent_run_id"] for r in after} == {parent} and finished_before <= {r["run_id"] for r in after}
    from mlflow import MlflowClient

    from paperlab.settings import load

    assert MlflowClient(load().mlflow_uri).get_run(parent).info.status == "FINISHED"
