"""Experiment templates: YAML in templates/experiments, a profile merged in, `--set` overrides applied, then
validated (spec.RunSpec, and each method's own `distill:` block) before anything runs. Unknown keys are
refused with the valid ones and the closest match. Nothing else in paperlab reads these YAML files."""

from __future__ import annotations

import copy
import difflib
import re
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from paperlab.errors import BadInput
from paperlab.lab.spec import NAME, RunSpec

TEXT_KEYS = {"name", "title", "paper", "method", "dataset", "pair"}  # read as written: 2101.00010 is not a float
FIXED_KEYS = {"profile": "--profile"}                        # set by the command line, never by --set
PAIR = "pair"  # `--pair T/S` (or `--set pair=T/S`): the template's settings and claims for that teacher/student


from paperlab.lab.template_files import (_experiments_dir, _read_yaml, _workspace_dir, by_paper, template_file,
                                          template_files, template_names)

__all__ = ["by_paper", "claims", "load", "pairs", "raw", "template_file", "template_files", "template_names"]


PLAIN_KEYS = {"name", "model", "seed_offset", "cache"}  # a stage with no more than these learns from labels alone


def raw(name: str) -> dict[str, Any]:
    """The template's YAML; `extends: BASE` merges it over bases/BASE.yaml. The base's claims come first,
    those of them whose stage the template trains as the base means it: from all the labels alone (mean
    teacher's `student` learns from 4,000 labels by its method, and it has no `teacher`)."""
    path, _ = template_file(name)
    data = _complete_claims(_read_yaml(path, repr(name)), name)
    base_name = data.pop("extends", None)
    if base_name is None:
        return data
    bases = [_workspace_dir() / "bases" / f"{base_name}.yaml", _experiments_dir() / "bases" / f"{base_name}.yaml"]
    base_file = next((b for b in bases if b.is_file()), None) if re.fullmatch(NAME, str(base_name)) else None
    if base_file is None:
        raise BadInput(f"template {name!r} extends {str(base_name)[:60]!r}, which is not a base "
                       f"(bases: {', '.join(sorted({b.stem for d in bases for b in d.parent.glob('*.yaml')}))})")
    base = _complete_claims(_read_yaml(base_file, f"bases/{base_name}"), f"bases/{base_name}")
    merged = _merge(base, data)
    plain = {s["name"] for s in merged.get("stages", []) if set(s) <= PLAIN_KEYS}
    merged["claims"] = [*[c for c in base.get("claims", []) if c["stage"] in plain], *data.get("claims", [])]
    return merged


def _complete_claims(data: Any, where: str) -> dict[str, Any]:
    """One file's claims, each row complete: `claim_defaults` under every row (metric, dataset, epoch, source
    ... said once), and a `pairs:` entry's claims with that entry's teacher and student nets."""
    if not isinstance(data, dict):
        raise BadInput(f"template {where!r} is not a mapping of keys to values")
    defaults = data.pop("claim_defaults", None) or {}
    claims = [{**defaults, **c} for c in data.get("claims") or []]
    for key, block in (data.get("pairs") or {}).items():
        teacher, student = split_pair(key, where)
        for claim in (block or {}).pop("claims", None) or []:
            claims.append({**defaults, "teacher_net": teacher, "student_net": student, **claim})
    data["claims"] = claims
    return data


def split_pair(pair: str, where: str = "--pair") -> tuple[str, str]:
    teacher, sep, student = str(pair).partition("/")
    if not sep or not re.match(NAME, teacher) or not re.match(NAME, student):
        raise BadInput(f"{where}: a pair is TEACHER/STUDENT, e.g. wrn_40_2/wrn_16_2 (got {str(pair)[:80]!r})")
    return teacher, student


