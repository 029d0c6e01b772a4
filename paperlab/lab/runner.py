"""One `paperlab run`: data, teacher (cached), baseline student and distilled student, all tracked."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from paperlab import __version__
from paperlab.lab import data as datasets
from paperlab.lab import distillers, nets, trainer
from paperlab.lab.templates import RunSpec, resolved_yaml
from paperlab.settings import Settings


@dataclass
class StageResult:
    stage: str
    run_id: str
    test_error: int
    test_acc: float
    test_error_last: int
    best_epoch: int
    reused: bool
    wall_seconds: float


@dataclass
class RunResult:
    parent_run_id: str
    stages: list[StageResult]
    device: str
    dataset: str


def _hash(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@functools.cache
def _git_commit() -> str:
    try:
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


class Run:
    def __init__(self, spec: RunSpec, settings: Settings, device: str = "auto", data_dir: Path | None = None,
                 resume: bool = False, retrain_teacher: bool = False, command: str = "",
                 parent_run_id: str | None = None, extra_tags: dict[str, str] | None = None,
                 tracker=None, dataset: datasets.Dataset | None = None):
        from paperlab.lab.tracking import Tracker

        self.spec, self.settings = spec, settings
        self.device = trainer.pick_device(device)
        if self.device.type == "cpu":
            torch.use_deterministic_algorithms(True)
        self.data = dataset or datasets.load(spec.dataset, data_dir, settings.data_dir)
        self.retrain_teacher = retrain_teacher
        self.command = command
        train_idx, val_idx = datasets.split_validation(len(self.data.y_train), spec.train.val_size, spec.seed)
        put = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(self.device)  # noqa: E731
        self.tensors = trainer.Tensors(put(self.data.x_train[train_idx]), put(self.data.y_train[train_idx]),
                                       put(self.data.x_train[val_idx]), put(self.data.y_train[val_idx]))
        self.x_test, self.y_test = put(self.data.x_test), put(self.data.y_test)
        self.tracker = tracker or Tracker(settings)
        key = _hash(resolved_yaml(spec), self.data.checksum, self.device.type)
        self.run_dir = settings.home / "runs" / f"{spec.name}-{key}"
        state_file = self.run_dir / "state.json"
        if not resume and self.run_dir.exists():
            shutil.rmtree(self.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.state = json.loads(state_file.read_text()) if resume and state_file.exists() else {"stages": {}}
        self.experiment = self.tracker.experiment(spec.name)
        self.tags = {"paperlab.template": spec.name, "paperlab.paper": spec.paper, "paperlab.profile": spec.profile,
                     "paperlab.version": __version__, "paperlab.git_commit": _git_commit(),
                     "paperlab.torch": torch.__version__, "paperlab.device": str(self.device),
                     "paperlab.dataset": spec.dataset, "paperlab.dataset_sha256": self.data.checksum,
                     "paperlab.seed": str(spec.seed), "paperlab.command": command, **(extra_tags or {})}
        self.owns_parent = parent_run_id is None  # a sweep owns the parent of all its points
        if parent_run_id is not None:
            self.state["parent_run_id"] = parent_run_id
        if "parent_run_id" not in self.state:
            self.state["parent_run_id"] = self.tracker.start(self.experiment, f"{spec.name} ({spec.profile})",
                                                             self.tags)
            self._save_state()
        self.parent = self.state["parent_run_id"]
        self.teacher_model: torch.nn.Module | None = None

    def _save_state(self) -> None:
        (self.run_dir / "state.json").write_text(json.dumps(self.state, indent=2))

    def _net(self, role: str) -> torch.nn.Module:
        model_spec = getattr(self.spec, role)
        torch.manual_seed(self.spec.seed * 1_000 + (1 if role == "teacher" else 2))  # baseline and kd: same init
        return nets.build(model_spec.net, self.data.x_train.shape[1:], len(self.data.classes)).to(self.device)

    def _teacher_key(self) -> str:
        return _hash(self.spec.teacher.model_dump(), self.spec.train.model_dump(), self.data.checksum,
                     self.spec.seed, self.device.type)

    def _teacher_cache(self) -> Path:
        return self.settings.cache_dir / "teachers" / f"{self.spec.name}-{self._teacher_key()}.pt"

    def run_all(self, stages: list[str] | None = None) -> RunResult:
        results = []
        try:
            for stage in stages or self.spec.stages:
                done = self.state["stages"].get(stage)
                results.append(StageResult(**done) if done else self._stage(stage))
                self.state["stages"][stage] = asdict(results[-1])
                self._save_state()
        except BaseException:
            if self.owns_parent:
                self.tracker.finish(self.parent, "KILLED" if sys.exc_info()[0] is KeyboardInterrupt else "FAILED")
            raise
        if self.owns_parent:
            self.tracker.finish(self.parent)
        return RunResult(self.parent, results, str(self.device), self.spec.dataset)

    def _stage(self, stage: str) -> StageResult:
        if stage == "teacher" and not self.retrain_teacher and self._teacher_cache().exists():
            return self._reuse_teacher()
        started = time.perf_counter()
        run_id = self.state.get("running", {}).get(stage) or self.tracker.start(
            self.experiment, stage, {**self.tags, "paperlab.stage": stage}, parent=self.parent)
        self.state.setdefault("running", {})[stage] = run_id
        self._save_state()
        role = "teacher" if stage == "teacher" else "student"
        model = self._net(role)
        objective: distillers.Objective = distillers.CrossEntropy()
        tensors = self.tensors
        if stage == "kd":
            cls = distillers.get(self.spec.method)
            objective = cls(**self.spec.distill.model_dump())
            teacher = self._teacher()
            tensors = trainer.Tensors(**{**tensors.__dict__, "teacher_train": trainer.predict(teacher, tensors.x_train)})
        self.tracker.params(run_id, _flat(self.spec))
        log = lambda e: self.tracker.metrics(run_id, {  # noqa: E731
            "train_loss": e.train_loss, "val_error": e.val_error, "val_acc": e.val_acc, "lr": e.lr,
            "epoch_seconds": e.epoch_seconds, "samples_per_s": e.samples_per_s,
            **{f"loss_{k}": v for k, v in e.terms.items()}}, step=e.epoch)
        try:
            fit = trainer.fit(model, objective, tensors, self.spec.train, seed=self.spec.seed, label=stage,
                              jitter_pixels=getattr(self.spec, role).jitter if stage == "teacher" else 0,
                              checkpoint=self.run_dir / f"{stage}.ckpt", resume=True, on_epoch=log)
        except BaseException:
            self.tracker.finish(run_id, "FAILED")
            raise
        last_logits = trainer.predict(model, self.x_test)
        model.load_state_dict(fit.best_state)
        result = self._finish(stage, run_id, model, last_logits, fit.best_epoch, len(fit.history), started)
        if stage == "teacher":
            self.teacher_model = model
            self._teacher_cache().parent.mkdir(parents=True, exist_ok=True)
            torch.save({"state_dict": fit.best_state, "result": asdict(result)}, self._teacher_cache())
        return result

    def _finish(self, stage, run_id, model, last_logits, best_epoch, epochs, started, reused=False) -> StageResult:
        logits = trainer.predict(model, self.x_test)
        y = self.y_test
        test_error = int((logits.argmax(1) != y).sum())
        result = StageResult(stage, run_id, test_error, 1 - test_error / len(y),
                             int((last_logits.argmax(1) != y).sum()), best_epoch, reused,
                             time.perf_counter() - started)
        self.tracker.metrics(run_id, {"test_error": result.test_error, "test_acc": result.test_acc,
                                      "test_error_last": result.test_error_last, "best_epoch": best_epoch,
                                      "epochs": epochs, "wall_seconds": result.wall_seconds})
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "resolved.yaml").write_text(resolved_yaml(self.spec), encoding="utf-8")
            torch.save({k: v.cpu() for k, v in model.state_dict().items()}, folder / "weights.pt")
            from paperlab.lab import artifacts

            artifacts.write(folder, self.data.x_test, self.data.y_test, logits.cpu().numpy(), self.data.classes,
                            f"{self.spec.name} {stage}")
            self.tracker.artifacts(run_id, folder)
        self.tracker.finish(run_id)
        return result

    def _load_cached_teacher(self) -> dict:
        cached = torch.load(self._teacher_cache(), map_location=self.device, weights_only=True)
        model = self._net("teacher")
        model.load_state_dict(cached["state_dict"])
        self.teacher_model = model
        return cached

    def _reuse_teacher(self) -> StageResult:
        started = time.perf_counter()
        cached = self._load_cached_teacher()
        model = self.teacher_model
        run_id = self.tracker.start(self.experiment, "teacher", {
            **self.tags, "paperlab.stage": "teacher", "paperlab.reused": "true",
            "paperlab.reused_from": cached["result"]["run_id"]}, parent=self.parent)
        self.tracker.params(run_id, _flat(self.spec))
        logits = trainer.predict(model, self.x_test)
        return self._finish("teacher", run_id, model, logits, cached["result"]["best_epoch"], 0, started, reused=True)

    def _teacher(self) -> torch.nn.Module:
        if self.teacher_model is None:
            if not self._teacher_cache().exists():
                self._stage("teacher")
            else:
                self._load_cached_teacher()  # used, not a stage of this run: no MLflow run for it
        return self.teacher_model


def _flat(spec: RunSpec) -> dict[str, str]:
    from paperlab.lab.templates import flatten

    data = spec.model_dump(mode="json")
    data.pop("claims", None)
    return flatten(data)
