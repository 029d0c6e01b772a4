"""What a run's MLflow tags say of where its numbers come from: template, paper, profile, seed, code version and
commit, torch, device, the data and its checksum, the command; and whether the recipe departs from the
template's (then the reports give its claims no verdict)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from paperlab import __version__
from paperlab.lab import distributed as dd
from paperlab.lab.spec import RunSpec
from paperlab.settings import redact


def clip(text: str, limit: int = 1000) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


@functools.cache
def git_commit() -> str:
    try:
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def run_tags(spec: RunSpec, data, device, command: str, compile_mode: str | None,
             extra: dict[str, str] | None) -> dict[str, str]:
    import torch

    from paperlab.lab.templates import changed_from_profile

    tags = {"paperlab.template": spec.name, "paperlab.paper": spec.paper or "", "paperlab.profile": spec.profile,
            "paperlab.version": __version__, "paperlab.git_commit": git_commit(),
            "paperlab.torch": torch.__version__, "paperlab.device": str(device),
            "paperlab.dataset": spec.dataset, "paperlab.dataset_sha256": data.checksum,
            "paperlab.teacher_net": spec.teacher.net.kind, "paperlab.student_net": spec.student.net.kind,
            "paperlab.seed": str(spec.seed), "paperlab.command": redact(command),  # a --storage URL's password
            **({"paperlab.processes": str(dd.world())} if dd.world() > 1 else {}),
            **({"paperlab.compile": compile_mode} if compile_mode else {}), **(extra or {})}
    changed = changed_from_profile(spec)
    if changed:  # the report gives such runs no verdict against the paper (reports/collect.incomparable)
        tags["paperlab.changed"] = clip(", ".join(changed))
    if data.note:
        tags["paperlab.data_note"] = clip(data.note)
    return tags
