"""Values nobody should have set, each one line and a non-zero exit (or left out of a statistic), never a
traceback: class lists outside the data, a stage's own unknown train key, a heartbeat that is no number,
runs with a seed or metrics that are not numbers, claims of a template this machine lacks."""

import pytest

SMOKE = ["run", "kd-hinton", "--profile", "smoke", "--device", "cpu", "--epochs", "1"]


@pytest.mark.parametrize("key,value", [("shift_classes", "[-5]"), ("shift_classes", "[99]"),
                                       ("omit_classes", "[99]")])
def test_class_lists_outside_the_data_are_refused_before_training(cli, key, value):
    stages = ("[{name: teacher, model: teacher}, {name: student, model: student}, "
              f"{{name: kd, model: student, method: kd, teacher: teacher, {key}: {value}}}]")
    r = cli(*SMOKE, "--set", f"stages={stages}")
    assert r.code == 2 and f"{key} [{value.strip('[]')}] are not classes of digits (0 to 9)" in r.err
    assert "epoch" not in r.err  # nothing trained


def test_an_unknown_key_in_a_stage_s_own_train_names_its_path():
    from paperlab.errors import BadInput
    from paperlab.lab.templates import load

    with pytest.raises(BadInput, match=r"unknown key 'stages.1.train.epoch' \(valid keys: adam_beta1_after"):
        load("kd-hinton", "smoke", {"stages": [{"name": "teacher", "model": "teacher"},
                                               {"name": "student", "model": "student", "train": {"epoch": 3}}]})


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan"])
def test_a_bad_sweep_heartbeat_names_the_variable(cli, monkeypatch, value):
    pytest.importorskip("optuna")
    monkeypatch.setenv("PAPERLAB_SWEEP_HEARTBEAT", value)
    r = cli("sweep", "kd-hinton", "--profile", "smoke", "--grid", "distill.temperature=2", "--study", "s")
    assert r.code == 2 and "PAPERLAB_SWEEP_HEARTBEAT" in r.err and len(r.err.strip().splitlines()) == 1, r.err


def test_runs_with_a_seed_or_metric_that_is_no_number_are_left_out_of_compare(cli, home):
    from mlflow.tracking import MlflowClient

    r = cli(*SMOKE, "--json")
    assert r.code == 0, r.err
    stages = r.json()["stages"]
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    client.set_tag(stages[2]["run_id"], "paperlab.seed", "abc")
    client.log_metric(stages[1]["run_id"], "n_params", float("nan"))
    again = cli(*SMOKE, "--seed", "1", "--json")
    client.log_metric(again.json()["stages"][2]["run_id"], "test_acc", float("nan"))
    assert cli(*SMOKE, "--seed", "2").code == 0
    out = cli("compare", "-t", "kd-hinton", "-f", "md", "-o", str(home / "c.md"))
    assert out.code == 0, out.err
    row = next(line for line in (home / "c.md").read_text().splitlines() if "| kd-hinton (kd) |" in line)
    assert " (1) |" in row, row  # the one sound run of the three


def test_a_report_on_a_renamed_run_leaves_out_its_claims_not_the_report(cli, home):
    r = cli(*SMOKE, "--set", "name=my-kd", "--json")
    assert r.code == 0, r.err
    report = cli("report", "--paper", "1503.02531", "-f", "md", "-o", str(home / "r.md"))
    assert report.code == 0, report.err


@pytest.mark.parametrize("variable,url", [
    ("PAPERLAB_DB_URL", "postgresql://paperlab@127.0.0.1:9/lib?password=S3cretPw"),
    ("PAPERLAB_DB_URL", "postgresql://paperlab:S3cret/Pw@127.0.0.1:9/lib"),
    ("MLFLOW_TRACKING_URI", "http://alice:S3cretPw@127.0.0.1:9"),
    ("MLFLOW_TRACKING_URI", "postgresql://u:S3cretPw@127.0.0.1:9/mlflow")])
def test_no_password_is_printed(cli, monkeypatch, variable, url):
    """Issue 29, 3: passwords in a query string, with an unencoded '/', or in MLflow's URI were printed."""
    monkeypatch.setenv(variable, url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a dead port at once, not after MLflow's retries
    # (`runs` on MLflow's PostgreSQL store waits out SQLAlchemy's retries for ~100 s: init only there)
    for args in (["init"], ["runs"]) if url.startswith("http") else (["init"],):
        r = cli(*args)
        assert "S3cret" not in r.out + r.err, (args, r.out + r.err)


def test_a_sweep_s_command_tag_keeps_no_storage_password():
    """Issue 29, 4: the --storage URL, password included, was stored in every sweep run's command tag."""
    from paperlab.settings import redact

    command = "paperlab sweep kd-hinton --study s --storage postgresql://paperlab:S3cretPw@db/sweeps --seeds 2"
    assert redact(command) == "paperlab sweep kd-hinton --study s --storage postgresql://paperlab:***@db/sweeps --seeds 2"