def pairs(data: dict[str, Any]) -> list[str]:
    """The teacher/student pairs a template runs (under its paper profile), has settings for (`pairs:`) or
    carries claims for, its own first; 'none' where no stage trains the teacher model (self-distillation,
    peers, generations)."""
    paper = _merge(data, (data.get("profiles") or {}).get("paper") or {})
    trained = any(stage.get("model") == "teacher" for stage in paper.get("stages", []))
    own = f"{paper['teacher']['net']['kind'] if trained else 'none'}/{paper['student']['net']['kind']}"
    claimed = {f"{c['teacher_net']}/{c['student_net']}" for c in data.get("claims", [])
               if c.get("teacher_net") and c.get("student_net")}
    return [own, *sorted((claimed | set(data.get("pairs") or {})) - {own})]


def _merge(base: dict, extra: dict) -> dict:
    """`extra` over `base`, key by key; a block naming another `kind` (a net) replaces the block whole."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        nested = isinstance(value, dict) and isinstance(out.get(key), dict)
        if nested and value.get("kind", out[key].get("kind")) != out[key].get("kind"):
            nested = False
        out[key] = _merge(out[key], value) if nested else value
    return out


def _members(annotation) -> list[type[BaseModel]]:
    """The pydantic models an annotation may hold (through Annotated, Union, list)."""
    origin = typing.get_origin(annotation)
    if origin is not None:
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation] if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []


def _fields_at(path: list[str]) -> tuple[list[str], list[str]]:
    """For an error location: the path as the user writes it (union tags left out) and the valid keys of its
    last model."""
    models: list[type[BaseModel]] = [RunSpec]
    shown: list[str] = []
    for part in path:
        if part.isdigit():
            shown.append(part)
            continue
        tagged = [m for m in models if "kind" in m.model_fields and part in typing.get_args(
            m.model_fields["kind"].annotation)]
        if len(models) > 1 and tagged:
            models = tagged
            continue
        shown.append(part)
        field = next((m.model_fields[part] for m in models if part in m.model_fields), None)
        models = _members(field.annotation) if field is not None else []
    return shown, sorted({k for m in models for k in m.model_fields})


def _explain(exc: ValidationError) -> BadInput:
    errors = exc.errors()
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = [str(p) for p in err["loc"]]
    if err["type"] == "extra_forbidden":
        shown, _ = _fields_at(loc)
        _, valid = _fields_at(loc[:-1])
        close = difflib.get_close_matches(shown[-1], valid, n=1)
        hint = f"; did you mean {'.'.join(shown[:-1] + [close[0]])!r}?" if close else ""
        return BadInput(f"unknown key {'.'.join(shown)!r}{hint} (valid keys: {', '.join(valid)})")
    shown, _ = _fields_at(loc)
    where = ".".join(shown) or "the template"
    if isinstance(err.get("input"), dict):  # a rule across several settings: the message names them
        return BadInput(f"bad settings in {where!r}: {err['msg'].removeprefix('Value error, ')}")
    value = repr(err.get("input"))
    return BadInput(f"bad value for {where!r}: {err['msg']} (got {value[:80]})")


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BadInput(f"--set takes key=value, got {pair[:80]!r}")
        if key in FIXED_KEYS:
            raise BadInput(f"{key!r} cannot be set with --set; use {FIXED_KEYS[key]}")
        if key in TEXT_KEYS:
            out[key] = value
            continue
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            first = str(exc).strip().splitlines()[0]
            raise BadInput(f"cannot read the value of {pair[:80]!r}: {first}") from None
    return out


def load(name: str, profile: str = "paper", sets: dict[str, Any] | None = None) -> RunSpec:
    """The template with its profile (or profiles, joined by '+') merged in and overrides applied, validated as a
    whole."""
    data = raw(name)
    listed = pairs(data)
    settings = data.pop("pairs", None) or {}
    profiles = data.pop("profiles", {}) or {}
    for part in profile.split("+"):   # 'fast+only-7-8': profiles merged in order, the later one winning
        if part not in profiles:
            raise BadInput(f"template {name!r} has no profile {part!r} (profiles: {', '.join(profiles)}; "
                           "join several with '+')")
        data = _merge(data, profiles[part] or {})
    sets = dict(sets or {})
    pair = sets.pop(PAIR, None)
    if pair is not None:   # after the profile: the pair's nets and settings are the template's for that pair
        teacher, student = split_pair(pair)
        if f"{teacher}/{student}" not in listed:
            raise BadInput(f"template {name!r} has no pair {str(pair)[:80]!r} (pairs: {', '.join(listed)})")
        data = _merge(data, {"teacher": {"net": {"kind": teacher}}, "student": {"net": {"kind": student}}})
        data = _merge(data, settings.get(f"{teacher}/{student}") or {})
    for key, value in sets.items():
        if key in FIXED_KEYS:
            raise BadInput(f"{key!r} cannot be set with --set; use {FIXED_KEYS[key]}")
        parts = key.split(".")
        node = data
        for part in parts[:-1]:
            if part not in node:
                node[part] = {}
            if not isinstance(node[part], dict):
                raise BadInput(f"unknown key {key!r}: {part!r} holds a value, not keys")
            node = node[part]
        node[parts[-1]] = value
    data["profile"] = profile
    try:
        spec = RunSpec.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc) from None
    check_methods(spec)
    return spec


def check_methods(spec: RunSpec) -> None:
    """Every stage's method exists and its parameters are valid, before anything trains."""
    from paperlab.lab.distillers import get, parse_params

    get(spec.method)
    parse_params(spec.method, spec.distill)
    for i, stage in enumerate(spec.stages):
        taught = get(stage.method).taught
        if taught != (stage.teacher is not None):
            raise BadInput(f"stage {stage.name!r}: method {stage.method!r} "
                           + ("needs a teacher (add teacher: STAGE)" if taught else "takes no teacher"))
        parse_params(stage.method, spec.params_of(stage),
                     f"stages.{i}.distill" if stage.distill is not None else "distill")


