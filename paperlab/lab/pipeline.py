"""One `paperlab run`: the template's stages in order (teachers, baseline students, one stage per method),
each trained by the one loop, cached when it has no teacher, and tracked as an MLflow child run. Its parts:
the run folder (rundir.py), the model cache (teachers.py), the prepared data (data/prepare.py), a stage's
numbers and files (evaluate.py) and the model registry (registry.py)."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from paperlab.errors import BadInput, PaperlabError
from paperlab.lab import data as datasets
from paperlab.lab import distillers, nets, provenance, rundir, trainer
from paperlab.lab import distributed as dd
from paperlab.lab import teachers as cache
from paperlab.lab.data.augment import Augment
from paperlab.lab.data.prepare import prepare
from paperlab.lab.evaluate import Evaluation, StageResult, flat_params
from paperlab.lab.spec import ModelSpec, RunSpec, StageSpec
from paperlab.settings import Settings

__all__ = ["Run", "RunResult", "StageResult", "teacher_logits_once"]


@dataclass
class RunResult:
    parent_run_id: str
    stages: list[StageResult]
    device: str
    dataset: str
    notes: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # measured after training (a bias shift), for the table


def teacher_logits_once(objective: distillers.Distiller, model: ModelSpec) -> bool:
    """The teacher sees the same inputs every epoch, so its logits can be computed once: the method reads
    logits only and the student's inputs are not augmented (shifted, flipped or noised)."""
    return not (objective.needs & distillers.FEATURES) and not model.augmented


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
        for note in self.notes if dd.leader() else []:
            print(f"note: {note}", file=sys.stderr)
        self.retrain, self.compile_mode, self.command = retrain, compile_mode, command
        self.prefit: dict[str, trainer.FitResult] = {}  # stages trained elsewhere as copies of a batched model
        self.batched: dict[str, int] = {}  # ... and how many copies that model had
        prepared = prepare(spec, self.data, self.device)
        self.tensors, self.x_test, self.y_test = prepared.tensors, prepared.x_test, prepared.y_test
        self.fill, self.info = prepared.fill, prepared.info
        self.folder = rundir.RunDir(settings.home / "runs", spec, self.data.checksum, self.device.type, resume)
        self.run_dir, self.state = self.folder.path, self.folder.state
        try:
            self.tracker = tracker or (Tracker(settings) if dd.leader() else Muted())
            self.experiment = self.tracker.experiment(spec.name)
        except BaseException:
            self.folder.release()
            raise
        self.tags = provenance.run_tags(spec, self.data, self.device, command, compile_mode, extra_tags)
        self.owns_parent = parent_run_id is None  # a sweep owns the parent of all its points
        if parent_run_id is not None:
            self.state["parent_run_id"] = parent_run_id
        if "parent_run_id" not in self.state:
            self.state["parent_run_id"] = self.tracker.start(self.experiment, f"{spec.name} ({spec.profile})",
                                                             self.tags)
            self.folder.save()
        elif self.owns_parent:  # resumed: RUNNING again, under this process
            self.tracker.reopen(self.state["parent_run_id"])
        self.parent = self.state["parent_run_id"]
        self.evaluation = Evaluation(spec, self.data, self.tracker, self.experiment, self.x_test, self.y_test,
                                     self.tensors)
        self.evaluation.parent = self.parent
        self.findings = self.evaluation.findings
        self.models: dict[str, torch.nn.Module] = {}
        self.method_states: dict[str, dict] = {}  # a stage's trained method parts, for `method_from:`

    # -- models -----------------------------------------------------------------------------------------
    def net(self, role: str, offset: int = 0) -> torch.nn.Module:
        """One net of a model; seeded by role and offset, so the baseline and every method start alike."""
        role_id = {"teacher": 1, "student": 2}.get(role) or 3 + sorted(self.spec.models).index(role)
        torch.manual_seed(self.spec.seed * 1_000 + role_id + 100 * offset)
        shape, classes = tuple(self.data.x_train.shape[1:]), len(self.data.classes)
        return nets.build(self.spec.model_spec(role).net, shape, classes).to(self.device)

    def build(self, stage: StageSpec, start: bool = True) -> torch.nn.Module:
        """A stage's model before training: one net, a cohort of peers, or the ensemble of earlier stages."""
        if stage.ensemble:
            return nets.Ensemble([self.trained(name) for name in stage.ensemble])
        if stage.peers > 1:
            model = nets.Cohort([self.net(stage.model, stage.seed_offset + 17 * i) for i in range(stage.peers)])
        else:
            model = self.net(stage.model, stage.seed_offset)
        if start and stage.init is not None:  # not when trained weights are loaded over it anyway
            model.load_state_dict(self.trained(stage.init).state_dict())
        return model

    def augment(self, role: str) -> Augment:
        m = self.spec.model_spec(role)
        return Augment(m.shift, m.flip, self.fill if m.shift else None, m.noise, m.pad == "reflect")

    def cache_file(self, stage: StageSpec) -> Path:
        """Keyed by what made the model (net, augmentation, recipe, data, seed, device), not by the template:
        ten methods on one pair train one teacher."""
        return cache.place(self.settings.cache_dir,
                           cache.file_name(self.spec.model_spec(stage.model).net.kind, self.lineage_key(stage)))

    def lineage_key(self, stage: StageSpec) -> str:
        """What made a stage's model: its own settings and, recursively, its teacher's, start's and members'."""
        spec = self.spec
        extra = [stage.seed_offset, stage.peers] if (stage.seed_offset, stage.peers) != (0, 1) else []
        extra += [f"omit={stage.omit_classes}"] if stage.omit_classes else []
        extra += [f"whiten={spec.whiten}"] if spec.whiten != "none" else []
        extra += [f"{k}={self.lineage_key(spec.stage(n))}" for k, n in
                  (("teacher", stage.teacher), ("init", stage.init), ("method_from", stage.method_from)) if n] + \
            [f"member={self.lineage_key(spec.stage(n))}" for n in stage.ensemble]
        return rundir.key(stage.model, spec.model_spec(stage.model).model_dump(), stage.method, spec.params_of(stage),
                          spec.train_of(stage).model_dump(), spec.normalize, self.data.checksum, spec.seed,
                          self.device.type, *extra, *rundir.world())

    def read_cache(self, stage: StageSpec) -> dict | None:
        return None if self.retrain else cache.read(self.cache_file(stage), self.device)

    def trained(self, name: str) -> torch.nn.Module:
        """The trained model of an earlier stage: in memory, saved in the run folder, cached, or trained now."""
        if name in self.models:
            return self.models[name]
        stage = self.spec.stage(name)
        if stage.ensemble:
            self.models[name] = self.build(stage)
            return self.models[name]
        saved = self.run_dir / f"{name}.weights.pt"
        cached = self.read_cache(stage) if self.spec.cached(stage) else None
        found = cached or (trainer.load_checkpoint(saved, self.device) if saved.exists() else None)
        if found is None:
            self.state["stages"][name] = asdict(self.train_stage(stage))
            self.folder.save()
            return self.models[name]
        model = self.build(stage, start=False)
        model.load_state_dict(found.get("state_dict", found))  # a run folder from before method states: weights
        self.models[name] = model
        self.method_states[name] = found.get("method_state") or {}
        return model

    def _take_method_parts(self, stage: StageSpec, objective) -> None:
        """`method_from:` the earlier stage's trained method parts whose names and shapes match this one's."""
        self.trained(stage.method_from)
        own = objective.state_dict()
        parts = {k: v for k, v in self.method_states.get(stage.method_from, {}).items()
                 if k in own and own[k].shape == v.shape}
        if not parts:
            raise PaperlabError(f"stage {stage.name!r}: the method of {stage.method_from!r} has no parts that "
                                f"{stage.method!r} can take")
        objective.load_state_dict(parts, strict=False)

    def method(self, stage: StageSpec, model, teacher, tensors: trainer.Tensors) -> distillers.Distiller:
        """The stage's method, sized by the stage's own transfer set: CRD's memory bank and negatives and mean
        teacher's labelled subset index the examples this stage trains on (a set without some classes is
        indexed afresh)."""
        params = distillers.parse_params(stage.method, self.spec.params_of(stage))
        info = replace(self.info, train_labels=tensors.y_train)
        return distillers.get(stage.method)(params, model, teacher, info).to(self.device)

    def transfer_set(self, stage: StageSpec) -> trainer.Tensors:
        if not stage.omit_classes:
            return self.tensors
        t = self.tensors
        keep = ~torch.isin(t.y_train, torch.tensor(stage.omit_classes, device=t.y_train.device))
        if not bool(keep.any()):
            raise PaperlabError(f"stage {stage.name!r}: omit_classes leaves no training examples")
        return replace(t, x_train=t.x_train[keep], y_train=t.y_train[keep])

    # -- stages -----------------------------------------------------------------------------------------
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
                results.append(StageResult(**done) if done else self.train_stage(stage))
                self.state["stages"][stage.name] = asdict(results[-1])
                self.folder.save()
        except BaseException:
            if self.owns_parent:
                self.tracker.finish_quietly(self.parent)
            self.folder.release()
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
        self.folder.release()

    def stage_tags(self, stage: StageSpec) -> dict[str, str]:
        return {**self.tags, "paperlab.stage": stage.name, "paperlab.role": stage.model,
                "paperlab.method": stage.method, "paperlab.taught_by": stage.teacher or "",
                "paperlab.net": self.spec.model_spec(stage.model).net.kind, "paperlab.init": stage.init or "",
                "paperlab.phase": str(any(s.init == stage.name for s in self.spec.stages)).lower(),
                **({"paperlab.batched_copies": str(self.batched[stage.name])} if stage.name in self.batched else {})}

    def train_stage(self, stage: StageSpec) -> StageResult:
        """Train one stage (or read it from the cache, or evaluate an ensemble), track it, keep its weights."""
        cacheable = self.spec.cached(stage)
        cached = self.read_cache(stage) if cacheable else None
        if cached is not None:
            return self._reuse(stage, cached)
        started = time.perf_counter()
        if stage.ensemble:
            model = self.trained(stage.name)  # an ensemble trains nothing: it is evaluated and tracked like any stage
            run_id = self.evaluation.start(stage.name, {**self.stage_tags(stage),
                                                        "paperlab.ensemble": ",".join(stage.ensemble)})
            self.tracker.params(run_id, flat_params(self.spec))
            return self.evaluation.finish(stage, run_id, model, self.evaluation.errors(model), 0, 0, started)
        run_id = self.state.get("running", {}).get(stage.name)
        if run_id:
            self.tracker.reopen(run_id)
        else:
            run_id = self.evaluation.start(stage.name, self.stage_tags(stage))
        self.state.setdefault("running", {})[stage.name] = run_id
        self.folder.save()
        try:
            model, objective, fit = self._fit(stage, run_id)
            self.tracker.metrics(run_id, {"train_seconds": sum(h.epoch_seconds for h in fit.history)})  # resumes too
            started -= sum(h.epoch_seconds for h in fit.history[:fit.resumed_epochs])  # wall: earlier sessions too
            ev = self.evaluation
            last_error = ev.errors(model)
            peers_last = [ev.errors(peer) for peer in model.peers] if stage.peers > 1 else []
            ev.shadows(stage, run_id, objective, last_error)
            model.load_state_dict(fit.best_state)
            if stage.shift_classes:
                ev.bias_shift(stage, run_id, model)
            result = ev.finish(stage, run_id, model, last_error, fit.best_epoch, len(fit.history), started)
            if stage.peers > 1:
                ev.peers(stage, model, self.stage_tags, peers_last)
        except BaseException:
            self.tracker.finish_quietly(run_id)
            raise
        self.models[stage.name] = model
        self.method_states[stage.name] = {k: v.detach().cpu() for k, v in objective.state_dict().items()}
        saved = {"state_dict": fit.best_state, "method_state": self.method_states[stage.name]}
        if dd.leader():  # under torchrun every rank holds the model; rank 0 keeps it
            if cacheable:
                cache.write({**saved, "result": asdict(result)}, self.cache_file(stage))
            elif any(stage.name in (s.teacher, s.init, s.method_from, *s.ensemble) for s in self.spec.stages):
                trainer.save_atomic(saved, self.run_dir / f"{stage.name}.weights.pt")
            (self.run_dir / f"{stage.name}.ckpt").unlink(missing_ok=True)
            from paperlab.lab import registry

            registry.register_stage(self.tracker, self.spec, stage, result, model, saved, self.data, self.x_test,
                                    self.cache_file(stage) if cacheable else None)
        dd.barrier()
        return result

    def _fit(self, stage: StageSpec, run_id: str):
        """The stage's model, method and training (resumed from its checkpoint; or a batched model's copy)."""
        model = self.build(stage)
        teacher = self.trained(stage.teacher) if stage.teacher else None
        tensors = self.transfer_set(stage)
        objective = self.method(stage, model, teacher, tensors)
        if stage.method_from is not None:
            self._take_method_parts(stage, objective)
        if teacher is not None and teacher_logits_once(objective, self.spec.model_spec(stage.model)):
            tensors = replace(tensors, teacher_train=trainer.predict(teacher, tensors.x_train))
            teacher = None
        self.tracker.params(run_id, flat_params(self.spec))
        log = lambda e: self.tracker.metrics(run_id, {  # noqa: E731
            "train_loss": e.train_loss, "val_error": e.val_error, "val_acc": e.val_acc, "lr": e.lr,
            "epoch_seconds": e.epoch_seconds, "samples_per_s": e.samples_per_s,
            **{f"loss_{k}": v for k, v in e.terms.items()},
            **{f"val_error_{k}": v for k, v in e.shadow_val_errors.items()}}, step=e.epoch)
        if stage.name in self.prefit:  # trained already, as one copy of a batched model (lab/batched.py)
            fit = self.prefit.pop(stage.name)
            for entry in fit.history:
                log(entry)
            model.load_state_dict(fit.last_state)
        else:
            fit = trainer.fit(model, objective, tensors, self.spec.train_of(stage), seed=self.spec.seed,
                              label=stage.name, augment=self.augment(stage.model), teacher=teacher,
                              checkpoint=self.run_dir / f"{stage.name}.ckpt", resume=True, on_epoch=log,
                              compile_mode=self.compile_mode)
        return model, objective, fit

    def _reuse(self, stage: StageSpec, cached: dict) -> StageResult:
        started = time.perf_counter()
        model = self.build(stage, start=False)
        model.load_state_dict(cached["state_dict"])
        self.models[stage.name] = model
        self.method_states[stage.name] = cached.get("method_state") or {}
        run_id = self.evaluation.start(stage.name, {
            **self.stage_tags(stage), "paperlab.reused": "true", "paperlab.reused_from": cached["result"]["run_id"]})
        self.tracker.params(run_id, flat_params(self.spec))
        last_error = cached["result"]["test_error_last"]  # the cached weights are the best epoch's
        if distillers.get(stage.method).shadows is not distillers.Distiller.shadows and cached.get("method_state"):
            objective = self.method(stage, model, self.trained(stage.teacher) if stage.teacher else None,
                                    self.transfer_set(stage))  # its shadows as they were at the last epoch
            objective.load_state_dict(cached["method_state"])
            self.evaluation.shadows(stage, run_id, objective, last_error)
        result = self.evaluation.finish(stage, run_id, model, last_error, cached["result"]["best_epoch"], 0, started,
                                        reused=True)
        if stage.peers > 1:  # a reused cohort still shows one child run per peer
            self.evaluation.peers(stage, model, self.stage_tags)
        return result
