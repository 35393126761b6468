"""Project configuration (`dvcckpt.yaml` at the repository root).

Every setting has a default, so a repository without the file still works;
the file, when present, is validated against `schemas/config.v1.schema.json`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dvcckpt.core import naming, redaction
from dvcckpt.core.limits import DEFAULT_MAX_BYTES, MAX_NAME_CHARS
from dvcckpt.core.resources import load_schema
from dvcckpt.errors import ConfigError

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
class CatalogSettings:
    """Where `dvcckpt catalog publish` and `dvcckpt org` find the organisation's catalog."""

    warehouse: str | None = None  # a folder, file://... or s3://bucket/prefix
    uri: str | None = None  # the Iceberg SQL catalog's database (never with a password here)
    repository: str | None = None  # this repository's id and name in it (default: derived)

    @classmethod
    def of(cls, section: Mapping[str, Any]) -> CatalogSettings:
        return cls(section.get("warehouse"), section.get("uri"), section.get("repository"))


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
    catalog: CatalogSettings = field(default_factory=lambda: CatalogSettings())
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
        catalog=CatalogSettings.of(doc.get("catalog", {})),
        source=path,
    )
    return config


# Stage names end up in git tag names and command lines: the same rule as gates.yaml's.
_STAGE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_NAME_CHARS - 1}}}")
# A branch name git accepts and no command line can take for an option.
_BRANCH = re.compile(r"(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,200}")


def setting_problems(doc: Mapping[str, Any]) -> list[str]:
    """What a schema-valid `dvcckpt.yaml` still gets wrong, as `field: message`.

    Checked here rather than at the first `add` or `promote`, so the hook refuses
    the commit that introduces the mistake.
    """
    found = []
    stages = doc.get("stages")
    if stages is not None and not stages:
        found.append("stages: lists no stage (remove it for dev, staging, production)")
    for index, stage in enumerate(stages or ()):
        if not _STAGE.fullmatch(stage):
            found.append(
                f"stages[{index}]: {stage[:40]!r} is not a stage name "
                "(a letter or digit, then letters, digits, '.', '_' or '-')"
            )
    branch = doc.get("promotion", {}).get("main_branch")
    if branch is not None and not _BRANCH.fullmatch(branch):
        found.append(f"promotion.main_branch: {branch[:40]!r} is not a branch name")
    for key in ("run", "checkpoint"):
        pattern = doc.get("naming", {}).get(key)
        if pattern is None:
            continue
        try:
            naming.placeholders(pattern, where=f"naming.{key}:")
        except ConfigError as exc:
            found.append(exc.message)
    found.extend(catalog_credentials(doc.get("catalog", {}), "catalog"))
    return found


def catalog_credentials(section: Mapping[str, Any], at: str) -> list[str]:
    """Settings of a committed `catalog` section that hold a password, token or key."""
    return [
        f"{at}.{key}: holds a credential, and dvcckpt.yaml is committed (set it in "
        "DVCCKPT_CATALOG_URI or ~/.config/dvcckpt/config.yaml instead)"
        for key in ("warehouse", "uri")
        if isinstance(section.get(key), str) and redaction.has_secret(section[key])
    ]


def unknown_fields(instance: Any, schema_name: str) -> list[str]:
    """Keys a shipped schema does not know, each as `field: unknown field (did you mean …)`.

    Checked before the schema itself, whose messages for a misspelt key are vague.
    """
    schema = load_schema(schema_name)
    found: list[str] = []
    _walk(instance, schema, schema, "", found)
    return found


def _walk(
    instance: Any, node: Mapping[str, Any], root: Mapping[str, Any], at: str, found: list[str]
) -> None:
    while "$ref" in node:  # local references only: `#/$defs/name`
        node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    if isinstance(instance, list) and isinstance(node.get("items"), Mapping):
        for index, item in enumerate(instance):
            _walk(item, node["items"], root, f"{at}[{index}]", found)
    if not isinstance(instance, Mapping):
        return
    known = node.get("properties", {})
    extra = node.get("additionalProperties", True)
    for key, value in instance.items():
        where = f"{at}.{key}" if at else str(key)
        if key in known:
            _walk(value, known[key], root, where, found)
        elif any(re.search(p, str(key)) for p in node.get("patternProperties", {})):
            continue
        elif extra is False:
            import difflib  # only for a mistake's suggestion

            close = difflib.get_close_matches(str(key), list(known), n=1)
            found.append(
                f"{where}: unknown field"
                + (f" (did you mean `{close[0]}`?)" if close else "")
                + (" (extensions go under `x-` keys)" if node.get("patternProperties") else "")
            )
        elif isinstance(extra, Mapping):
            _walk(value, extra, root, where, found)


def may_decide(config: ProjectConfig, principal: str, model: str, stage: str | None) -> bool:
    """Whether the owners policy lets `principal` decide `model` at `stage`.

    Without owner entries any allowed signer may decide (the allowed-signers file
    itself is the list of deciders).
    """
    if not config.owners:
        return True
    return any(o.covers(model, stage) and principal in o.principals for o in config.owners)
