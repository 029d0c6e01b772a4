"""The lab for many methods: nets at their published sizes, CIFAR in the official layout, every template's
smoke run (deterministic), each CIFAR template on a synthetic CIFAR-100 with the paper recipe, and an exact
resume after kill -9 in a method stage with trainable parts."""

import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch

from fake_cifar import make as make_cifar

METHOD_TEMPLATES = ["kd-cifar", "fitnet", "at", "dkd", "crd"]
PUBLISHED = {"resnet8x4": 1_233_540, "resnet32x4": 7_433_860, "wrn_40_2": 2_255_156, "wrn_16_2": 703_284,
             "wrn_40_1": 569_780, "resnet56": 861_620, "resnet20": 278_324, "resnet32": 472_756,
             "resnet110": 1_736_564, "vgg13": 9_462_180, "vgg8": 3_965_028,
             "resnet18": 11_220_132}  # BYOT's CIFAR ResNet18: 11.22 M in mmrazor's table (configs/distill/mmcls/byot)
# mean teacher's ConvNet (BN in place of weight norm + mean-only BN), summed by hand: convolutions
# 3*128*9 + 2*128*128*9 + 128*256*9 + 2*256*256*9 + 256*512*9 + 512*256 + 256*128 = 3,116,416, BN scales and
# shifts 2 * (3*128 + 3*256 + 512 + 256 + 128) = 4,096, the classifier 128*10 + 10
CONVNET13 = 3_116_416 + 4_096 + 1_290


def test_cifar_nets_have_the_published_parameter_counts_and_features():
    from paperlab.lab.nets import build, n_params
    from paperlab.lab.spec import CifarNetSpec

    for kind, count in PUBLISHED.items():
        net = build(CifarNetSpec(kind=kind), (3, 32, 32), 100)
        assert n_params(net) == count, kind
    out = build(CifarNetSpec(kind="resnet8x4"), (3, 32, 32), 100)(torch.zeros(2, 3, 32, 32), features=True)
    assert [tuple(f.shape[1:]) for f in out.feats] == [(32, 32, 32), (64, 32, 32), (128, 16, 16), (256, 8, 8)]
    assert out.pooled.shape == (2, 256) and out.logits.shape == (2, 100) and len(out.preact) == 4
    assert bool((out.feats[-1] >= 0).all())
    convnet = build(CifarNetSpec(kind="convnet13"), (3, 32, 32), 10)
    out = convnet(torch.zeros(2, 3, 32, 32), features=True)
    assert n_params(convnet) == CONVNET13 and out.logits.shape == (2, 10)
    assert [tuple(f.shape[1:]) for f in out.feats] == [(128, 32, 32), (256, 16, 16), (128, 6, 6)]


def test_templates_list_their_paper_method_dataset_and_pairs(cli):
    rows = {r["name"]: r for r in cli("templates", "--json").json()}
    assert set(METHOD_TEMPLATES) | {"kd-hinton"} <= set(rows)
    assert rows["crd"]["paper"] == "1910.10699" and rows["crd"]["method"] == "crd"
    assert rows["dkd"]["dataset"] == "cifar100" and rows["dkd"]["pairs"][0] == "resnet32x4/resnet8x4"
    assert "wrn_40_2/wrn_16_2" in rows["fitnet"]["pairs"]
    assert rows["byot"]["pairs"][0] == "none/resnet18" and "crd" in rows["byot"]["profiles"]  # its paper's net


def test_every_method_template_smoke_run_passes_and_is_deterministic(cli, home):
    for name in METHOD_TEMPLATES:
        first = cli("run", name, "--profile", "smoke", "--epochs", "6", "--device", "cpu", "--json")
        assert first.code == 0, (name, first.err)
        stages = first.json()["stages"]
        assert [s["stage"] for s in stages] == ["teacher", "student", name.split("-")[0]]
        assert all(s["test_error"] < 450 for s in stages)  # of 500; chance is 450
    # twice for the method with the most randomness (negative sampling, a memory bank, connectors)
    second = cli("run", "crd", "--profile", "smoke", "--epochs", "6", "--device", "cpu", "--json").json()["stages"]
    assert [s["test_error"] for s in second] == [s["test_error"] for s in stages]
    assert second[2]["reused"] is False and second[0]["reused"] is True
    teachers = list((home / "cache" / "teachers").glob("*.pt"))
    assert len(teachers) == 2  # five templates on one pair: one teacher and one baseline student
    assert not list(home.glob("runs/*/*.ckpt"))  # checkpoints go once their stage is done


