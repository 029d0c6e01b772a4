"""Experiment templates: YAML in templates/experiments, a profile merged in, `--set` overrides applied,
then validated (pydantic). Unknown keys are refused with the valid ones and the closest match."""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from paperlab.errors import BadInput

Stage = Literal["teacher", "student", "kd"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NetSpec(Strict):
    kind: Literal["mlp"] = "mlp"
    hidden: list[int] = Field(min_length=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    input_dropout: float = Field(0.0, ge=0, lt=1)
    max_norm: float | None = Field(None, gt=0)


class ModelSpec(Strict):
    net: NetSpec
    jitter: int = Field(0, ge=0, le=8)


class TrainSpec(Strict):
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(gt=0)
    epochs: int = Field(gt=0)
    schedule: Literal["cosine", "constant"] = "cosine"
    val_size: int = Field(gt=0)


class DistillSpec(Strict):
    temperature: float = Field(gt=0)
    alpha: float = Field(ge=0, le=1)


class Claim(Strict):
    stage: Stage
    metric: Literal["test_error"] = "test_error"
    value: float
    tolerance: float = Field(ge=0)
    dataset: str
    source: str = ""


class RunSpec(Strict):
    name: str
    title: str
    paper: str
    method: str
    dataset: str
    stages: list[Stage] = Field(min_length=1)
    seed: int = 0
    teacher: ModelSpec
    student: ModelSpec
    train: TrainSpec
    distill: DistillSpec
    claims: list[Claim] = []
    estimate_minutes: dict[str, float] = {}
    profile: str = "paper"


def _experiments_dir() -> Path:
    from paperlab.resources import templates_dir

    return templates_dir() / "experiments"


def template_names(check: str | None = None) -> list[str]:
    names = sorted(p.stem for p in _experiments_dir().glob("*.yaml"))
    if check is not None and check not in names:
        close = difflib.get_close_matches(check, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise BadInput(f"unknown template {check!r}{hint} (templates: {', '.join(names)})")
    return names


def raw(name: str) -> dict[str, Any]:
    import yaml

    template_names(check=name)
    return yaml.safe_load((_experiments_dir() / f"{name}.yaml").read_text(encoding="utf-8"))


def _merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _model_at(path: list[str]) -> type[BaseModel] | None:
    model: Any = RunSpec
    for part in path:
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return None
        model = field.annotation
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _explain(exc: ValidationError) -> BadInput:
    err = exc.errors()[0]
    path = [str(p) for p in err["loc"]]
    dotted = ".".join(path)
    if err["type"] == "extra_forbidden":
        parent = _model_at([p for p in path[:-1] if not p.isdigit()])
        valid = sorted(parent.model_fields) if parent else []
        close = difflib.get_close_matches(path[-1], valid, n=1)
        hint = f"; did you mean {'.'.join(path[:-1] + [close[0]])!r}?" if close else ""
        return BadInput(f"unknown key {dotted!r}{hint} (valid keys: {', '.join(valid)})")
    return BadInput(f"bad value for {dotted!r}: {err['msg']} (got {err.get('input')!r})")


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--set takes key=value, got {pair!r}")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise BadInput(f"cannot read the value of {pair!r}: {exc}") from exc
    return out


def load(name: str, profile: str = "paper", sets: dict[str, Any] | None = None) -> RunSpec:
    """The template with its profile merged in and overrides applied, validated."""
    data = raw(name)
    profiles = data.pop("profiles", {}) or {}
    if profile not in profiles:
        raise BadInput(f"template {name!r} has no profile {profile!r} (profiles: {', '.join(profiles)})")
    data = _merge(data, profiles[profile] or {})
    data["profile"] = profile
    for key, value in (sets or {}).items():
        parts = key.split(".")
        node = data
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {} if part not in node else node[part]
            if not isinstance(node[part], dict):
                raise BadInput(f"unknown key {key!r}: {part!r} holds a value, not keys")
            node = node[part]
        node[parts[-1]] = value
    try:
        return RunSpec.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc) from exc


def resolved_yaml(spec: RunSpec) -> str:
    import yaml

    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """{'train.lr': '0.01', ...} for MLflow params."""
    if isinstance(data, dict):
        out: dict[str, str] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): str(data)}
