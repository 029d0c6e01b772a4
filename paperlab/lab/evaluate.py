"""A stage's numbers and files once it has trained: test errors (best and last epoch), the models a method
trains beside the student (shadows), a bias shift chosen on validation, one child run per peer of a cohort;
metrics, artifacts and the child run itself, through lab/tracking.py."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from paperlab.lab import distributed as dd
from paperlab.lab import nets, trainer
from paperlab.lab.spec import RunSpec, StageSpec


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


def flat_params(spec: RunSpec) -> dict[str, str]:
    """The recipe as MLflow params: what the run's key holds (title, claims and the time estimate left out,
    so that a run resumed after they were corrected logs the same params again)."""
    from paperlab.lab.templates import DESCRIPTIVE_KEYS, flatten

    data = spec.model_dump(mode="json", exclude=DESCRIPTIVE_KEYS)
    data["stages"] = ",".join(s["name"] for s in data["stages"])
    return flatten(data)


class Evaluation:
    """Test numbers and tracking of one run's stages: its tracker, experiment and parent run, the test split."""

    def __init__(self, spec: RunSpec, data, tracker, experiment: str, x_test, y_test, tensors):
        self.spec, self.data, self.tracker, self.experiment = spec, data, tracker, experiment
        self.x_test, self.y_test, self.tensors = x_test, y_test, tensors
        self.parent = ""
        self.findings: list[str] = []  # measured after training (a bias shift), for the end-of-run table

    def errors(self, model) -> int:
        return int((trainer.predict(model, self.x_test).argmax(1) != self.y_test).sum())

    def start(self, name: str, tags: dict[str, str]) -> str:
        """A stage's child run, with the data it used logged as an MLflow dataset input (the UI's Dataset
        column)."""
        run_id = self.tracker.start(self.experiment, name, tags, parent=self.parent)
        data = self.data
        self.tracker.dataset(run_id, name=data.name, digest=data.checksum, source=data.origin,
                             profile={"train": int(len(data.y_train)), "test": int(len(data.y_test)),
                                      "classes": len(data.classes), "shape": list(data.x_train.shape[1:])})
        return run_id

    def shadows(self, stage: StageSpec, run_id: str, objective, student_last: int) -> None:
        """Test errors of the models a method trains beside the student, as they are at the last epoch."""
        for name, shadow in objective.shadows().items():
            errors = self.errors(shadow)
            self.tracker.metrics(run_id, {f"test_error_{name}_last": errors,
                                          f"test_acc_{name}_last": 1 - errors / len(self.y_test)})
            self.findings.append(f"{stage.name}: its {name} model makes {errors} test errors at the last epoch "
                                 f"(the student {student_last}; metric test_error_{name}_last)")

    def bias_shift(self, stage: StageSpec, run_id: str, model) -> None:
        """Shift the output bias of `shift_classes`, chosen on the validation split (lab/bias.py)."""
        from paperlab.lab import bias

        t = self.tensors
        metrics = bias.measure(trainer.predict(model, t.x_val), t.y_val, trainer.predict(model, self.x_test),
                               self.y_test, stage.shift_classes, stage.paper_shift)
        self.tracker.metrics(run_id, metrics)
        self.findings.append(bias.describe(stage.name, stage.shift_classes, stage.paper_shift, metrics))

    def finish(self, stage: StageSpec, run_id: str, model, last_error: int | None, best_epoch: int, epochs: int,
               started: float, reused: bool = False) -> StageResult:
        """Track a stage's test errors (its model holds the best epoch's weights; `last_error`: the last
        epoch's, None where unknown) and its files."""
        from paperlab.lab.templates import resolved_yaml

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

    def peers(self, stage: StageSpec, cohort, tags_of, last_errors: list[int] | None = None) -> None:
        """One child run per peer of a cohort, each with its own test errors (at the last epoch too where
        known: not for a cohort read from the cache)."""
        errors: list[str] = []
        for i, peer in enumerate(cohort.peers):
            peer_stage = stage.model_copy(update={"name": f"{stage.name}-peer{i + 1}", "peers": 1})
            run_id = self.start(peer_stage.name, {**tags_of(peer_stage), "paperlab.cohort": stage.name})
            self.tracker.params(run_id, flat_params(self.spec))
            done = self.finish(peer_stage, run_id, peer, last_errors[i] if last_errors else None, 0, 0,
                               time.perf_counter())
            errors.append(str(done.test_error))
        self.findings.append(f"{stage.name}: test errors per peer (one MLflow child run each): {', '.join(errors)}")
