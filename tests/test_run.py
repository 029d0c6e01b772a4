"""`paperlab run` end to end on CPU, against a real SQLite MLflow store read back through MLflow's API."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow_server import MlflowServer

SMOKE = ["run", "kd-hinton", "--profile", "smoke", "--device", "cpu", "--json"]


def _client(home):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")


def test_smoke_run_end_to_end_is_tracked(cli, home):
    cli("add", "1503.02531")
    r = cli(*SMOKE, "--epochs", "12")  # the tracking end to end; the profile's numbers are README's
    assert r.code == 0, r.err
    out = r.json()
    assert [s["stage"] for s in out["stages"]] == ["teacher", "student", "kd"]
    assert all(0 <= s["test_error"] <= 500 for s in out["stages"])
    assert out["stages"][1]["test_error"] < 250  # a trained student beats chance (450 of 500) by far
    client = _client(home)
    parent = client.get_run(out["parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["paperlab.template"] == "kd-hinton"
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{out['parent_run_id']}'")
    assert sorted(c.data.tags["paperlab.stage"] for c in children) == ["kd", "student", "teacher"]
    kd = client.get_run(out["stages"][2]["run_id"])
    assert kd.data.params["distill.temperature"] == "4.0" and kd.data.params["train.epochs"] == "12"
    assert kd.data.metrics["test_error"] == out["stages"][2]["test_error"]
    for tag in ("paperlab.paper", "paperlab.profile", "paperlab.version", "paperlab.git_commit", "paperlab.torch",
                "paperlab.device", "paperlab.dataset_sha256"):
        assert kd.data.tags[tag], tag
    history = client.get_metric_history(kd.info.run_id, "val_error")
    assert [m.step for m in history] == list(range(1, 13))
    seconds = client.get_metric_history(kd.info.run_id, "epoch_seconds")
    assert kd.data.metrics["train_seconds"] == pytest.approx(sum(m.value for m in seconds))
    assert {"train_loss", "val_acc", "lr", "epoch_seconds", "samples_per_s", "loss_soft", "loss_hard",
            "test_acc", "test_error_last", "best_epoch"} <= set(kd.data.metrics)
    names = {a.path for a in client.list_artifacts(kd.info.run_id)}
    assert {"resolved.yaml", "weights.pt", "confusion_matrix.csv", "confusion_matrix.png", "misclassified.csv",
            "misclassified.png", "test_logits.npz"} <= names
    folder = Path(client.download_artifacts(kd.info.run_id, ""))
    state = torch.load(folder / "weights.pt", weights_only=True)
    assert state["layers.1.weight"].shape == (256, 64)
    matrix = np.loadtxt(folder / "confusion_matrix.csv", delimiter=",", skiprows=1)
    assert matrix.sum() == 500 and 500 - np.trace(matrix) == out["stages"][2]["test_error"]
    assert (folder / "misclassified.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = cli("runs", "--template", "kd-hinton", "--json").json()
    assert {r["run_id"] for r in runs} == {s["run_id"] for s in out["stages"]}
    assert cli("runs", "--paper", "1503.02531", "--json").json() == runs
    # the templates whose paper it is, run or not, and those linked by hand (a run links its template)
    assert cli("show", "1503.02531", "--json").json()["templates"] == ["ensemble-kd", "kd-cifar", "kd-hinton",
                                                                      "kd-hinton-omit3"]


def test_teacher_is_cached_and_runs_are_deterministic(cli):
    short = [*SMOKE, "--epochs", "20"]   # the cache and determinism, not the profile's numbers
    first = cli(*short).json()["stages"]
    second = cli(*short).json()["stages"]
    assert [s["reused"] for s in second] == [True, True, False]  # teacher and baseline: cached
    assert [s["test_error"] for s in second] == [s["test_error"] for s in first]
    # the cache holds the best epoch's weights; a reused stage still reports the last epoch it recorded (the
    # teacher's differ here)
    assert first[0]["test_error_last"] != first[0]["test_error"]
    assert [s["test_error_last"] for s in second] == [s["test_error_last"] for s in first]
    retrained = cli(*short, "--retrain").json()["stages"]
    assert [s["reused"] for s in retrained] == [False, False, False]
    assert [s["test_error"] for s in retrained] == [s["test_error"] for s in first]
    other = cli(*short, "--set", "distill.temperature=8").json()["stages"]
    assert other[0]["reused"] is True and other[1]["test_error"] == first[1]["test_error"]


def test_resume_after_kill_9_ends_with_the_same_numbers(sh, home, tmp_path):
    args = [*SMOKE, "--set", "train.epochs=10", "--set", "teacher.jitter=1", "--retrain-teacher"]
    reference = sh(*args, env={"PAPERLAB_HOME": str(tmp_path / "reference")})
    assert reference.code == 0, reference.err
    proc = subprocess.Popen([sys.executable, "-m", "paperlab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=os.environ.copy())
    deadline = time.time() + 120
    while time.time() < deadline and not list(home.glob("runs/*/student.ckpt")):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert list(home.glob("runs/*/student.ckpt"))
    # as if begun before the key left out the claims and the estimate: --resume still finds the folder
    # and moves it to its new name
    from paperlab.lab import data
    from paperlab.lab.rundir import folder_names as run_folder_names
    from paperlab.lab.templates import load, parse_sets

    spec = load("kd-hinton", "smoke", parse_sets(["train.epochs=10", "teacher.jitter=1"]))
    name, legacy = run_folder_names(spec, data.load("digits", None, tmp_path / "data").checksum, "cpu")
    (home / "runs" / name).rename(home / "runs" / legacy)
    resumed = sh(*args, "--resume")
    assert resumed.code == 0, resumed.err
    assert "student  epoch   1/10" not in resumed.err  # it continued, not started over
    assert (home / "runs" / name).is_dir() and not (home / "runs" / legacy).exists()  # moved to its new key
    assert ([s["test_error"] for s in resumed.json()["stages"]]
            == [s["test_error"] for s in reference.json()["stages"]])
    # the student's training time counts the epochs of both processes, each once (its newest logged time)
    client, student = _client(home), resumed.json()["stages"][1]["run_id"]
    from paperlab.lab.tracking import Tracker
    from paperlab.settings import load as settings

    per_epoch = dict(Tracker(settings()).history(student, "epoch_seconds"))  # each epoch once, its newest time
    assert sorted(per_epoch) == list(range(1, 11))
    assert len(client.get_metric_history(student, "epoch_seconds")) >= 10
    metrics = client.get_run(student).data.metrics
    assert metrics["train_seconds"] == pytest.approx(sum(per_epoch.values()))
    assert metrics["wall_seconds"] >= metrics["train_seconds"]  # the wall counts the killed process's epochs


def test_the_run_key_is_the_recipe_not_its_description():
    """Citing a claim, renaming or re-estimating a template keeps an interrupted run resumable; a recipe
    change does not."""
    from paperlab.lab.templates import load, recipe_yaml

    plain = recipe_yaml(load("kd-hinton", "smoke"))
    described = load("kd-hinton", "smoke", {"title": "another", "estimate_minutes": {"cpu": 9},
                                            "claims": [{"stage": "kd", "value": 1, "tolerance": 1, "dataset": "x"}]})
    assert recipe_yaml(described) == plain
    assert recipe_yaml(load("kd-hinton", "smoke", {"train.epochs": 7})) != plain


def test_bad_overrides_and_template_names(cli):
    r = cli("run", "kd-hinton", "--profile", "smoke", "--set", "distill.temprature=4")
    assert r.code == 2 and "did you mean 'distill.temperature'" in r.err
    assert "valid keys: alpha, ce_weight, kd_weight, standardize, temperature" in r.err
    r = cli("run", "kd-hinton", "--profile", "smoke", "--set", "distill.alpha=1.5")
    assert r.code == 2 and "bad value for 'distill.alpha'" in r.err
    r = cli("run", "kd-hinton", "--profile", "smoke", "--set", "temperature")
    assert r.code == 2 and "--set takes key=value" in r.err
    r = cli("run", "kd-hintn")
    assert r.code == 2 and "did you mean 'kd-hinton'" in r.err
    r = cli("run", "kd-hinton", "--profile", "huge")
    assert r.code == 2 and "no profile 'huge'" in r.err
    r = cli("run", "kd-hinton", "--profile", "smoke", "--dataset", "svhn")
    assert r.code == 2 and "unknown dataset 'svhn'" in r.err
    r = cli("run", "kd-hinton", "--profile", "smoke", "--device", "tpu")
    assert r.code == 2
    assert "kd-hinton" in cli("templates").out
    shown = cli("templates", "show", "kd-hinton", "--profile", "smoke", "--set", "distill.temperature=4").out
    assert "temperature: 4" in shown and "dataset: digits" in shown
    # profiles joined by '+' merge in order: the fast recipe with the 7-and-8-only transfer set
    shown = cli("templates", "show", "kd-hinton-omit3", "--profile", "fast+only-7-8").out
    assert "name: kd78" in shown and "epochs: 120" in shown and "name: student" not in shown
    r = cli("run", "kd-hinton-omit3", "--profile", "fast+only-7+8")
    assert r.code == 2 and "no profile 'only-7'" in r.err and "join several with '+'" in r.err


def test_a_diverging_loss_stops_with_a_clear_error(cli):
    r = cli(*SMOKE, "--retrain-teacher", "--set", "train.optimizer=sgd", "--set", "train.lr=1e12")
    assert r.code == 1
    assert "the training loss became" in r.err and "lower train.lr" in r.err
    assert len(r.err.strip().splitlines()[-1:]) == 1


def test_missing_dataset_offline(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("PAPERLAB_DATA_MIRRORS", "http://127.0.0.1:9/")
    r = cli("run", "kd-hinton", "--profile", "smoke", "--dataset", "mnist")
    assert r.code == 1
    line = r.err.strip().splitlines()[-1]
    assert line.startswith("error: mnist is not on this machine") and "--data-dir" in line
    r = cli("run", "kd-hinton", "--profile", "smoke", "--dataset", "mnist", "--data-dir", str(tmp_path))
    assert r.code == 2 and "lacks train-images-idx3-ubyte" in r.err
    r = cli("run", "kd-hinton")  # the paper profile says how long it takes, then needs MNIST
    assert r.code == 1 and "profile paper" in r.err and "--profile quick" in r.err


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as out:
        out.write(header + array.astype(np.uint8).tobytes())


def test_digits_read_from_scikit_learn_s_file_are_load_digits(tmp_path):
    """The bundled digits are read from the file scikit-learn ships, without importing it: the same images,
    labels, split and checksum as `load_digits` (the checksum keys cached teachers)."""
    from sklearn.datasets import load_digits

    from paperlab.lab.data import _checksum, load

    ours = load("digits", None, tmp_path)
    bunch = load_digits()
    x, y = (bunch.images / 16.0).astype(np.float32)[:, None], bunch.target.astype(np.int64)
    assert np.array_equal(np.concatenate([ours.x_train, ours.x_test]), x)
    assert np.array_equal(np.concatenate([ours.y_train, ours.y_test]), y) and len(ours.y_test) == 500
    assert ours.checksum == _checksum(x, y)


def test_idx_files_from_a_data_dir(cli, tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "idx"
    folder.mkdir()
    labels = rng.integers(0, 10, 700)
    images = np.zeros((700, 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):  # a bright bar whose row is the label: learnable
        images[i, 2 + 2 * label: 4 + 2 * label, 4:24] = 255
    _write_idx(folder / "train-images-idx3-ubyte.gz", images[:600])
    _write_idx(folder / "train-labels-idx1-ubyte.gz", labels[:600])
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", images[600:])
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels[600:])
    r = cli("run", "kd-hinton", "--profile", "smoke", "--dataset", "mnist", "--data-dir", str(folder), "--json",
            "--stage", "student", "--set", "train.val_size=100", "--epochs", "5")
    assert r.code == 0, r.err
    assert r.json()["stages"][0]["test_error"] <= 10  # of 100
    # the report finds the images where the run read them (its MLflow dataset input), not only in the cache
    from paperlab.reports.collect import collect
    from paperlab.settings import load

    assert collect(load(), template="kd-hinton").images.shape == (100, 1, 28, 28)
    assert cli("report", "--template", "kd-hinton", "-f", "md", "-o", str(tmp_path / "r.md")).code == 0
    assert "not on this machine" not in (tmp_path / "r.md").read_text()
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x64" + b"\x01"))
    r = cli("run", "kd-hinton", "--profile", "smoke", "--dataset", "mnist", "--data-dir", str(folder))
    assert r.code == 1 and "is truncated" in r.err
    assert cli("report", "--template", "kd-hinton", "-f", "md", "-o", str(tmp_path / "r.md")).code == 0
    assert "The mnist images these runs used are not on this machine" in (tmp_path / "r.md").read_text()


@pytest.mark.slow
def _backend_store(request, tmp_path) -> str:
    """The tracking server's backend store: a fresh PostgreSQL database (a team's set-up) where the tests
    have a server, else an SQLite file."""
    try:
        return request.getfixturevalue("pg_url")
    except pytest.skip.Exception:
        return f"sqlite:///{tmp_path / 'server.db'}"


def test_smoke_run_against_a_real_mlflow_server(cli, tmp_path, monkeypatch, request):
    monkeypatch.setenv("PAPERLAB_REGISTER", "1")
    server = MlflowServer(_backend_store(request, tmp_path), tmp_path / "server-artifacts").start()
    try:
        url = server.url
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        r = cli(*SMOKE, "--stage", "student", "--epochs", "3")
        assert r.code == 0, r.err
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=url)
        run = client.get_run(r.json()["stages"][0]["run_id"])
        assert run.data.tags["paperlab.stage"] == "student"
        assert len(client.get_metric_history(run.info.run_id, "val_error")) == 3
        assert "weights.pt" in {a.path for a in client.list_artifacts(run.info.run_id)}
        # a teacher trained on one machine is pulled from the server's model registry by another
        teacher = cli(*SMOKE, "--stage", "teacher", "--epochs", "3").json()["stages"][0]
        monkeypatch.setenv("PAPERLAB_HOME", str(tmp_path / "second-machine"))
        listed = cli("teachers", "list", "--json").json()
        assert [(t["name"], t["version"], t["test_error"]) for t in listed] == [
            ("kd-hinton.teacher.cnn.digits", 1, str(teacher["test_error"]))]
        pulled = cli("teachers", "pull", "kd-hinton.teacher.cnn.digits")
        assert pulled.code == 0 and (tmp_path / "second-machine" / "cache" / "teachers").is_dir(), pulled.err
        again = cli(*SMOKE, "--stage", "teacher", "--epochs", "3").json()["stages"][0]
        assert again["reused"] is True and again["test_error"] == teacher["test_error"]
        assert cli("teachers", "pull", "nobody.teacher.cnn.digits").code == 2
        # a tag is anyone's data: a cache key that leaves the cache, or weights of another shape under a good key
        cached = next((tmp_path / "second-machine" / "cache" / "teachers").glob("*.pt"))
        good = cached.read_bytes()
        client.set_model_version_tag("kd-hinton.teacher.cnn.digits", "1", "paperlab.cache_key", "../../../escape.pt")
        r = cli("teachers", "pull", "kd-hinton.teacher.cnn.digits")
        assert r.code == 1 and "not a key paperlab writes" in r.err and len(r.err.strip().splitlines()) == 1
        assert not list(tmp_path.rglob("escape.pt"))
        client.set_model_version_tag("kd-hinton.teacher.cnn.digits", "1", "paperlab.cache_key", cached.name)
        other = cli(*SMOKE, "--stage", "teacher", "--epochs", "1", "--set", "teacher.net.channels=[8,16,32]")
        assert other.code == 0, other.err   # version 2: a narrower net, re-tagged with version 1's key
        client.set_model_version_tag("kd-hinton.teacher.cnn.digits", "2", "paperlab.cache_key", cached.name)
        r = cli("teachers", "pull", "kd-hinton.teacher.cnn.digits")
        assert r.code == 1 and "the cached teacher is left as it was" in r.err and cached.read_bytes() == good
        import mlflow

        mlflow.set_tracking_uri(url)
        model = mlflow.pyfunc.load_model("models:/kd-hinton.teacher.cnn.digits/1")  # a pyfunc, with a signature
        assert model.metadata.signature is not None
        from sklearn.datasets import load_digits

        images = (load_digits().images[:5] / 16.0).astype("float32")[:, None]
        assert model.predict(images).shape == (5, 10)
        # the second machine lists and reports the first one's runs from the server
        seen = cli("runs", "--template", "kd-hinton", "--json").json()
        assert {r["run_id"] for r in seen} >= {run.info.run_id, teacher["run_id"]}
        page = tmp_path / "report.md"
        made = cli("report", "--template", "kd-hinton", "-f", "md", "-o", str(page))
        assert made.code == 0 and "kd-hinton" in page.read_text(), made.err
    finally:
        server.stop()


def test_a_tracking_server_that_goes_down_mid_run_stops_it_with_one_line_and_resume_finishes(
        home, tmp_path, monkeypatch, request):
    """Chosen behaviour: the run stops (metrics are not buffered in memory, where a crash would lose them);
    the epoch whose metrics could not be sent is not checkpointed, so --resume redoes it and the history on
    the server has every epoch once."""
    from mlflow.tracking import MlflowClient

    server = MlflowServer(_backend_store(request, tmp_path), tmp_path / "server-artifacts").start()
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.url, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"}
    command = [sys.executable, "-m", "paperlab", *SMOKE, "--stage", "student", "--epochs", "40"]
    try:
        run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen = []
        for line in run.stderr:
            seen.append(line)
            if "epoch   3/40" in line:
                server.stop()
                break
        out, rest = run.communicate(timeout=120)
        err = "".join(seen) + rest
        assert run.returncode == 1, err
        last = err.strip().splitlines()[-1]
        assert last.startswith("error: the MLflow tracking server at") and "--resume" in last, err
        assert "Traceback" not in err
        server.start()
        resumed = subprocess.run([*command, "--resume", "--json"], env=env, capture_output=True, text=True,
                                 timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        stage = json.loads(resumed.stdout)["stages"][0]
        client = MlflowClient(tracking_uri=server.url)
        assert client.get_run(stage["run_id"]).info.status == "FINISHED"
        steps = sorted(m.step for m in client.get_metric_history(stage["run_id"], "val_error"))
        assert steps == list(range(1, 41)), steps[:20]
    finally:
        server.stop()


def test_sweep_runs_a_grid_under_one_parent_training_the_teacher_once(cli, home):
    r = cli("sweep", "kd-hinton", "--profile", "smoke", "--device", "cpu", "--grid", "distill.temperature=1,8",
            "--grid", "distill.alpha=0.5,0.9", "--seeds", "2", "--set", "train.epochs=3", "--json")
    assert r.code == 0, r.err
    out = r.json()
    assert len(out["points"]) == 8
    stages = [s["stage"] for p in out["points"] for s in p["stages"]]
    assert stages.count("teacher") == 2 and stages.count("student") == 2 and stages.count("kd") == 8  # per seed
    client = _client(home)
    parent = client.get_run(out["parent_run_id"])
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{out['parent_run_id']}'")
    assert len(children) == 12 and parent.info.status == "FINISHED"
    points = {c.data.tags["paperlab.sweep_point"] for c in children if c.data.tags["paperlab.stage"] == "kd"}
    assert "distill.temperature=8,distill.alpha=0.5,seed=1" in points and len(points) == 8
    assert cli("sweep", "kd-hinton", "--profile", "smoke", "--grid", "distill.temperature").code == 2
    assert cli("sweep", "kd-hinton", "--profile", "smoke", "--grid", "distill.temprature=1,2").code == 2


def test_a_batched_sweep_trains_its_points_as_one_model_with_the_plain_sweeps_numbers(cli, home, monkeypatch,
                                                                                      tmp_path):
    """--batched: the MLP student and its kd stages of 2 temperatures x 2 seeds trained as one batched model
    (the CNN teacher, with batch norm, on its own); every stage's test errors equal the plain sweep's, and
    every point keeps its own child runs."""
    args = ["sweep", "kd-hinton", "--profile", "smoke", "--device", "cpu", "--grid", "distill.temperature=2,8",
            "--seeds", "2", "--set", "train.epochs=4", "--json"]
    plain = cli(*args)
    assert plain.code == 0, plain.err
    monkeypatch.setenv("PAPERLAB_HOME", str(tmp_path / "batched"))
    batched = cli(*args, "--batched")
    assert batched.code == 0, batched.err
    errors = lambda r: [(p["overrides"], p["seed"], [(s["stage"], s["test_error"]) for s in p["stages"]])  # noqa: E731
                        for p in r.json()["points"]]
    assert errors(batched) == errors(plain)
    client = _client(tmp_path / "batched")
    parent = batched.json()["parent_run_id"]
    children = client.search_runs([client.get_run(parent).info.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{parent}'")
    assert sorted(c.data.tags["paperlab.stage"] for c in children) == ["kd"] * 4 + ["student"] * 2 + ["teacher"] * 2
    kd = [c for c in children if c.data.tags["paperlab.stage"] == "kd"]
    assert all(len(client.get_metric_history(c.info.run_id, "val_error")) == 4 for c in kd)
    assert {c.data.tags["paperlab.stage"]: c.data.tags.get("paperlab.batched_copies") for c in children} == {
        "kd": "4", "student": "2", "teacher": None}  # the teacher has batch norm: trained on its own
    assert cli(*args, "--batched", "--study", "x").code == 2


@pytest.mark.slow
def test_ui_serves_the_runs_table_with_stages_and_datasets(cli, home, tmp_path):
    import re
    import shutil
    import socket
    import urllib.request

    from mlflow import MlflowClient

    from paperlab.settings import load

    assert cli(*SMOKE, "--epochs", "1").code == 0
    assert "MLFLOW_TRACKING_URI" not in os.environ  # registering models did not leak MLflow's global URI
    experiment = MlflowClient(load().mlflow_uri).get_experiment_by_name("kd-hinton")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the runs table, not GenAI's
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "paperlab", "ui", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        body = b""
        for _ in range(240):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
                break
            except OSError:
                time.sleep(0.25)
        assert b"<html" in body.lower()
        assert (home / "mlflow.db").exists()  # the same store paperlab run writes to
        printed = [proc.stderr.readline() for _ in range(2)]
        url = f"http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}/runs?viewStateShareKey=paperlab"
        assert printed[1].split() == ["kd-hinton", url], printed
        if shutil.which("chromium"):  # the stages with test_error as a column and their dataset (an MLflow input)
            dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                  f"--user-data-dir={tmp_path / 'profile'}", "--window-size=2400,1000",
                                  "--virtual-time-budget=20000", "--dump-dom", url],
                                 capture_output=True, text=True, timeout=120).stdout
            text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<style[^<]*</style>", "", dom)))
            table = text[text.index("Run Name"):]
            header = table[:table.index("Hide run")]
            assert "test_error" in header and "Dataset" in header, header
            assert all(f" {stage} " in table for stage in ("kd", "student", "teacher")) and table.count("digits (") >= 3
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_an_unreachable_tracking_server_is_one_clear_line(cli, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    for args in (SMOKE, ["runs"], ["report", "--template", "kd-hinton"]):
        r = cli(*args)
        assert r.code == 1, args
        assert r.err.strip().splitlines()[-1] == ("error: cannot reach the MLflow tracking server at "
                                                  "http://127.0.0.1:9 (is it running? MLFLOW_TRACKING_URI sets it)")


def test_a_resumed_run_logs_its_params_again_without_changing_one(home):
    """MLflow refuses to change a logged param. A stage reopened by --resume logs its recipe again; params it
    holds already are left as they are (runs before 2026-11-29 logged the time estimate, since corrected in
    kd-hinton's template: its paper run failed to resume), new ones are added; the recipe params leave out
    the title, the claims and the estimate."""
    from paperlab.lab.evaluate import flat_params as _flat
    from paperlab.lab.templates import load
    from paperlab.lab.tracking import Tracker
    from paperlab.settings import load as settings

    tracker = Tracker(settings())
    run_id = tracker.start(tracker.experiment("resume-params"), "teacher", {})
    tracker.params(run_id, {"train.lr": "1.0", "estimate_minutes.cpu": "570.0"})
    tracker.params(run_id, {"train.lr": "1.0", "estimate_minutes.cpu": "1750.0", "train.epochs": "3000"})
    held = tracker.client.get_run(run_id).data.params
    assert held == {"train.lr": "1.0", "estimate_minutes.cpu": "570.0", "train.epochs": "3000"}
    # an epoch logged by a killed run and again by the resumed one: the curves take each step once, the newest
    for step, value in ((1, 90.0), (2, 80.0), (2, 70.0), (3, 60.0)):
        tracker.metrics(run_id, {"val_error": value}, step=step)
        time.sleep(0.01)
    assert tracker.history(run_id, "val_error") == [(1, 90.0), (2, 70.0), (3, 60.0)]
    flat = _flat(load("kd-hinton", "paper", {}))
    assert "train.lr" in flat and not any(k.startswith(("estimate_minutes", "title", "claims")) for k in flat)


def test_pulling_a_teacher_that_was_never_cached_is_one_line(cli, monkeypatch):
    """A teacher stage trained with `cache: false` is registered without a cache key: `teachers pull` says so
    by name instead of failing on the cache folder itself."""
    monkeypatch.setenv("PAPERLAB_REGISTER", "1")
    r = cli(*SMOKE, "--epochs", "1", "--set", "stages=[{name: teacher, model: teacher, cache: false}]")
    assert r.code == 0, r.err
    pulled = cli("teachers", "pull", "kd-hinton.teacher.cnn.digits")
    assert pulled.code == 2 and "was not cached when it was trained" in pulled.err
    assert len(pulled.err.strip().splitlines()) == 1


def test_teachers_pull_from_the_local_store_works_and_writes_nothing_here(cli, home, tmp_path, monkeypatch):
    """Issue 29, 9: with the default local store `pull` asked MLflow's default registry (./mlflow.db of the
    current folder) for `models:/...`: the teacher `teachers list` showed was not found, and a 1 MB
    mlflow.db appeared wherever the command ran."""
    monkeypatch.setenv("PAPERLAB_REGISTER", "1")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli(*SMOKE, "--stage", "teacher", "--epochs", "1").code == 0
    cached = next((home / "cache" / "teachers").glob("*.pt"))
    kept = cached.read_bytes()
    cached.unlink()
    r = cli("teachers", "pull", "kd-hinton.teacher.cnn.digits")
    assert r.code == 0, r.err
    assert cached.read_bytes() == kept and not list(elsewhere.iterdir())


def test_a_registered_model_with_a_quote_in_its_name_breaks_no_listing(cli, home, monkeypatch):
    """Issue 29, 10: a model named o'brien.teacher.cnn.digits made `teachers list` and every pull fail."""
    monkeypatch.setenv("PAPERLAB_REGISTER", "1")
    assert cli(*SMOKE, "--stage", "teacher", "--epochs", "1").code == 0
    client = _client(home)
    client.create_registered_model("o'brien.teacher.cnn.digits", tags={"paperlab.role": "teacher"})
    listed = cli("teachers", "list", "--json")
    assert listed.code == 0, listed.err
    assert "kd-hinton.teacher.cnn.digits" in {t["name"] for t in listed.json()}
