"""`paperlab sweep --study NAME`: one sweep shared by workers on several machines, through Optuna's RDB
storage (PostgreSQL for a team, or an SQLite file on one machine) rather than a queue of our own.

Why Optuna and not Ray: a sweep here is a list of known points, each a whole `paperlab run` that already
checkpoints, resumes and logs itself; what is missing is only who runs which point, and what happens to the
point of a worker that dies. Optuna's storage is a database the team already has, workers are plain
commands started anywhere (no cluster to stand up), and it has both parts: enqueued trials are claimed one
worker each (a WAITING trial becomes RUNNING in one transaction), and a worker's heartbeat lets the others
fail its trial when it stops beating and enqueue the same point again (RetryFailedTrialCallback). Ray would
bring a cluster, its own scheduler and object store for work that needs none of them.

The first worker enqueues every (grid point, seed) as a trial with fixed parameters and opens the sweep's
MLflow parent run (under an exclusive lock); every worker then claims WAITING trials until none is left
and none is running. Each point is a `Run` under the shared parent: its stages are the parent's child runs.
"""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
from contextlib import contextmanager
from typing import Any, Iterator

from paperlab.errors import BadInput, PaperlabError
from paperlab.lab.pipeline import Run
from paperlab.lab.sweep import SweepPoint, point_label, points
from paperlab.lab.templates import load
from paperlab.settings import Settings, normalise_db_url

def _heartbeat() -> float:
    """PAPERLAB_SWEEP_HEARTBEAT in seconds (a dead worker is noticed after 3 beats), or one line naming it."""
    import math

    from paperlab.errors import BadInput

    text = os.environ.get("PAPERLAB_SWEEP_HEARTBEAT", "30")
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value < 1:
        raise BadInput(f"PAPERLAB_SWEEP_HEARTBEAT={text[:20]!r}: give the heartbeat in seconds, 1 or more")
    return value
RETRIES = 3


def storage_url(settings: Settings, given: str | None) -> str:
    """--storage, or an SQLite file in the workspace (workers on this machine only)."""
    if given:
        return normalise_db_url(given)
    return f"sqlite:///{settings.home / 'sweeps.db'}"


@contextmanager
def _exclusive(url: str) -> Iterator[None]:
    """One worker at a time sets a study up: PostgreSQL's advisory lock, or a file lock beside SQLite."""
    if url.startswith("sqlite:///"):
        from filelock import FileLock

        with FileLock(url[len("sqlite:///"):] + ".lock", timeout=300):
            yield
        return
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": 0x7377_6565})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": 0x7377_6565})
    finally:
        engine.dispose()


def _open(name: str, url: str):
    try:
        import optuna
    except ModuleNotFoundError as exc:
        raise PaperlabError("a shared sweep (--study) needs Optuna: pip install 'paperlab[team]'") from exc
    from optuna.storages import RDBStorage, RetryFailedTrialCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # heartbeats with our own claim loop (ask/tell), not Study.optimize: Optuna warns that it prefers the latter
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    try:
        storage = RDBStorage(url, heartbeat_interval=max(1, int(_heartbeat())), grace_period=int(3 * _heartbeat()),
                             failed_trial_callback=RetryFailedTrialCallback(max_retry=RETRIES))
    except Exception as exc:
        from paperlab.library.db import shown_url

        raise PaperlabError(f"cannot open the sweep storage {shown_url(url)}: "
                            f"{str(exc).splitlines()[0][:200]}") from exc
    return optuna.create_study(study_name=name, storage=storage, load_if_exists=True), storage


class _Heartbeat:
    """Records the claimed trial's heartbeat while its point trains."""

    def __init__(self, storage, trial_id: int):
        self.storage, self.trial_id, self.done = storage, trial_id, threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self.done.wait(_heartbeat()):
            self.storage.record_heartbeat(self.trial_id)

    def __enter__(self) -> "_Heartbeat":
        self.storage.record_heartbeat(self.trial_id)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def run_study(study_name: str, url: str, name: str, profile: str, base_sets: dict[str, Any],
              grid: dict[str, list[Any]], seeds: int, settings: Settings, device: str, data_dir,
              command: str) -> tuple[str, list[SweepPoint]]:
    """Work on the shared sweep until every point has run (here or elsewhere); the points run here."""
    from optuna.trial import TrialState

    _heartbeat()  # a bad PAPERLAB_SWEEP_HEARTBEAT is named before any storage is opened

    todo = [(overrides, seed) for overrides in points(grid) for seed in range(seeds)]
    specs = [load(name, profile, {**base_sets, **o, "seed": s}) for o, s in todo]  # all validated up front
    described = json.dumps({"template": name, "profile": profile, "sets": base_sets, "grid": grid, "seeds": seeds},
                           sort_keys=True, default=str)
    with _exclusive(url):
        study, storage = _open(study_name, url)
        attrs = study.user_attrs
        if "sweep" not in attrs:
            from paperlab.lab.tracking import Tracker

            tracker = Tracker(settings)
            parent = tracker.start(tracker.experiment(name), f"{name} ({profile}) study {study_name}",
                                   {"paperlab.template": name, "paperlab.profile": profile,
                                    "paperlab.sweep": ",".join(grid), "paperlab.study": study_name,
                                    "paperlab.command": command, "paperlab.pid": "study"})  # outlives any worker
            for i in range(len(todo)):
                study.enqueue_trial({"point": i})
            study.set_user_attr("parent_run_id", parent)
            study.set_user_attr("sweep", described)
        elif attrs["sweep"] != described:
            raise BadInput(f"study {study_name!r} holds another sweep ({attrs['sweep'][:200]}); use another "
                           "--study name for this one")
    parent = study.user_attrs["parent_run_id"]
    from optuna.storages import fail_stale_trials

    done: list[SweepPoint] = []
    while True:
        fail_stale_trials(study)
        states = [t.state for t in study.get_trials(deepcopy=False)]
        if TrialState.WAITING not in states:
            if TrialState.RUNNING not in states:
                break
            time.sleep(min(_heartbeat(), 5))  # another worker's point: wait for it to end, or to go stale
            continue
        trial = study.ask()
        if "fixed_params" not in storage.get_trial_system_attrs(trial._trial_id):  # the queue emptied meanwhile
            study.tell(trial, state=TrialState.PRUNED)
            continue
        index = trial.suggest_int("point", 0, len(todo) - 1)
        overrides, seed = todo[index]
        try:
            with _Heartbeat(storage, trial._trial_id):
                run = Run(specs[index], settings, device, data_dir, resume=True, command=command,
                          parent_run_id=parent, extra_tags={"paperlab.sweep": ",".join(grid),
                                                            "paperlab.study": study_name})
                run.tags["paperlab.sweep_point"] = point_label(overrides, seed)
                stages = run.run_all().stages
        except BaseException:
            study.tell(trial, state=TrialState.FAIL)
            raise
        study.tell(trial, stages[-1].test_error)
        done.append(SweepPoint(overrides, seed, stages))
    complete = {t.params.get("point") for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    if complete >= set(range(len(todo))):
        from paperlab.lab.tracking import Tracker

        Tracker(settings).finish(parent)
    return parent, done