@pytest.mark.slow
def test_each_cifar_template_runs_the_paper_recipe_on_a_synthetic_cifar100(cli, home, tmp_path):
    from mlflow.tracking import MlflowClient

    data = make_cifar(tmp_path / "cifar", n_train=100, n_test=40)
    args = ["--profile", "paper", "--device", "cpu", "--data-dir", str(data), "--json",
            "--set", "train.epochs=1", "--set", "train.val_size=60"]
    r = cli("run", "crd", *args)
    assert r.code == 2 and "lower distill.nce_k" in r.err  # 16,384 negatives need a real CIFAR-100
    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    for name in ("kd-cifar",):  # logits (CI time: crd's bank, fitnet's connector, at and
        extra = ["--set", "distill.nce_k=32"] if name == "crd" else []  # dkd run in the smoke test above)
        r = cli("run", name, *args, *extra)
        assert r.code == 0, (name, r.err)
        assert "is not the official cifar100 release (100 training and 40 test images)" in r.err
        stages = r.json()["stages"]
        assert [s["n_params"] for s in stages] == [7_433_860, 1_233_540, 1_233_540]
        run = client.get_run(stages[2]["run_id"])
        assert run.data.metrics["n_params"] == 1_233_540
        assert run.data.tags["paperlab.taught_by"] == "teacher" and run.data.tags["paperlab.net"] == "resnet8x4"
        assert run.data.params["train.schedule"] == "multistep" and run.data.params["student.crop"] == "4"
        assert "test_acc_last" in run.data.metrics
        assert "train.epochs=1" in run.data.tags["paperlab.changed"]
        assert "not the official cifar100 release" in run.data.tags["paperlab.data_note"]
    assert len(list((home / "cache" / "teachers").glob("*.pt"))) == 2
    # a synthetic copy and a shortened recipe: no verdict against the paper's numbers, and the report says why
    out = tmp_path / "kd.md"
    r = cli("report", "--template", "kd-cifar", "--format", "md", "-o", str(out))
    assert r.code == 0, r.err
    text = out.read_text()
    assert "not comparable: ours on other data" in text and "| reproduced |" not in text
    assert "not reproduced" not in text and "| close |" not in text
    # a listed pair runs as the template's recipe for it: mdistiller's beta 6, and that pair's claim row
    r = cli("run", "dkd", *args, "--pair", "wrn_40_2/wrn_16_2")
    assert r.code == 0, r.err
    run = client.get_run(r.json()["stages"][2]["run_id"])
    assert run.data.params["distill.beta"] == "6.0" and run.data.tags["paperlab.net"] == "wrn_16_2"
    assert run.data.tags["paperlab.changed"] == "train.epochs=1, train.val_size=60"  # not the pair's settings
    r = cli("report", "--template", "dkd", "--format", "md", "-o", str(out))
    assert r.code == 0, r.err
    row = next(line for line in out.read_text().splitlines() if "76.23" in line)
    assert "not comparable: ours on other data" in row


def test_a_run_that_departs_from_its_profile_says_where():
    from paperlab.lab.templates import changed_from_profile, load
    from paperlab.reports.claims import incomparable

    assert changed_from_profile(load("kd-cifar", "quick")) == []
    assert changed_from_profile(load("kd-cifar", "quick", {"seed": 3})) == []  # seeds are repeats, not changes
    assert changed_from_profile(load("kd-cifar", "quick", {"train.epochs": 3, "distill.temperature": 2})) == \
        ["distill.temperature=2", "train.epochs=3"]
    assert changed_from_profile(load("kd-cifar", "quick", {"name": "mine"})) == ["name"]
    assert changed_from_profile(load("kd-cifar", "quick").model_copy(update={"method": "dkd"})) == ["method=dkd"]
    assert incomparable({}) is None
    assert incomparable({"paperlab.changed": "train.epochs=3"}) == "ours with the recipe changed (train.epochs=3)"
    assert incomparable({"paperlab.data_note": "a copy"}) == "ours on other data (a copy)"



