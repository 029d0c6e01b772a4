"""One `paperlab run`: the template's stages in order (teachers, baseline students, one stage per method),
each trained by the one loop, cached when it has no teacher, and tracked as an MLflow child run."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from paperlab import __version__
from paperlab.errors import BadInput, PaperlabError
from paperlab.lab import distributed as dd
from paperlab.lab import data as datasets
from paperlab.lab import distillers, nets, trainer
from paperlab.lab.spec import RunSpec, StageSpec
from paperlab.lab.templates import changed_from_profile, recipe_yaml, resolved_yaml
from paperlab.settings import Settings


@dataclass
class StageResult:
    stage: str
    run_id: str
    test_error: int
    test_acc: float
    test_error_last: int | None  # None: not known (a reused cohort's peers)
    best_epoch: int
    reused: bool
    wall_seconds: float
    test_acc_last: float | None = 0.0
    n_params: int = 0
    role: str = ""
    taught_by: str | None = None


@dataclass
class RunResult:
    parent_run_id: str
    stages: list[StageResult]
    device: str
    dataset: str
    notes: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # measured after training (a bias shift), for the table


def _clip(text: str, limit: int = 1000) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def run_folder_names(spec: RunSpec, checksum: str, device: str) -> tuple[str, str]:
    """A run's folder under runs/, keyed by its recipe, data and device; and the name it had when the key held
    the whole resolved YAML (claims and estimate included), still found by --resume."""
    return (f"{spec.name}-{_hash(recipe_yaml(spec), checksum, device, *_world())}",
            f"{spec.name}-{_hash(resolved_yaml(spec), checksum, device, *_world())}")


def _hold(run_dir: Path, take: bool = True):
    """The lock of a run folder, taken at once or refused in one line (under torchrun rank 0 alone takes it)."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(run_dir) + ".lock")
    try:
        if take:
            lock.acquire(timeout=0)
    except Timeout:
        raise PaperlabError(f"the same run is already going on in another process (it holds {lock.lock_file});"
                            f" wait for it to finish, or change the seed or a setting") from None
    return lock


def _move_legacy(old: Path, new: Path) -> None:
    """A run begun when the key held the whole YAML moves to its recipe key, under its old lock: a process
    still running in the old folder is not moved from under."""
    lock = _hold(old)
    try:
        os.replace(old, new)
    finally:
        lock.release()
    Path(lock.lock_file).unlink(missing_ok=True)


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


def inside(root: Path, path: Path) -> Path:
    """`path`, refused unless it lies under `root` (names from templates and --set become paths)."""
    if not path.resolve().is_relative_to(root.resolve()):
        raise BadInput(f"{path} is outside the workspace {root}")
    return path


