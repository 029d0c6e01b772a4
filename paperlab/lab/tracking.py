"""The module that talks to MLflow's tracking (lab/registry.py does its model registry): one experiment per
template, a parent run per `paperlab run`, a child run per stage. Explicit run IDs through MlflowClient (no
global active run), metrics in batches."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from paperlab.errors import PaperlabError
from paperlab.settings import Settings

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no progress bars in our output
# MLflow's own default retries an unreachable server for minutes; a user should hear within seconds
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


def _reason(uri: str, exc: Exception) -> str:
    from paperlab.settings import redact

    uri, text = redact(uri), redact(str(exc))
    if "Max retries exceeded" in text or "Connection refused" in text or "ConnectionError" in text:
        return f"cannot reach the MLflow tracking server at {uri} (is it running? MLFLOW_TRACKING_URI sets it)"
    return f"MLflow at {uri} failed: {text.splitlines()[0][:200]}"


EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
# A view of the runs table that MLflow's UI opens from `?viewStateShareKey=paperlab` (an experiment tag, as its
# own "share view" writes them): the stage runs flat, best first, with their test errors and roles as columns.
SHARED_VIEW = ("mlflow.sharedViewState.paperlab", json.dumps({
    "searchFilter": "metrics.test_error >= 0", "orderByKey": "metrics.`test_error`", "orderByAsc": True,
    "selectedColumns": ["attributes.`Dataset`", "metrics.`test_error`", "metrics.`test_acc`", "metrics.`wall_seconds`",
                        "tags.`paperlab.role`", "tags.`paperlab.method`", "tags.`paperlab.seed`",
                        "tags.`paperlab.profile`"]}))


def _process_started(pid: int) -> str:
    """When a process started (Linux /proc, in clock ticks since boot), so a reused PID is not taken for it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def process_tags() -> dict[str, str]:
    """Who is running a run: checked by `reap_stale` in later commands."""
    import socket

    return {"paperlab.host": socket.gethostname(), "paperlab.pid": str(os.getpid()),
            "paperlab.pid_started": _process_started(os.getpid())}


def _alive(pid: str, started: str) -> bool:
    if not pid.isdigit():
        return True  # not ours to judge
    if started:
        return _process_started(int(pid)) == started
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _literal(value: str) -> str:
    """A string for an MLflow search filter. Its grammar has no escape for quotes, so a value holding one
    cannot be searched for and is refused rather than allowed to change the filter."""
    if "'" in value or "\\" in value or any(ord(c) < 32 for c in value):
        from paperlab.errors import BadInput

        raise BadInput(f"cannot search runs for {value[:80]!r}: quotes, backslashes and control characters are not "
                       f"allowed in template names or paper IDs")
    return f"'{value}'"