def test_a_rule_across_settings_is_one_plain_line():
    from paperlab.errors import BadInput
    from paperlab.lab.templates import load

    with pytest.raises(BadInput) as exc:
        load("kd-cifar", "smoke", {"whiten": "gcn-zca"})
    assert str(exc.value) == ("bad settings in 'the template': normalize and whiten are two ways to prepare the "
                              "inputs; set one of them")
    with pytest.raises(BadInput) as exc:
        load("kd-cifar", "smoke", {"train.schedule": "ramps", "train.warmup_epochs": 5, "train.rampdown_epochs": 36})
    assert str(exc.value) == "bad settings in 'train': warm-up (5) and ramp-down (36) epochs exceed the 40 epochs"


def test_cifar_pickles_are_read_without_running_code(cli, tmp_path):
    data = make_cifar(tmp_path / "cifar", n_train=120, n_test=20)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (data / "cifar-100-python" / "test").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    r = cli("run", "kd-cifar", "--profile", "paper", "--device", "cpu", "--data-dir", str(data))
    assert r.code == 1 and "is not a CIFAR batch (refused to build posix.system)" in r.err
    assert not marker.exists()
    r = cli("run", "kd-cifar", "--profile", "paper", "--data-dir", str(tmp_path))
    assert r.code == 2 and "does not hold cifar-100-python/" in r.err


def test_paper_profile_without_cifar_or_network_says_how_to_get_it(cli, monkeypatch):
    monkeypatch.setenv("PAPERLAB_DATA_MIRRORS", "http://127.0.0.1:9/")
    r = cli("run", "fitnet", "--profile", "paper", "--device", "cpu")
    assert r.code == 1
    line = r.err.strip().splitlines()[-1]
    assert line.startswith("error: cifar100 is not on this machine and could not be downloaded")
    assert "cifar-100-python.tar.gz" in line and "--data-dir" in line


