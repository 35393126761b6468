"""Turning user input (options, params/metrics files, dvclive output) into card fragments.

A fragment is a partial card. Captured provenance, an imported run record and
explicit options are each a fragment, merged in that order of precedence.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dvcckpt.adapters import yamldoc
from dvcckpt.errors import CardError, UsageError

# Top-level scalar "metrics" that really describe resources or position.
RESOURCE_KEYS = {
    "latency_ms_p50", "latency_ms_p95", "gpu_hours", "train_seconds", "peak_memory_mb",
    "peak_vram_mb",
}  # fmt: skip
POSITION_KEYS = {"step", "epoch"}
DEFAULT_SPLIT = "overall"


def scalar(text: str) -> Any:
    """`42` -> 42, `1e-4` -> 0.0001, `true` -> True, `null` -> None, else the string."""
    lowered = text.strip().lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered in {"null", "none", "~"}:
        return None
    for convert in (int, float):
        try:
            value = convert(text)
        except ValueError:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            return text
        return value
    return text


def split_assignment(text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(
            f"{option} {text!r}: expected KEY=VALUE", hint=f"for example {option} lr=1e-4"
        )
    return key.strip(), value.strip()


def assignments(values: Iterable[str], option: str) -> dict[str, Any]:
    """Repeated `key=value` options into a nested dict (dotted keys nest)."""
    result: dict[str, Any] = {}
    for text in values:
        key, value = split_assignment(text, option)
        set_dotted(result, key, scalar(value), option)
    return result


def metric_assignments(values: Iterable[str]) -> dict[str, Any]:
    """`-m dev.macro_f1=0.84 -m dev.class_f1.neg=0.8` -> {"dev": {...}}; values must be finite."""
    result: dict[str, Any] = {}
    for text in values:
        key, raw = split_assignment(text, "--metric")
        if "." not in key:
            raise UsageError(
                f"--metric {text!r}: name the split, as SPLIT.METRIC=VALUE",
                hint="for example --metric dev.macro_f1=0.84",
            )
        try:
            value = float(raw)
        except ValueError:
            raise UsageError(
                f"--metric {key}: {raw!r} is not a number", hint="metric values are numbers"
            ) from None
        if not math.isfinite(value):
            raise UsageError(
                f"--metric {key}: {raw} is not a finite number",
                hint="NaN or infinite metrics usually mean training diverged; record a real value",
            )
        set_dotted(result, key, value, "--metric")
    return result


def set_dotted(target: dict[str, Any], dotted: str, value: Any, option: str) -> None:
    parts = dotted.split(".")
    node = target
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UsageError(
                f"{option} {dotted}: {part} already has a value",
                hint=f"give {part} either a value or sub-keys, not both",
            )
        node = child
    node[parts[-1]] = value


def read_data_file(path: Path, option: str) -> Any:
    """A JSON or YAML file given on the command line (YAML parsed as untrusted)."""
    if not path.is_file():
        raise UsageError(f"{option} {path}: no such file", hint="check the path")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"{option} {path}: invalid JSON at line {exc.lineno}, column {exc.colno}: "
                f"{exc.msg}",
                hint="fix the JSON syntax",
            ) from None
    try:
        return yamldoc.to_plain(yamldoc.load_untrusted(text, str(path)))
    except CardError as exc:
        raise UsageError(exc.message, exc.hint) from exc


def read_mapping(path: Path, option: str, expected: str, example: str) -> dict[str, Any]:
    """A JSON/YAML file that must hold a mapping (`expected` says of what)."""
    document = read_data_file(path, option)
    if not isinstance(document, dict):
        raise UsageError(f"{option} {path}: expected {expected}", hint=f"for example {example}")
    return document


def params_file(path: Path) -> dict[str, Any]:
    return read_mapping(
        path,
        "--params",
        "a mapping of parameter names to values",
        "`lr: 0.0001` lines (YAML) or a JSON object",
    )


def metrics_fragment(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics as found in files (dvclive `metrics.json`, run records) -> card fragment.

    Nested mappings are splits; top-level numbers are resources (latency...),
    position (step/epoch, as dvclive writes) or metrics of the `overall` split.
    """
    fragment: dict[str, Any] = {"metrics": {}, "resources": {}, "checkpoint": {}}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            fragment["metrics"][key] = dict(value)
        elif key in RESOURCE_KEYS:
            fragment["resources"][key] = value
        elif key in POSITION_KEYS:
            fragment["checkpoint"][key] = value
        else:
            fragment["metrics"].setdefault(DEFAULT_SPLIT, {})[key] = value
    return {k: v for k, v in fragment.items() if v}