class Tracker:
    def __init__(self, settings: Settings):
        from mlflow.tracking import MlflowClient  # an explicit client: mlflow.set_tracking_uri would leak
        # its URI into os.environ (MLFLOW_TRACKING_URI) for everything else this process does

        # (after MLflow's import configured it) MLflow logs every store error it then raises (a full disk gave
        # ~700 lines) and its table migrations at INFO: paperlab reports errors itself, in one line
        logging.getLogger("mlflow").setLevel(logging.DEBUG if "--debug" in sys.argv else logging.CRITICAL)

        self.settings = settings
        self.uri = settings.mlflow_uri
        self.local = self.uri.startswith("sqlite:")
        if self.local:
            settings.home.mkdir(parents=True, exist_ok=True)
            from filelock import FileLock

            with FileLock(str(settings.home / "mlflow.db.lock"), timeout=300):  # first use migrates the store
                self._warn_if_emptied()
                try:
                    self.client = MlflowClient(tracking_uri=self.uri)
                    self.client.search_experiments(max_results=1)
                except Exception as exc:
                    raise PaperlabError(self._damaged(exc)) from exc
        else:
            try:
                self.client = MlflowClient(tracking_uri=self.uri)
            except Exception as exc:  # an unknown scheme: MLflow's message is a paragraph
                from paperlab.settings import redact

                raise PaperlabError(f"MLFLOW_TRACKING_URI={redact(self.uri)!r} is not a tracking URI MLflow can use "
                                    "(http://host:port of an MLflow server, sqlite:///file.db, postgresql://...)") from exc
            try:
                self.client.search_experiments(max_results=1)
            except Exception as exc:  # MLflow wraps connection errors in its own exception types
                raise PaperlabError(_reason(self.uri, exc)) from exc
        try:
            self.reap_stale()
        except Exception:  # best effort: a read-only or full store still lets the command read
            pass

    @property
    def store_path(self) -> Path:
        return Path(self.uri.removeprefix("sqlite:///").split("?", 1)[0])

    def _damaged(self, exc: Exception) -> str:
        """Name the MLflow store, not the library: a user told "paperlab.db is damaged" might delete it."""
        text = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
        if "not a database" in text or "malformed" in text or "no such table" in text:
            return (f"the MLflow tracking store {self.store_path} is damaged ({text}); the paper library is not "
                    f"affected. Move that file aside to start a new store (the runs in it are lost) or restore it")
        return _reason(self.uri, exc)

    def _warn_if_emptied(self) -> None:
        """A 0-byte store beside the artifacts of earlier runs: say that their records are gone."""
        path, artifacts = self.store_path, self.settings.artifacts_dir
        if path.exists() and path.stat().st_size == 0 and artifacts.is_dir() and any(artifacts.iterdir()):
            print(f"warning: the MLflow tracking store {path} is empty (0 bytes) although {artifacts} holds the "
                  "artifacts of earlier runs: their records are lost; a new store starts here", file=sys.stderr)

    def experiment(self, name: str) -> str:
        """The template's experiment, tagged as model development so that MLflow 3's UI opens on its runs
        table rather than on the GenAI overview."""
        try:
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                for key, value in (EXPERIMENT_KIND, SHARED_VIEW):
                    if found.tags.get(key) != value:
                        self.client.set_experiment_tag(found.experiment_id, key, value)
                return found.experiment_id
            location = (self.settings.artifacts_dir / name).absolute().as_uri() if self.local else None
            return self.client.create_experiment(name, artifact_location=location,
                                                 tags=dict([EXPERIMENT_KIND, SHARED_VIEW]))
        except Exception as exc:  # MLflow raises many types; the user needs the URI and the reason
            raise PaperlabError(_reason(self.uri, exc)) from exc

    def reap_stale(self) -> int:
        """Runs left RUNNING by a process of this machine that is gone (kill -9, a crash, a full disk that
        kept even FAILED from being written) are marked KILLED, with a tag saying why."""
        import socket

        host = socket.gethostname()
        stale = [r for r in self._search(["attributes.status = 'RUNNING'", "tags.`paperlab.host` = " + _literal(host)])
                 if not _alive(r.data.tags.get("paperlab.pid", ""), r.data.tags.get("paperlab.pid_started", ""))]
        for run in stale:
            self.client.set_tag(run.info.run_id, "paperlab.stale", "its process ended without finishing it")
            self.client.set_terminated(run.info.run_id, status="KILLED")
        if stale:
            print(f"note: {len(stale)} runs left RUNNING by a process that is gone are now marked KILLED "
                  "(`paperlab run ... --resume` continues them)", file=sys.stderr)
        return len(stale)

    def reopen(self, run_id: str) -> None:
        """A resumed run is RUNNING again, and owned by this process."""
        self.tags(run_id, process_tags())
        self.client.update_run(run_id, status="RUNNING")

    def start(self, experiment_id: str, name: str, tags: dict[str, str], parent: str | None = None) -> str:
        tags = {**process_tags(), **tags, "mlflow.runName": name}
        if parent:
            tags["mlflow.parentRunId"] = parent
        return self.client.create_run(experiment_id, tags=tags, run_name=name).info.run_id

    def dataset(self, run_id: str, name: str, digest: str, source: str, profile: dict[str, Any]) -> None:
        """The run's data as an MLflow dataset input: name, digest (our SHA-256), where it came from."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        entity = Dataset(name=name, digest=digest[:36], source_type="local" if "://" not in source else "http",
                         source=json.dumps({"uri": source}), profile=json.dumps(profile))
        self.client.log_inputs(run_id, [DatasetInput(entity, [InputTag("mlflow.data.context", "training")])])

    def params(self, run_id: str, params: dict[str, Any]) -> None:
        """Log params, leaving out those the run holds already: MLflow refuses to change one, and a resumed
        run logs its recipe again (runs before 2026-11-29 also logged their title and time estimate, which a
        template may have corrected since)."""
        from mlflow.entities import Param

        held = self.client.get_run(run_id).data.params
        items = [Param(k[:250], str(v)[:6000]) for k, v in params.items() if k[:250] not in held]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i:i + 100])

    def metrics(self, run_id: str, values: dict[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, step or 0) for k, v in values.items()])

    def tags(self, run_id: str, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def artifacts(self, run_id: str, folder: Path) -> None:
        self.client.log_artifacts(run_id, str(folder))

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def finish_quietly(self, run_id: str) -> None:
        """Called in an `except` block: mark the run KILLED (Ctrl-C) or FAILED while that error is on its way
        up; if the store cannot be written either (a full disk), that error is the one to report, and the run
        is reaped as stale when next seen."""
        try:
            self.finish(run_id, "KILLED" if sys.exc_info()[0] is KeyboardInterrupt else "FAILED")
        except Exception:
            pass

    def _search(self, filters: list[str]) -> list:
        experiments = [e.experiment_id for e in self.client.search_experiments()]
        if not experiments:
            return []
        return self.client.search_runs(experiments, " and ".join(filters), order_by=["attributes.start_time DESC"],
                                       max_results=5000)

    def runs(self, template: str | None = None, paper: str | None = None, run_ids: list[str] | None = None,
             details: bool = False) -> list[dict[str, Any]]:
        """Stage runs (children), newest first, as plain dicts; run_ids may name stage or parent runs."""
        filters = ["tags.`paperlab.stage` != ''"]
        if template:
            filters.append(f"tags.`paperlab.template` = {_literal(template)}")
        if paper:
            filters.append(f"tags.`paperlab.paper` = {_literal(paper)}")
        found = self._search(filters)
        if run_ids is not None:
            wanted = set(run_ids)
            found = [r for r in found if r.info.run_id in wanted or r.data.tags.get("mlflow.parentRunId") in wanted]
        return [self._as_dict(r, details) for r in found]

    @staticmethod
    def _as_dict(r, details: bool) -> dict[str, Any]:
        tags = r.data.tags
        out = {"run_id": r.info.run_id, "parent_run_id": tags.get("mlflow.parentRunId"),
               "template": tags.get("paperlab.template"), "paper": tags.get("paperlab.paper"),
               "profile": tags.get("paperlab.profile"), "stage": tags.get("paperlab.stage"),
               "status": r.info.status, "test_error": r.data.metrics.get("test_error"),
               "test_acc": r.data.metrics.get("test_acc"), "best_epoch": r.data.metrics.get("best_epoch"),
               "start_time": r.info.start_time}
        if details:
            out.update(params=dict(r.data.params), metrics=dict(r.data.metrics),
                       tags={k: v for k, v in tags.items() if not k.startswith("mlflow.")}, data_source=_source(r))
        return out

    def history(self, run_id: str, metric: str) -> list[tuple[int, float]]:
        """(step, value) by step, each step once: its newest value (an epoch cut short by kill -9 was logged,
        then trained and logged again by the resumed run)."""
        newest = {m.step: m.value for m in sorted(self.client.get_metric_history(run_id, metric),
                                                     key=lambda m: m.timestamp)}
        return sorted(newest.items())

    def download(self, run_id: str, path: str, folder: Path) -> Path | None:
        """One artifact of a run into `folder`, or None when the run has no such file."""
        try:
            return Path(self.client.download_artifacts(run_id, path, str(folder)))
        except Exception:  # an absent artifact raises different types per store
            return None


class Muted:
    """The tracker of a torchrun worker other than rank 0 (lab/distributed.py): rank 0 tracks for all, so
    every call here does nothing; a run's id is a placeholder."""

    def start(self, *_, **__) -> str:
        return "untracked"

    def experiment(self, _name: str) -> str:
        return "untracked"

    def __getattr__(self, _name: str):
        return lambda *_, **__: None


def _source(run) -> str | None:
    """Where the run read its data (the folder or URL of its MLflow dataset input), or None."""
    inputs = run.inputs.dataset_inputs if run.inputs else []
    try:
        return json.loads(inputs[0].dataset.source)["uri"] if inputs else None
    except (ValueError, KeyError, TypeError):
        return None