def _kill_9_once_saved(args: list[str], home, checkpoint: str) -> int:
    """Start `paperlab ARGS`, kill -9 it half a second after its first checkpoint appears; the exit code."""
    proc = subprocess.Popen([sys.executable, "-m", "paperlab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=os.environ.copy())
    deadline = time.time() + 240
    while time.time() < deadline and not list(home.glob(checkpoint)):
        time.sleep(0.02)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc.returncode


def test_resume_after_kill_9_in_a_method_stage_with_a_connector(sh, home, tmp_path):
    args = ["run", "fitnet", "--profile", "smoke", "--device", "cpu", "--json", "--set", "train.epochs=8",
            "--set", "student.crop=1", "--set", "student.flip=true"]  # augmented: the teacher runs per batch
    reference = sh(*args, env={"PAPERLAB_HOME": str(tmp_path / "reference")})
    assert reference.code == 0, reference.err
    assert _kill_9_once_saved(args, home, "runs/*/fitnet.ckpt") == -signal.SIGKILL
    saved = torch.load(next(home.glob("runs/*/fitnet.ckpt")), weights_only=True)
    assert "regressor.conv.weight" in saved["objective"]  # the connector is checkpointed with the student
    resumed = sh(*args, "--resume")
    assert resumed.code == 0, resumed.err
    assert "fitnet   epoch   1/8" not in resumed.err  # it continued, not started over
    assert ([s["test_error"] for s in resumed.json()["stages"]]
            == [s["test_error"] for s in reference.json()["stages"]])


def test_a_cifar_archive_with_the_wrong_checksum_is_refused(cli, home, monkeypatch, tmp_path):
    import functools
    import http.server
    import threading

    (tmp_path / "cifar-100-python.tar.gz").write_bytes(b"not the archive")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("PAPERLAB_DATA_MIRRORS", f"http://127.0.0.1:{server.server_port}/")
        r = cli("run", "kd-cifar", "--profile", "paper", "--device", "cpu")
    finally:
        server.shutdown()
    assert r.code == 1 and "SHA-256 mismatch for cifar-100-python.tar.gz" in r.err
    assert not list((home / "data").rglob("*.tar.gz*"))  # neither the bad archive nor a partial one is kept


def test_every_template_builds_each_stage_on_its_smoke_pair_and_takes_a_step():
    """All templates, all profiles validate; every stage's method is built on the smoke nets and one step
    trains it (the full smoke runs are one per family: test_every_method_template_smoke_run_passes...)."""
    from paperlab.lab import distillers, nets
    from paperlab.lab.templates import check_methods, load, raw, template_names

    for name in template_names():
        for profile in raw(name).get("profiles", {}):
            check_methods(load(name, profile))
        spec = load(name, "smoke")
        torch.manual_seed(0)
        shape = (1, 8, 8)
        models = {role: nets.build(spec.model_spec(role).net, shape, 10)
                  for role in ("teacher", "student", *spec.models)}
        info = distillers.Info(shape, 10, torch.arange(2000) % 10)  # CRD samples negatives of other classes
        x, y = torch.randn(8, *shape), torch.arange(8) % 10
        for stage in spec.stages:
            student = models[stage.model] if stage.peers == 1 else nets.Cohort(
                [nets.build(spec.model_spec(stage.model).net, shape, 10) for _ in range(stage.peers)])
            teacher = models.get(spec.stage(stage.teacher).model) if stage.teacher else None
            method = distillers.get(stage.method)(distillers.parse_params(stage.method, spec.params_of(stage)),
                                                  student, teacher, info)
            batch = distillers.Batch(x, y, torch.arange(8), 1, 0.0)
            t_out = nets.as_out(teacher(x, features=True)) if teacher is not None else None
            loss, _ = method(nets.as_out(student(x, features=True)), t_out, batch)
            loss.backward()
            assert torch.isfinite(loss), (name, stage.name)


def test_a_method_without_a_teacher_runs_as_its_own_family(cli):
    """Tf-KD: no teacher stage; the student and the regularised student run and are tracked."""
    r = cli("run", "tfkd", "--profile", "smoke", "--epochs", "6", "--device", "cpu", "--json")
    assert r.code == 0, r.err
    stages = r.json()["stages"]
    assert [s["stage"] for s in stages] == ["student", "tfkd"] and stages[1]["taught_by"] is None
    assert all(s["test_error"] < 450 for s in stages)
    bad = cli("run", "tfkd", "--profile", "smoke", "--set", "stages=[{name: s, model: student, method: kd}]")
    assert bad.code == 2 and "method 'kd' needs a teacher" in bad.err
    # mean teacher's input preparation on the same run: GCN + ZCA fitted on the training split, input noise,
    # the sigmoid ramps; a new key (nothing cached is reused) and still a student that learns
    white = cli("run", "tfkd", "--profile", "smoke", "--epochs", "6", "--device", "cpu", "--json", "--set", "whiten=gcn-zca",
                "--set", "normalize=false", "--set", "student.noise=0.1", "--set", "train.schedule=ramps",
                "--set", "train.warmup_epochs=2", "--set", "train.rampdown_epochs=2")
    assert white.code == 0, white.err
    ws = white.json()["stages"]
    assert all(s["test_error"] < 450 for s in ws) and ws[0]["test_error"] != stages[0]["test_error"]
    assert white.json()["parent_run_id"] != r.json()["parent_run_id"]


def test_mean_teacher_tracks_its_ema_teacher_even_when_reused_from_the_cache(cli, home):
    """The EMA teacher's validation errors each epoch and its last-epoch test errors are logged beside the
    student's; a second run, which reads both stages from the cache, reports the same EMA errors."""
    import re

    from mlflow.tracking import MlflowClient

    args = ("run", "mean-teacher", "--profile", "smoke", "--device", "cpu", "--set", "train.epochs=2")
    first, second = cli(*args), cli(*args)
    assert first.code == 0 and second.code == 0, first.err + second.err
    pattern = r"^(\S+): its ema model makes (\d+) test errors at the last epoch"
    lines = re.findall(pattern, first.out, re.M)
    assert [name for name, _ in lines] == ["student", "mean-teacher"]
    assert re.findall(pattern, second.out, re.M) == lines
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("mean-teacher").experiment_id],
                              "tags.`paperlab.stage` = 'mean-teacher'")
    assert len(runs) == 2 and {r.data.tags.get("paperlab.reused") for r in runs} == {"true", None}
    assert [r.data.metrics["test_error_ema_last"] for r in runs] == [float(lines[1][1])] * 2
    trained = next(r for r in runs if "paperlab.reused" not in r.data.tags)
    assert len(client.get_metric_history(trained.info.run_id, "val_error_ema")) == 2