def resolved_yaml(spec: RunSpec) -> str:
    import yaml

    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


DESCRIPTIVE_KEYS = {"title", "reference", "claims", "estimate_minutes", "differs", "spread"}


def claims(name: str) -> list:
    """The template's claims, typed (spec.Claim), every pair's included: what the reports compare with."""
    from paperlab.lab.spec import Claim

    out = []
    for i, claim in enumerate(raw(name).get("claims", [])):
        try:
            out.append(Claim.model_validate(claim))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "the claim"
            raise BadInput(f"template {name!r}, claim {i + 1} ({claim.get('stage', '?')}): {where}: "
                           f"{err['msg']}") from None
    return out


def recipe_yaml(spec: RunSpec) -> str:
    """The resolved YAML without what describes a run but does not make it (title, claims, the time estimate):
    the run's key, so that citing a claim or correcting an estimate keeps an interrupted run resumable."""
    import yaml

    return yaml.safe_dump(spec.model_dump(mode="json", exclude=DESCRIPTIVE_KEYS), sort_keys=False, allow_unicode=True)


RUN_KEYS = {"name", "paper", "seed", "profile"}  # which run of which recipe this is, not what the recipe is


def changed_from_profile(spec: RunSpec) -> list[str]:
    """The recipe settings in which a run departs from its template's profile as written (`--set`, a sweep's
    point), as key=value: what its key holds (recipe_yaml) less its name, paper, seed and profile. A claim
    is the paper's recipe: such a run is not it."""
    leave_out = DESCRIPTIVE_KEYS | RUN_KEYS
    try:
        own = f"{spec.teacher.net.kind}/{spec.student.net.kind}"
        pair = {PAIR: own} if own in pairs(raw(spec.name)) else {}  # a listed pair's settings are the recipe
        written = flatten(load(spec.name, spec.profile, pair).model_dump(mode="json", exclude=leave_out))
    except BadInput:  # renamed with --set name=...: no template to compare with
        return ["name"]
    ours = flatten(spec.model_dump(mode="json", exclude=leave_out))
    return [f"{k}={ours.get(k, '(none)')}" for k in sorted(set(ours) | set(written)) if ours.get(k) != written.get(k)]


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """{'train.lr': '0.01', ...} for MLflow params."""
    if isinstance(data, dict):
        out: dict[str, str] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): str(data)}
