"""Trained teachers and distilled students in MLflow's model registry, so that a team trains each teacher
once: `paperlab run` registers them; `paperlab teachers list|pull` finds them on a shared tracking server and
puts a teacher into this machine's cache, where the next run reuses it.

The registered model is a pyfunc (lab/mlflow_model.py, logged as code) with a signature; its artifacts are
paperlab's own cache file (tensors and plain data, read with weights_only=True) and a JSON of the net."""

from __future__ import annotations

import io
import json
import re
import tempfile
import warnings
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, Iterator

from paperlab.errors import BadInput, NotFound, PaperlabError


def model_name(template: str, role: str, net: str, dataset: str) -> str:
    """e.g. kd-hinton.teacher.cnn.digits"""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{template}.{role}.{net}.{dataset}")


@contextmanager
def _fluent_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's model logging works through its global tracking URI, and setting that also writes
    MLFLOW_TRACKING_URI into os.environ: both are put back as they were, so nothing else in this process
    (the next command of a test, paperlab's own settings) sees another store."""
    import os

    from mlflow.tracking._tracking_service import utils

    saved_env, saved_uri = os.environ.get("MLFLOW_TRACKING_URI"), utils._tracking_uri
    utils.set_tracking_uri(uri)
    try:
        yield
    finally:
        utils._tracking_uri = saved_uri
        if saved_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved_env


def register(tracker, run_id: str, name: str, weights: Path, about: dict[str, Any], example, tags: dict[str, str]) -> str:
    """Log the model on its run and register it as a new version of `name`; the version number."""
    import mlflow
    from mlflow.models import infer_signature

    with tempfile.TemporaryDirectory() as tmp:
        about_file = Path(tmp) / "about.json"
        about_file.write_text(json.dumps(about), encoding="utf-8")
        logits = example["logits"]
        signature = infer_signature(example["images"], logits)
        with _fluent_tracking_uri(tracker.uri):  # MLflow prints "Successfully registered model ...": kept quiet
            with mlflow.start_run(run_id=run_id), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()), \
                    warnings.catch_warnings():
                warnings.simplefilter("ignore")  # its advice to log an input example as well
                info = mlflow.pyfunc.log_model(
                    name="model", python_model=str(Path(__file__).with_name("mlflow_model.py")),
                    artifacts={"weights": str(weights), "about": str(about_file)}, signature=signature,
                    pip_requirements=["paperlab", "torch"], registered_model_name=name)
    client = tracker.client
    version = str(info.registered_model_version)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_tag(name, "paperlab.role", tags.get("paperlab.role", ""))
    return version


def register_stage(tracker, spec, stage, result, model, saved: dict, data, x_test, cache: Path | None) -> None:
    """A trained teacher or distilled student of a run, as a new version of its registered model; a store
    without a registry costs a warning, not the run. `cache`: the stage's file in the model cache, if any."""
    import sys
    from dataclasses import asdict

    import torch

    from paperlab.lab import trainer

    import os

    if os.environ.get("PAPERLAB_REGISTER", "1").strip().lower() in ("0", "false", "no", "off"):
        return  # MLflow's log_model takes 2-7 s a model: a user (or a test) may keep the registry out of it
    role = "teacher" if stage.model == "teacher" and not stage.teacher else \
        "student" if stage.model == "student" and stage.teacher else None
    if role is None or stage.peers > 1 or stage.ensemble or spec.whiten != "none":
        return  # whitened inputs: the registered model would need the fitted transform, which it does not carry
    net = spec.model_spec(stage.model).net
    mean, std = data.stats() if spec.normalize else ((), ())
    about = {"net": net.model_dump(), "shape": list(data.x_train.shape[1:]), "classes": len(data.classes),
             "mean": list(mean), "std": list(std)}
    example = {"images": data.x_test[:2], "logits": trainer.predict(model, x_test[:2]).cpu().numpy()}
    tags = {"paperlab.role": role, "paperlab.template": spec.name, "paperlab.profile": spec.profile,
            "paperlab.seed": str(spec.seed), "paperlab.stage": stage.name, "test_error": str(result.test_error),
            "paperlab.cache_key": cache.name if cache else ""}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            weights = cache or Path(tmp) / f"{stage.name}.pt"
            if cache is None:
                torch.save({**saved, "result": asdict(result)}, weights)
            register(tracker, result.run_id, model_name(spec.name, role, net.kind, spec.dataset), weights, about,
                     example, tags)
    except Exception as exc:  # e.g. a tracking server without a registry
        print(f"warning: {stage.name} was not registered in MLflow's model registry "
              f"({type(exc).__name__}: {str(exc).splitlines()[0][:150] if str(exc) else ''})", file=sys.stderr)