def metrics_file(path: Path) -> dict[str, Any]:
    document = read_mapping(
        path, "--metrics", "a mapping of splits to metrics", '{"dev": {"macro_f1": 0.84}}'
    )
    return metrics_fragment(document)


def merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge, tags union, anything else in `overlay` wins."""
    result = dict(base)
    for key, value in overlay.items():
        current = result.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            result[key] = merge(current, value)
        elif key == "tags" and isinstance(current, list) and isinstance(value, list):
            result[key] = list(dict.fromkeys([*current, *value]))
        else:
            result[key] = value
    return result


def from_add_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """`dvcckpt add` options -> (fragment, sections a run record replaces wholesale)."""
    from dvcckpt.core import runrecord

    fragment: dict[str, Any] = {}
    replaced: tuple[str, ...] = ()
    if options.get("run_record"):
        fragment = runrecord.load(options["run_record"])
        replaced = tuple(s for s in runrecord.REPLACED_SECTIONS if s in fragment)
    if options.get("params_file"):
        fragment = merge(fragment, {"params": params_file(options["params_file"])})
    if options.get("metrics_file"):
        fragment = merge(fragment, metrics_file(options["metrics_file"]))
    return merge(fragment, _explicit(options)), replaced


def _explicit(options: Mapping[str, Any]) -> dict[str, Any]:
    meta = {key: options.get(key) for key in ("phase", "kind", "step", "epoch")}
    run = {key: options.get(key) for key in ("task", "group", "hypothesis", "owner")}
    run["name"] = options.get("run_name")
    fragment: dict[str, Any] = {
        "name": options.get("name"),
        "model": options.get("model"),
        "checkpoint": meta,
        "run": run,
        "params": assignments(options.get("params", ()), "--param"),
        "metrics": metric_assignments(options.get("metrics", ())),
        "resources": assignments(options.get("resources", ()), "--resource"),
        "data": _data_options(options),
        "seeds": _seed_options(options),
        "parents": list(options.get("parents", ())),
        "artifacts": list(options.get("artifacts", ())),
        "tags": list(options.get("tags", ())),
        "notes": options.get("notes"),
    }
    return prune(fragment)


def _data_options(options: Mapping[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if options.get("dataset"):
        name, sep, version = str(options["dataset"]).partition("=")
        data["dataset"] = name.strip()
        if sep:
            data["version"] = version.strip()
    splits = dict(split_assignment(text, "--split") for text in options.get("splits", ()))
    if splits:
        data["splits"] = splits
    return data


def _seed_options(options: Mapping[str, Any]) -> dict[str, Any]:
    seeds: dict[str, Any] = {}
    for text in options.get("seeds", ()):
        name, _, value = text.rpartition("=")
        try:
            seeds[name.strip() or "seed"] = int(value)
        except ValueError:
            raise UsageError(
                f"--seed {text!r}: seeds are integers", hint="for example --seed 42"
            ) from None
    if options.get("deterministic") is not None:
        seeds["deterministic"] = bool(options["deterministic"])
    return seeds


def prune(fragment: Mapping[str, Any]) -> dict[str, Any]:
    """Drop unset values so they do not override captured or default ones."""
    result: dict[str, Any] = {}
    for key, value in fragment.items():
        if isinstance(value, Mapping) and key not in ("params", "metrics"):
            value = prune(value)
        if value is None or (isinstance(value, Mapping | list) and not value):
            continue
        result[key] = value
    return result
