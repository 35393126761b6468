"""Project configuration (`dvcckpt.yaml` at the repository root).

Every setting has a default, so a repository without the file still works;
the file, when present, is validated against `schemas/config.v1.schema.json`.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dvcckpt.core import naming
from dvcckpt.core.limits import DEFAULT_MAX_BYTES

CONFIG_FILE = "dvcckpt.yaml"
DEFAULT_STAGES = ("dev", "staging", "production")


@dataclass(frozen=True)
class Owner:
    """Principals allowed to sign decisions for models and stages matching the globs."""

    model: str
    stage: str
    principals: tuple[str, ...]

    def covers(self, model: str, stage: str | None) -> bool:
        return fnmatch.fnmatchcase(model, self.model) and fnmatch.fnmatchcase(
            stage or "", self.stage
        )


@dataclass(frozen=True)
class ProjectConfig:
    project: str
    run_pattern: str = naming.DEFAULT_RUN_PATTERN
    checkpoint_pattern: str = naming.DEFAULT_CHECKPOINT_PATTERN
    keyparam: str | None = None
    enforce_naming: bool = True
    phases: tuple[str, ...] | None = None
    primary_metric: str | None = None
    required_all: tuple[str, ...] = ()
    required_phases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    stages: tuple[str, ...] = DEFAULT_STAGES
    require_previous_stage: bool = False
    require_signed: bool = False
    allowed_signers: str | None = None  # repository-relative allowed-signers file
    owners: tuple[Owner, ...] = ()
    main_branch: str | None = None
    card_max_bytes: int = DEFAULT_MAX_BYTES
    source: Path | None = None


def default_project_name(root: Path) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", root.resolve().name).strip("-._")
    return cleaned or "project"


HINT = "see `dvcckpt schema --config` for the settings dvcckpt.yaml accepts"


def from_document(doc: dict[str, Any], path: Path) -> ProjectConfig:
    """Settings from a validated `dvcckpt.yaml` document."""
    names = doc.get("naming", {})
    required = doc.get("required", {})
    config = ProjectConfig(
        project=doc["project"],
        run_pattern=names.get("run", naming.DEFAULT_RUN_PATTERN),
        checkpoint_pattern=names.get("checkpoint", naming.DEFAULT_CHECKPOINT_PATTERN),
        keyparam=names.get("keyparam"),
        enforce_naming=names.get("enforce", True),
        phases=tuple(doc["phases"]) if "phases" in doc else None,
        primary_metric=doc.get("primary_metric"),
        required_all=tuple(required.get("all", ())),
        required_phases={k: tuple(v) for k, v in required.get("phases", {}).items()},
        stages=tuple(doc.get("stages", DEFAULT_STAGES)),
        require_previous_stage=doc.get("promotion", {}).get("require_previous_stage", False),
        main_branch=doc.get("promotion", {}).get("main_branch"),
        require_signed=doc.get("promotion", {}).get("require_signed", False),
        allowed_signers=doc.get("promotion", {}).get("allowed_signers"),
        owners=tuple(
            Owner(o.get("model", "*"), o.get("stage", "*"), tuple(o["principals"]))
            for o in doc.get("owners", [])
        ),
        card_max_bytes=doc.get("card_max_bytes", DEFAULT_MAX_BYTES),
        source=path,
    )
    # Surface pattern mistakes now rather than at the first `add`.
    naming.placeholders(config.run_pattern)
    naming.placeholders(config.checkpoint_pattern)
    return config


def may_decide(config: ProjectConfig, principal: str, model: str, stage: str | None) -> bool:
    """Whether the owners policy lets `principal` decide `model` at `stage`.

    Without owner entries any allowed signer may decide (the allowed-signers file
    itself is the list of deciders).
    """
    if not config.owners:
        return True
    return any(o.covers(model, stage) and principal in o.principals for o in config.owners)
