"""Import of run records shaped like the common "minimal tracking template".

    {"run_name": ..., "task": ..., "dataset": {"name", "splits"}, "code": {"repo", "commit"},
     "env": {"python", "libs", "cuda"}, "params": {...}, "metrics": {...},
     "artifacts": [...], "tags": [...], "notes": ...}

The record describes the training run, so its `code` and `env` replace what
`add` would capture on the machine that registers the checkpoint. Everything it
holds, keys the card has no field for included, passes through the redactor:
records are written by training scripts that often log their secrets too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dvcckpt.core import fragments, redaction

_RUN_KEYS = {"run_name": "name", "task": "task", "group": "group", "hypothesis": "hypothesis",
             "owner": "owner", "run_id": "id"}  # fmt: skip
_ENV_KEYS = {"python": "python", "libs": "libraries", "libraries": "libraries", "cuda": "cuda",
             "cudnn": "cudnn", "platform": "platform", "gpus": "gpus",
             "container_image": "container_image", "image": "container_image"}  # fmt: skip
_PASSTHROUGH = ("training", "resources", "evaluation_protocol", "seeds", "parents", "evaluations")
REPLACED_SECTIONS = ("code", "env")


def to_fragment(record: Mapping[str, Any]) -> dict[str, Any]:
    fragment: dict[str, Any] = {}
    run = {card_key: str(record[key]) for key, card_key in _RUN_KEYS.items() if key in record}
    if run:
        fragment["run"] = run
    if isinstance(record.get("dataset"), Mapping):
        fragment["data"] = _data(record["dataset"])
    if isinstance(record.get("code"), Mapping):
        fragment["code"] = _code(record["code"])
    if isinstance(record.get("env"), Mapping):
        fragment["env"] = {
            _ENV_KEYS[k]: _env_value(v) for k, v in record["env"].items() if k in _ENV_KEYS
        }
    if isinstance(record.get("params"), Mapping):
        # Its `seed` also fills seeds.seed, as for -p and --params (`add` does that).
        fragment["params"] = dict(record["params"])
    if isinstance(record.get("metrics"), Mapping):
        fragment = fragments.merge(fragment, fragments.metrics_fragment(record["metrics"]))
    if isinstance(record.get("artifacts"), list):
        fragment["artifacts"] = list(record["artifacts"])
    for key in ("tags", "notes", "model"):
        if key in record:
            fragment[key] = record[key]
    for key in _PASSTHROUGH:
        if key in record:
            fragment = fragments.merge(fragment, {key: record[key]})
    unknown = sorted(set(record) - _known_keys())
    if unknown:
        # Keep what the card has no field for rather than silently dropping it.
        fragment["x-run-record"] = {key: record[key] for key in unknown}
    redacted: dict[str, Any] = redaction.redact_tree(fragment)
    return redacted


def _known_keys() -> set[str]:
    return {*_RUN_KEYS, "dataset", "code", "env", "params", "metrics", "artifacts", "tags",
            "notes", "model", *_PASSTHROUGH}  # fmt: skip


def _data(dataset: Mapping[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if "name" in dataset:
        data["dataset"] = str(dataset["name"])
    if "version" in dataset:
        data["version"] = str(dataset["version"])
    splits = dataset.get("splits")
    if isinstance(splits, Mapping):
        data["splits"] = {name: value for name, value in splits.items()}
    for key in ("preprocessing", "augmentation", "sampling", "quality_checks"):
        if key in dataset:
            data[key] = dataset[key]
    return data


def _code(code: Mapping[str, Any]) -> dict[str, Any]:
    section = {k: code[k] for k in ("commit", "branch", "dirty") if k in code}
    if "script" in code:
        section["script"] = redaction.portable_path(str(code["script"]))
    if "repo" in code:
        section["repo"] = redaction.strip_credentials(str(code["repo"]))
    if "command" in code:
        command = code["command"]
        section["command"] = (
            redaction.redact_command([str(arg) for arg in command])
            if isinstance(command, list)
            else redaction.redact_command_text(str(command))
        )
    if "config" in code or "config_file" in code:
        section["config_file"] = redaction.portable_path(
            str(code.get("config_file", code.get("config")))
        )
    if isinstance(section.get("commit"), str):
        section["commit"] = section["commit"].lower()
    return section


def _env_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    return value if isinstance(value, list) or value is None else str(value)