def teachers(tracker) -> list[dict[str, Any]]:
    """Every registered teacher version, newest first, with what made it."""
    out = []
    for model in tracker.client.search_registered_models(max_results=1000):
        if model.tags.get("paperlab.role") != "teacher":
            continue
        quote = next((q for q in ("'", '"') if q not in model.name), None)
        if quote is None:  # a name no filter can hold: leave it out, not the whole team's list
            continue
        for version in tracker.client.search_model_versions(f"name = {quote}{model.name}{quote}"):
            out.append({"name": model.name, "version": int(version.version), "run_id": version.run_id,
                        "cache_key": version.tags.get("paperlab.cache_key"), "seed": version.tags.get("paperlab.seed"),
                        "profile": version.tags.get("paperlab.profile"), "test_error": version.tags.get("test_error"),
                        "created": version.creation_timestamp})
    return sorted(out, key=lambda v: (v["name"], -v["version"]))


def _fits(weights: dict, folder: Path, target: Path) -> str | None:
    """Why the pulled weights cannot be the net they are registered as (None: they fit): they must load into
    the net their about.json names, and have the keys and shapes of the cached file they would replace."""
    import torch
    from pydantic import TypeAdapter

    from paperlab.lab.nets import build
    from paperlab.lab.spec import NetSpec

    state = weights["state_dict"]
    about = next(folder.rglob("about.json"), None)
    try:
        if about is not None:
            info = json.loads(about.read_text(encoding="utf-8"))
            net = build(TypeAdapter(NetSpec).validate_python(info["net"]), tuple(info["shape"]), int(info["classes"]))
            net.load_state_dict(state)
        if target.exists():
            held = torch.load(target, map_location="cpu", weights_only=True)["state_dict"]
            if {k: tuple(v.shape) for k, v in held.items()} != {k: tuple(v.shape) for k, v in state.items()}:
                return "its tensors have other names or shapes than the cached teacher it would replace"
    except Exception as exc:  # a net that does not load them: RuntimeError, KeyError, a bad about.json
        return f"they do not load into the net it names ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    return None


def pull(tracker, cache_dir: Path, name: str, version: int | None = None) -> Path:
    """Download a teacher version's weights into this machine's teacher cache (checked, then moved into place).
    Its cache key is a tag anyone with the server's URL can set: only paperlab's own key format is written,
    only inside the cache, and only weights that fit the net replace a cached teacher."""
    import os

    import torch

    from paperlab.lab import teachers as cache

    found = [v for v in teachers(tracker) if v["name"] == name and (version is None or v["version"] == version)]
    if not found:
        raise NotFound(f"no registered teacher {name}{'' if version is None else f' version {version}'} "
                       "(`paperlab teachers list` shows them)")
    chosen = found[0]
    if not chosen["cache_key"]:  # a teacher stage run with `cache: false`: no cache entry to make
        raise BadInput(f"{name} version {chosen['version']} was not cached when it was trained (its stage said "
                       f"cache: false), so it has no place in the teacher cache; load it with "
                       f"mlflow.pyfunc.load_model('models:/{name}/{chosen['version']}')")
    try:
        target = cache.place(cache_dir, chosen["cache_key"])
    except (ValueError, BadInput):
        shown = chosen["cache_key"][:60].encode("unicode_escape").decode()
        raise PaperlabError(f"{name} version {chosen['version']} names the cache file {shown!r}, which is not a key "
                            "paperlab writes (NET-<16 hex digits>.pt): refused, nothing written") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        import mlflow

        # where the version's files are, asked of this store's own registry: a models:/ URI would be resolved
        # against MLflow's default registry (./mlflow.db of the current folder for a local store)
        source = tracker.client.get_model_version_download_uri(name, str(chosen["version"]))
        folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=tmp, tracking_uri=tracker.uri))
        weights = next(folder.rglob(chosen["cache_key"]), None) or next(folder.rglob("*.pt"), None)
        if weights is None:
            raise PaperlabError(f"{name} version {chosen['version']} holds no weights file")
        try:
            saved = torch.load(weights, map_location="cpu", weights_only=True)  # tensors and plain data only
        except Exception as exc:  # pickle.UnpicklingError and its paragraph suggesting weights_only=False
            raise PaperlabError(f"{name} version {chosen['version']} is not a paperlab teacher: its weights file "
                                f"holds more than tensors and plain data ({type(exc).__name__}); refused, nothing "
                                "written") from None
        if not isinstance(saved, dict) or "state_dict" not in saved or "result" not in saved:
            raise PaperlabError(f"{name} version {chosen['version']} is not a paperlab teacher")
        unfit = _fits(saved, folder, target)
        if unfit:
            raise PaperlabError(f"{name} version {chosen['version']} was not pulled: {unfit}; the cached teacher "
                                "is left as it was")
        os.replace(weights, target)
    return target