def test_multi_model_graphs_track_one_child_per_model_and_resume_a_cohort_after_kill_9(cli, sh, home, tmp_path):
    """An ensemble of three cached teachers, then a DML cohort killed mid-stage and resumed exactly."""
    from mlflow.tracking import MlflowClient

    r = cli("run", "ensemble-kd", "--profile", "smoke", "--epochs", "3", "--device", "cpu", "--json")
    assert r.code == 0, r.err
    stages = {s["stage"]: s for s in r.json()["stages"]}
    assert stages["ensemble"]["test_error"] <= max(stages[f"teacher{i}"]["test_error"] for i in (1, 2, 3))
    assert len({stages[f"teacher{i}"]["test_error"] for i in (1, 2, 3)} | {-1}) >= 3  # three seeds, not one net
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    parent = r.json()["parent_run_id"]
    children = client.search_runs([client.get_run(parent).info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent}'")
    assert sorted(c.data.tags["paperlab.stage"] for c in children) == sorted(stages)

    args = ["run", "dml", "--profile", "smoke", "--device", "cpu", "--json", "--set", "train.epochs=6"]
    reference = sh(*args, env={"PAPERLAB_HOME": str(tmp_path / "reference")})
    assert reference.code == 0, reference.err
    assert _kill_9_once_saved(args, home, "runs/dml-*/dml.ckpt") == -signal.SIGKILL
    resumed = sh(*args, "--resume")
    assert resumed.code == 0, resumed.err
    assert "dml      epoch   1/6" not in resumed.err
    assert ([s["test_error"] for s in resumed.json()["stages"]]
            == [s["test_error"] for s in reference.json()["stages"]])
    parent = resumed.json()["parent_run_id"]
    peers = client.search_runs([client.get_run(parent).info.experiment_id],
                               f"tags.mlflow.parentRunId = '{parent}' and tags.`paperlab.cohort` = 'dml'")
    assert sorted(p.data.tags["paperlab.stage"] for p in peers) == ["dml-peer1", "dml-peer2"]
    assert all("test_error_last" in p.data.metrics for p in peers)  # each peer's own last epoch
    again = sh(*args)  # the cohort comes from the cache: its peers still get a child run each
    assert again.code == 0 and [s["reused"] for s in again.json()["stages"]] == [True, True], again.err
    parent = again.json()["parent_run_id"]
    peers = client.search_runs([client.get_run(parent).info.experiment_id],
                               f"tags.mlflow.parentRunId = '{parent}' and tags.`paperlab.cohort` = 'dml'")
    assert sorted(p.data.tags["paperlab.stage"] for p in peers) == ["dml-peer1", "dml-peer2"]
    assert not any("test_error_last" in p.data.metrics for p in peers)  # the cache holds no peer's last epoch


def test_a_phase_is_its_own_cached_stage_and_the_next_starts_from_it(cli, home):
    """AB: the boundary phase is tracked and cached like a teacher; the CE stage starts from its weights."""
    first = cli("run", "ab", "--profile", "smoke", "--epochs", "6", "--device", "cpu", "--json")
    assert first.code == 0, first.err
    stages = {s["stage"]: s for s in first.json()["stages"]}
    assert list(stages) == ["teacher", "student", "ab-init", "ab"] and stages["ab"]["taught_by"] is None
    again = cli("run", "ab", "--profile", "smoke", "--epochs", "6", "--device", "cpu", "--json").json()["stages"]
    assert [s["reused"] for s in again] == [True, True, True, False]
    assert [s["test_error"] for s in again] == [s["test_error"] for s in stages.values()]
    changed = cli("run", "ab", "--profile", "smoke", "--epochs", "6", "--device", "cpu", "--json", "--set", "distill.margin=0.5")
    assert [s["reused"] for s in changed.json()["stages"]] == [True, True, False, False]  # keyed by what made it


def test_a_phase_hands_its_trained_method_parts_to_the_next_stage(cli, home):
    """FT: the paraphraser phase is cached with its trained paraphraser; the FT stage takes it over, and
    a second run that reads it from the cache gives the same numbers as the first, which had it in memory."""
    first = cli("run", "ft", "--profile", "smoke", "--epochs", "6", "--device", "cpu", "--json")
    assert first.code == 0, first.err
    again = cli("run", "ft", "--profile", "smoke", "--epochs", "6", "--device", "cpu", "--json")
    assert [s["reused"] for s in again.json()["stages"]] == [True, True, True, False]
    assert [s["test_error"] for s in again.json()["stages"]] == [s["test_error"] for s in first.json()["stages"]]
    cached = [torch.load(p, weights_only=True) for p in (home / "cache" / "teachers").glob("*.pt")]
    assert any("paraphraser.encoder.0.weight" in c.get("method_state", {}) for c in cached)


def test_crd_without_some_classes_indexes_the_stages_own_transfer_set(home):
    """With omit_classes, CRD's memory bank and its negatives index the examples the stage trains on: every
    negative drawn for a class is an example of another class of that reduced set (sized by the full set,
    the indices pointed at other examples, some of the same class)."""
    from paperlab.lab.pipeline import Run
    from paperlab.lab.templates import load
    from paperlab.settings import load as settings

    spec = load("crd", "smoke", {"stages": [
        {"name": "teacher", "model": "teacher"}, {"name": "student", "model": "student"},
        {"name": "crd", "model": "student", "method": "crd", "teacher": "teacher", "omit_classes": [3, 7]}]})
    run = Run(spec, settings(), device="cpu")
    try:
        stage = spec.stage("crd")
        tensors = run.transfer_set(stage)
        kept = tensors.y_train
        assert len(kept) < len(run.tensors.y_train) and not bool(torch.isin(kept, torch.tensor([3, 7])).any())
        student, teacher = run.build(stage, start=False), run.build(spec.stage("teacher"), start=False)
        crd = run.method(stage, student, teacher, tensors)
        assert crd.n == len(kept) and crd.bank_s.shape[0] == crd.bank_t.shape[0] == len(kept)
        torch.manual_seed(0)
        y = kept[:64]
        negatives = crd.negatives(y)
        assert int(negatives.max()) < len(kept) and bool((kept[negatives] != y[:, None]).all())
    finally:
        run.folder.release()


def test_a_template_inherits_the_base_s_claims_only_for_stages_it_trains_as_the_base_does():
    """CRD's benchmark claims its plain teacher and student (all labels, CE). Mean teacher's `student` learns
    from 4,000 labels through its method and it has no `teacher`: neither claim is its own; Tf-KD has a
    plain student and no teacher."""
    from paperlab.lab.templates import raw

    def base_stages(name):
        return {c["stage"] for c in raw(name)["claims"] if c["source"].endswith("(CRD's benchmark)")}

    assert base_stages("crd") == {"teacher", "student"}
    assert base_stages("tfkd") == {"student"}
    assert base_stages("mean-teacher") == set()
    assert {c["stage"] for c in raw("mean-teacher")["claims"]} == {"mean-teacher"}  # its own stay