class Run:
    def __init__(self, spec: RunSpec, settings: Settings, device: str = "auto", data_dir: Path | None = None,
                 resume: bool = False, retrain: bool = False, command: str = "",
                 parent_run_id: str | None = None, extra_tags: dict[str, str] | None = None,
                 tracker=None, dataset: datasets.Dataset | None = None, compile_mode: str | None = None):
        """`compile_mode`: train the nets' forward through torch.compile in this mode (trainer.compiled); an
        execution setting like the device, so it joins no key: a compiled run resumes an eager one."""
        from paperlab.lab.tracking import Muted, Tracker

        self.spec, self.settings = spec, settings
        self.device = trainer.pick_device(device)
        if self.device.type == "cpu":
            torch.use_deterministic_algorithms(True)
        self.data = dataset or datasets.load(spec.dataset, data_dir, settings.data_dir)
        self.notes = [self.data.note] if self.data.note and dataset is None else []
        self.findings: list[str] = []
        for note in self.notes if dd.leader() else []:
            print(f"note: {note}", file=sys.stderr)
        self.retrain = retrain
        self.compile_mode = compile_mode
        self.prefit: dict[str, trainer.FitResult] = {}  # stages trained elsewhere as copies of a batched model
        self.batched: dict[str, int] = {}  # ... and how many copies that model had
        self.command = command
        self._put_tensors()
        runs = settings.home / "runs"
        name, legacy = run_folder_names(spec, self.data.checksum, self.device.type)
        self.run_dir = inside(runs, runs / name)
        if resume and dd.leader() and not self.run_dir.exists() and (runs / legacy).is_dir():
            _move_legacy(runs / legacy, self.run_dir)
        self.run_dir.parent.mkdir(parents=True, exist_ok=True)
        self.lock = _hold(self.run_dir, take=dd.leader())  # under torchrun, rank 0 holds the run for all its workers
        try:
            self._open_state(resume)
            self.tracker = tracker or (Tracker(settings) if dd.leader() else Muted())
            self.experiment = self.tracker.experiment(spec.name)
        except BaseException:
            self.lock.release()
            raise
        self.tags = {"paperlab.template": spec.name, "paperlab.paper": spec.paper or "",
                     "paperlab.profile": spec.profile,
                     "paperlab.version": __version__, "paperlab.git_commit": _git_commit(),
                     "paperlab.torch": torch.__version__, "paperlab.device": str(self.device),
                     "paperlab.dataset": spec.dataset, "paperlab.dataset_sha256": self.data.checksum,
                     "paperlab.teacher_net": spec.teacher.net.kind, "paperlab.student_net": spec.student.net.kind,
                     "paperlab.seed": str(spec.seed), "paperlab.command": command,
                     **({"paperlab.processes": str(dd.world())} if dd.world() > 1 else {}),
                     **({"paperlab.compile": compile_mode} if compile_mode else {}), **(extra_tags or {})}
        changed = changed_from_profile(spec)
        if changed:  # the report gives such runs no verdict against the paper (reports/collect.incomparable)
            self.tags["paperlab.changed"] = _clip(", ".join(changed))
        if self.data.note:
            self.tags["paperlab.data_note"] = _clip(self.data.note)
        self.owns_parent = parent_run_id is None  # a sweep owns the parent of all its points
        if parent_run_id is not None:
            self.state["parent_run_id"] = parent_run_id
        if "parent_run_id" not in self.state:
            self.state["parent_run_id"] = self.tracker.start(self.experiment, f"{spec.name} ({spec.profile})",
                                                             self.tags)
            self._save_state()
        elif self.owns_parent:  # resumed: RUNNING again, under this process
            self.tracker.reopen(self.state["parent_run_id"])
        self.parent = self.state["parent_run_id"]
        self.models: dict[str, torch.nn.Module] = {}
        self.method_states: dict[str, dict] = {}  # a stage's trained method parts, for `method_from:`

    def _put_tensors(self) -> None:
        spec, data = self.spec, self.data
        train_idx, val_idx = datasets.split_validation(len(data.y_train), spec.train.val_size, spec.seed)
        mean = std = None
        if spec.normalize:
            m, s = data.stats()
            mean = torch.tensor(m, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
            std = torch.tensor(s, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)

        def put(a: np.ndarray) -> torch.Tensor:
            t = torch.from_numpy(np.ascontiguousarray(a)).to(self.device)
            return (t - mean) / std if mean is not None and t.is_floating_point() else t

        self.tensors = trainer.Tensors(put(data.x_train[train_idx]), put(data.y_train[train_idx]),
                                       put(data.x_train[val_idx]), put(data.y_train[val_idx]))
        self.x_test, self.y_test = put(data.x_test), put(data.y_test)
        if spec.whiten == "gcn-zca":
            from paperlab.lab.data.whiten import GcnZca

            zca = GcnZca.fit(self.tensors.x_train)
            self.tensors = trainer.Tensors(zca(self.tensors.x_train), self.tensors.y_train,
                                           zca(self.tensors.x_val), self.tensors.y_val)
            self.x_test = zca(self.x_test)
        self.fill = None if mean is None else -mean / std  # black, normalised: the border of a shifted image
        self.info = distillers.Info(tuple(data.x_train.shape[1:]), len(data.classes), self.tensors.y_train)

    def _open_state(self, resume: bool) -> None:
        state_file = self.run_dir / "state.json"
        if dd.leader():
            if not resume and self.run_dir.exists():
                shutil.rmtree(self.run_dir)
            self.run_dir.mkdir(parents=True, exist_ok=True)
        dd.barrier()  # the other ranks read the run folder as rank 0 left it
        try:
            self.state = json.loads(state_file.read_text()) if resume and state_file.exists() else {"stages": {}}
        except ValueError:
            self.state = {"stages": {}}

    def _save_state(self) -> None:
        if not dd.leader():
            return
        tmp = self.run_dir / "state.json.tmp"
        try:
            tmp.write_text(json.dumps(self.state, indent=2))
            os.replace(tmp, self.run_dir / "state.json")
        finally:
            tmp.unlink(missing_ok=True)

    # -- models -----------------------------------------------------------------------------------------
    def _net(self, role: str, offset: int = 0) -> torch.nn.Module:
        """One net of a model; seeded by role and offset, so the baseline and every method start alike."""
        role_id = {"teacher": 1, "student": 2}.get(role) or 3 + sorted(self.spec.models).index(role)
        torch.manual_seed(self.spec.seed * 1_000 + role_id + 100 * offset)
        shape, classes = tuple(self.data.x_train.shape[1:]), len(self.data.classes)
        return nets.build(self.spec.model_spec(role).net, shape, classes).to(self.device)

    def _build(self, stage: StageSpec, start: bool = True) -> torch.nn.Module:
        """A stage's model before training: one net, a cohort of peers, or the ensemble of earlier stages."""
        if stage.ensemble:
            return nets.Ensemble([self._model_of(name) for name in stage.ensemble])
        if stage.peers > 1:
            model = nets.Cohort([self._net(stage.model, stage.seed_offset + 17 * i) for i in range(stage.peers)])
        else:
            model = self._net(stage.model, stage.seed_offset)
        if start and stage.init is not None:  # not when trained weights are loaded over it anyway
            model.load_state_dict(self._model_of(stage.init).state_dict())
        return model

    def _augment(self, role: str) -> trainer.Augment:
        m = self.spec.model_spec(role)
        return trainer.Augment(m.shift, m.flip, self.fill if m.shift else None, m.noise, m.pad == "reflect")

    def _cache_file(self, stage: StageSpec) -> Path:
        """Keyed by what made the model (net, augmentation, recipe, data, seed, device), not by the template:
        ten methods on one pair train one teacher."""
        return self.settings.cache_dir / "teachers" / \
            f"{self.spec.model_spec(stage.model).net.kind}-{self._lineage_key(stage)}.pt"

    def _lineage_key(self, stage: StageSpec) -> str:
        """What made a stage's model: its own settings and, recursively, its teacher's, start's and members'."""
        spec = self.spec
        extra = [stage.seed_offset, stage.peers] if (stage.seed_offset, stage.peers) != (0, 1) else []
        extra += [f"omit={stage.omit_classes}"] if stage.omit_classes else []
        extra += [f"whiten={spec.whiten}"] if spec.whiten != "none" else []
        extra += [f"{k}={self._lineage_key(spec.stage(n))}" for k, n in
                  (("teacher", stage.teacher), ("init", stage.init), ("method_from", stage.method_from)) if n] + \
            [f"member={self._lineage_key(spec.stage(n))}" for n in stage.ensemble]
        return _hash(stage.model, spec.model_spec(stage.model).model_dump(), stage.method, spec.params_of(stage),
                     spec.train_of(stage).model_dump(), spec.normalize, self.data.checksum, spec.seed,
                     self.device.type, *extra, *_world())

    def _read_cache(self, stage: StageSpec) -> dict | None:
        path = self._cache_file(stage)
        if self.retrain or not path.exists():
            return None
        try:
            return torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:
            if not dd.leader():  # rank 0 sets it aside and says so
                return None
            aside = path.with_name(path.name + ".damaged")
            os.replace(path, aside)
            print(f"warning: the cached model {path.name} is damaged ({type(exc).__name__}); set aside as "
                  f"{aside.name}, training it again", file=sys.stderr)
            return None

    def _model_of(self, name: str) -> torch.nn.Module:
        """The trained model of an earlier stage: in memory, saved in the run folder, cached, or trained now."""
        if name in self.models:
            return self.models[name]
        stage = self.spec.stage(name)
        if stage.ensemble:
            self.models[name] = self._build(stage)
            return self.models[name]
        saved = self.run_dir / f"{name}.weights.pt"
        cached = self._read_cache(stage) if self.spec.cached(stage) else None
        found = cached or (trainer.load_checkpoint(saved, self.device) if saved.exists() else None)
        if found is None:
            self.state["stages"][name] = asdict(self._stage(stage))
            self._save_state()
            return self.models[name]
        model = self._build(stage, start=False)
        model.load_state_dict(found.get("state_dict", found))  # a run folder from before method states: weights
        self.models[name] = model
        self.method_states[name] = found.get("method_state") or {}
        return model

    def _method_state_of(self, name: str) -> dict:
        self._model_of(name)
        return self.method_states.get(name, {})

    def _take_method_parts(self, stage: StageSpec, objective) -> None:
        """`method_from:` the earlier stage's trained method parts whose names and shapes match this one's."""
        own = objective.state_dict()
        parts = {k: v for k, v in self._method_state_of(stage.method_from).items()
                 if k in own and own[k].shape == v.shape}
        if not parts:
            raise PaperlabError(f"stage {stage.name!r}: the method of {stage.method_from!r} has no parts that "
                                f"{stage.method!r} can take")
        objective.load_state_dict(parts, strict=False)

    # -- stages -----------------------------------------------------------------------------------------
    def batch_copy(self, stage: StageSpec):
        """This run's copy of a stage for seeds-as-one-model training (lab/batched.py), or None where the
        stage must train on its own: done or cached already, a phase, a cohort or an ensemble, a net with
        batch norm or dropout (whose numbers would then differ from a run of its own), a method with
        features or parameters, or a teacher whose logits cannot be computed once (augmented inputs)."""
        from paperlab.lab.batched import Copy

        if stage.name in self.state["stages"] or stage.ensemble or stage.peers > 1 or stage.init \
                or stage.method_from or stage.shift_classes:
            return None
        if self.spec.cached(stage) and not self.retrain and self._read_cache(stage) is not None:
            return None
        model = self._build(stage)
        if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) or (isinstance(m, torch.nn.Dropout) and m.p)
               for m in model.modules()):
            return None
        teacher = self._model_of(stage.teacher) if stage.teacher else None
        tensors = self._transfer_set(stage)
        objective = self._method(stage, model, teacher, tensors)
        augment = self._augment(stage.model)
        if objective.needs & distillers.FEATURES or any(True for _ in objective.parameters()) or \
                objective.shadows() or (teacher is not None and (augment.shift or augment.flip)):
            return None
        logits = trainer.predict(teacher, tensors.x_train) if teacher is not None else None
        return Copy(model, objective, self.spec.seed, logits), tensors, augment

    def run_all(self, only: list[str] | None = None, finish: bool = True) -> RunResult:
        """The stages (or `only` these); with finish=False the run stays open for more calls (its lock held)."""
        names = [s.name for s in self.spec.stages]
        results = []
        try:
            for name in only or []:
                if name not in names:
                    raise BadInput(f"no stage {name!r} in {self.spec.name} (stages: {', '.join(names)})")
            for stage in self.spec.stages:
                if only and stage.name not in only:
                    continue
                done = self.state["stages"].get(stage.name)
                results.append(StageResult(**done) if done else self._stage(stage))
                self.state["stages"][stage.name] = asdict(results[-1])
                self._save_state()
        except BaseException:
            if self.owns_parent:
                self.tracker.finish_quietly(self.parent)
            self.lock.release()
            raise
        if finish:
            self.close()
        return RunResult(self.parent, results, str(self.device), self.spec.dataset, self.notes, self.findings)

    def close(self) -> None:
        """The run is complete: its parent finished (when it owns it), stage weights cleared, lock released."""
        if self.owns_parent:
            self.tracker.finish(self.parent)
        dd.barrier()
        for leftover in self.run_dir.glob("*.weights.pt") if dd.leader() else []:
            leftover.unlink()
        self.lock.release()

    def _stage_tags(self, stage: StageSpec) -> dict[str, str]:
        return {**self.tags, "paperlab.stage": stage.name, "paperlab.role": stage.model,
                "paperlab.method": stage.method, "paperlab.taught_by": stage.teacher or "",
                "paperlab.net": self.spec.model_spec(stage.model).net.kind, "paperlab.init": stage.init or "",
                "paperlab.phase": str(any(s.init == stage.name for s in self.spec.stages)).lower(),
                **({"paperlab.batched_copies": str(self.batched[stage.name])} if stage.name in self.batched else {})}

    def _stage(self, stage: StageSpec) -> StageResult:
        cacheable = self.spec.cached(stage)
        cached = self._read_cache(stage) if cacheable else None
        if cached is not None:
            return self._reuse(stage, cached)
        started = time.perf_counter()
        if stage.ensemble:
            return self._evaluate_ensemble(stage, started)
        run_id = self.state.get("running", {}).get(stage.name)
        if run_id:
            self.tracker.reopen(run_id)
        else:
            run_id = self._start_stage(stage.name, self._stage_tags(stage))
        self.state.setdefault("running", {})[stage.name] = run_id
        self._save_state()
        try:
            model = self._build(stage)
            teacher = self._model_of(stage.teacher) if stage.teacher else None
            tensors = self._transfer_set(stage)
            objective = self._method(stage, model, teacher, tensors)
            if stage.method_from is not None:
                self._take_method_parts(stage, objective)
            augment = self._augment(stage.model)
            if teacher is not None and not (objective.needs & distillers.FEATURES) and not augment.shift \
                    and not augment.flip:  # the teacher sees the same inputs every epoch: its logits once
                tensors = replace(tensors, teacher_train=trainer.predict(teacher, tensors.x_train))
                teacher = None
            self.tracker.params(run_id, _flat(self.spec))
            log = lambda e: self.tracker.metrics(run_id, {  # noqa: E731
                "train_loss": e.train_loss, "val_error": e.val_error, "val_acc": e.val_acc, "lr": e.lr,
                "epoch_seconds": e.epoch_seconds, "samples_per_s": e.samples_per_s,
                **{f"loss_{k}": v for k, v in e.terms.items()},
                **{f"val_error_{k}": v for k, v in e.shadow_val_errors.items()}}, step=e.epoch)
            checkpoint = self.run_dir / f"{stage.name}.ckpt"
            if stage.name in self.prefit:  # trained already, as one copy of a batched model (lab/batched.py)
                fit = self.prefit.pop(stage.name)
                for entry in fit.history:
                    log(entry)
                model.load_state_dict(fit.last_state)
            else:
                fit = trainer.fit(model, objective, tensors, self.spec.train_of(stage), seed=self.spec.seed,
                                  label=stage.name, augment=augment, teacher=teacher, checkpoint=checkpoint,
                                  resume=True, on_epoch=log, compile_mode=self.compile_mode)
            self.tracker.metrics(run_id, {"train_seconds": sum(h.epoch_seconds for h in fit.history)})  # resumes too
            started -= sum(h.epoch_seconds for h in fit.history[:fit.resumed_epochs])  # wall: earlier sessions too
            last_error = self._errors(model)
            peers_last = [self._errors(peer) for peer in model.peers] if stage.peers > 1 else []
            self._test_shadows(stage, run_id, objective, last_error)
            model.load_state_dict(fit.best_state)
            if stage.shift_classes:
                self._bias_shift(stage, run_id, model)
            result = self._finish(stage, run_id, model, last_error, fit.best_epoch, len(fit.history), started)
            if stage.peers > 1:
                self._track_peers(stage, model, peers_last)
        except BaseException:
            self.tracker.finish_quietly(run_id)
            raise
        self.models[stage.name] = model
        self.method_states[stage.name] = {k: v.detach().cpu() for k, v in objective.state_dict().items()}
        saved = {"state_dict": fit.best_state, "method_state": self.method_states[stage.name]}
        if dd.leader():  # under torchrun every rank holds the model; rank 0 keeps it
            if cacheable:
                trainer.save_atomic({**saved, "result": asdict(result)}, self._cache_file(stage))
            elif any(stage.name in (s.teacher, s.init, s.method_from, *s.ensemble) for s in self.spec.stages):
                trainer.save_atomic(saved, self.run_dir / f"{stage.name}.weights.pt")
            checkpoint.unlink(missing_ok=True)
            self._register(stage, result, model, saved)
        dd.barrier()
        return result

    def _register(self, stage: StageSpec, result: StageResult, model: torch.nn.Module, saved: dict) -> None:
        """Teachers and distilled students into MLflow's model registry (lab/registry.py); a store without a
        registry costs a warning, not the run."""
        from paperlab.lab import registry

        role = "teacher" if stage.model == "teacher" and not stage.teacher else \
            "student" if stage.model == "student" and stage.teacher else None
        if role is None or stage.peers > 1 or stage.ensemble or self.spec.whiten != "none":
            return  # whitened inputs: the registered model would need the fitted transform, which it does not carry
        net = self.spec.model_spec(stage.model).net
        mean, std = self.data.stats() if self.spec.normalize else ((), ())
        about = {"net": net.model_dump(), "shape": list(self.data.x_train.shape[1:]), "classes": len(self.data.classes),
                 "mean": list(mean), "std": list(std)}
        example = {"images": self.data.x_test[:2], "logits": trainer.predict(model, self.x_test[:2]).cpu().numpy()}
        cache = self._cache_file(stage) if self.spec.cached(stage) else None
        tags = {"paperlab.role": role, "paperlab.template": self.spec.name, "paperlab.profile": self.spec.profile,
                "paperlab.seed": str(self.spec.seed), "paperlab.stage": stage.name, "test_error": str(result.test_error),
                "paperlab.cache_key": cache.name if cache else ""}
        try:
            with tempfile.TemporaryDirectory() as tmp:
                weights = cache or Path(tmp) / f"{stage.name}.pt"
                if cache is None:
                    torch.save({**saved, "result": asdict(result)}, weights)
                registry.register(self.tracker, result.run_id,
                                  registry.model_name(self.spec.name, role, net.kind, self.spec.dataset),
                                  weights, about, example, tags)
        except Exception as exc:  # e.g. a tracking server without a registry
            print(f"warning: {stage.name} was not registered in MLflow's model registry "
                  f"({type(exc).__name__}: {str(exc).splitlines()[0][:150] if str(exc) else ''})", file=sys.stderr)

    def _method(self, stage: StageSpec, model, teacher, tensors: trainer.Tensors) -> distillers.Distiller:
        """The stage's method, sized by the stage's own transfer set: CRD's memory bank and negatives and mean
        teacher's labelled subset index the examples this stage trains on (a set without some classes is
        indexed afresh)."""
        params = distillers.parse_params(stage.method, self.spec.params_of(stage))
        info = replace(self.info, train_labels=tensors.y_train)
        return distillers.get(stage.method)(params, model, teacher, info).to(self.device)

    def _transfer_set(self, stage: StageSpec) -> trainer.Tensors:
        if not stage.omit_classes:
            return self.tensors
        t = self.tensors
        keep = ~torch.isin(t.y_train, torch.tensor(stage.omit_classes, device=t.y_train.device))
        if not bool(keep.any()):
            raise PaperlabError(f"stage {stage.name!r}: omit_classes leaves no training examples")
        return replace(t, x_train=t.x_train[keep], y_train=t.y_train[keep])

    def _bias_shift(self, stage: StageSpec, run_id: str, model) -> None:
        """Shift the output bias of `shift_classes`, chosen on the validation split (lab/bias.py)."""
        from paperlab.lab import bias

        t = self.tensors
        metrics = bias.measure(trainer.predict(model, t.x_val), t.y_val, trainer.predict(model, self.x_test),
                               self.y_test, stage.shift_classes, stage.paper_shift)
        self.tracker.metrics(run_id, metrics)
        self.findings.append(bias.describe(stage.name, stage.shift_classes, stage.paper_shift, metrics))

    def _errors(self, model) -> int:
        return int((trainer.predict(model, self.x_test).argmax(1) != self.y_test).sum())

    def _test_shadows(self, stage: StageSpec, run_id: str, objective, student_last: int) -> None:
        """Test errors of the models a method trains beside the student, as they are at the last epoch."""
        for name, shadow in objective.shadows().items():
            errors = self._errors(shadow)
            self.tracker.metrics(run_id, {f"test_error_{name}_last": errors,
                                          f"test_acc_{name}_last": 1 - errors / len(self.y_test)})
            self.findings.append(f"{stage.name}: its {name} model makes {errors} test errors at the last epoch "
                                 f"(the student {student_last}; metric test_error_{name}_last)")

    def _finish(self, stage, run_id, model, last_error: int | None, best_epoch, epochs, started,
                reused=False) -> StageResult:
        """Track a stage's test errors (its model holds the best epoch's weights; `last_error`: the last
        epoch's, None where unknown) and its files."""
        logits = trainer.predict(model, self.x_test)
        y = self.y_test
        test_error = int((logits.argmax(1) != y).sum())
        last_acc = None if last_error is None else 1 - last_error / len(y)
        result = StageResult(stage.name, run_id, test_error, 1 - test_error / len(y), last_error, best_epoch, reused,
                             time.perf_counter() - started, last_acc, nets.n_params(model),
                             stage.model, stage.teacher)
        last = {} if last_error is None else {"test_error_last": last_error, "test_acc_last": last_acc}
        self.tracker.metrics(run_id, {"test_error": result.test_error, "test_acc": result.test_acc, **last,
                                      "best_epoch": best_epoch, "epochs": epochs,
                                      "wall_seconds": result.wall_seconds, "n_params": result.n_params})
        if not dd.leader():
            return result
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "resolved.yaml").write_text(resolved_yaml(self.spec), encoding="utf-8")
            torch.save({k: v.cpu() for k, v in model.state_dict().items()}, folder / "weights.pt")
            from paperlab.lab import artifacts

            artifacts.write(folder, self.data.x_test, self.data.y_test, logits.cpu().numpy(), self.data.classes,
                            f"{self.spec.name} {stage.name}")
            self.tracker.artifacts(run_id, folder)
        self.tracker.finish(run_id)
        return result

    def _start_stage(self, name: str, tags: dict[str, str]) -> str:
        """A stage's child run, with the data it used logged as an MLflow dataset input (the UI's Dataset column)."""
        run_id = self.tracker.start(self.experiment, name, tags, parent=self.parent)
        data = self.data
        self.tracker.dataset(run_id, name=data.name, digest=data.checksum, source=data.origin,
                             profile={"train": int(len(data.y_train)), "test": int(len(data.y_test)),
                                      "classes": len(data.classes), "shape": list(data.x_train.shape[1:])})
        return run_id

    def _evaluate_ensemble(self, stage: StageSpec, started: float) -> StageResult:
        """An ensemble trains nothing: it is evaluated and tracked like any stage."""
        model = self._model_of(stage.name)
        run_id = self._start_stage(stage.name, {**self._stage_tags(stage), "paperlab.ensemble": ",".join(stage.ensemble)})
        self.tracker.params(run_id, _flat(self.spec))
        return self._finish(stage, run_id, model, self._errors(model), 0, 0, started)  # nothing trains: best = last

    def _track_peers(self, stage: StageSpec, cohort, last_errors: list[int] | None = None) -> None:
        """One child run per peer of a cohort, each with its own test errors (at the last epoch too where
        known: not for a cohort read from the cache)."""
        errors: list[str] = []
        for i, peer in enumerate(cohort.peers):
            peer_stage = stage.model_copy(update={"name": f"{stage.name}-peer{i + 1}", "peers": 1})
            run_id = self._start_stage(peer_stage.name, {
                **self._stage_tags(peer_stage), "paperlab.cohort": stage.name})
            self.tracker.params(run_id, _flat(self.spec))
            done = self._finish(peer_stage, run_id, peer, last_errors[i] if last_errors else None, 0, 0,
                                time.perf_counter())
            errors.append(str(done.test_error))
        self.findings.append(f"{stage.name}: test errors per peer (one MLflow child run each): {', '.join(errors)}")

    def _reuse(self, stage: StageSpec, cached: dict) -> StageResult:
        started = time.perf_counter()
        model = self._build(stage, start=False)
        model.load_state_dict(cached["state_dict"])
        self.models[stage.name] = model
        self.method_states[stage.name] = cached.get("method_state") or {}
        run_id = self._start_stage(stage.name, {
            **self._stage_tags(stage), "paperlab.reused": "true", "paperlab.reused_from": cached["result"]["run_id"]})
        self.tracker.params(run_id, _flat(self.spec))
        last_error = cached["result"]["test_error_last"]  # the cached weights are the best epoch's
        if distillers.get(stage.method).shadows is not distillers.Distiller.shadows and cached.get("method_state"):
            objective = self._method(stage, model, self._model_of(stage.teacher) if stage.teacher else None,
                                     self._transfer_set(stage))  # its shadows as they were at the last epoch
            objective.load_state_dict(cached["method_state"])
            self._test_shadows(stage, run_id, objective, last_error)
        result = self._finish(stage, run_id, model, last_error, cached["result"]["best_epoch"], 0, started, reused=True)
        if stage.peers > 1:  # a reused cohort still shows one child run per peer
            self._track_peers(stage, model)
        return result


def _world() -> list[str]:
    """Part of a run's and a model's key under torchrun: N processes do not give one process's numbers."""
    return [f"world={dd.world()}"] if dd.world() > 1 else []


def _flat(spec: RunSpec) -> dict[str, str]:
    """The recipe as MLflow params: what the run's key holds (title, claims and the time estimate left out,
    so that a run resumed after they were corrected logs the same params again)."""
    from paperlab.lab.templates import DESCRIPTIVE_KEYS, flatten

    data = spec.model_dump(mode="json", exclude=DESCRIPTIVE_KEYS)
    data["stages"] = ",".join(s["name"] for s in data["stages"])
    return flatten(data)
