"""Card fragments: partial cards built from user input, merged in order of precedence.

Captured provenance, an imported run record and explicit options are each a
fragment; `merge` combines them and `prune` drops unset values. Fragments built
here pass through `redaction.redact_tree`, so no secret typed into an option
(`-p hf_token=...`, `--split train=https://u:TOKEN@...`) reaches a card. Pure
functions: reading the files that feed them is `cards.inputs`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from dvcckpt.core import estimates, redaction
from dvcckpt.errors import UsageError

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


def metric_assignments(
    values: Iterable[str], option: str = "--metric", need_split: bool = True
) -> dict[str, Any]:
    """`-m dev.macro_f1=0.84 -m dev.class_f1.neg=0.8` -> {"dev": {...}}; values must be finite.

    A value with a confidence interval is `VALUE:LOW:HIGH`, optionally `:METHOD`
    (`test.f1=0.86:0.84:0.88:bootstrap`), or as tables print it, `0.86[0.84,0.88]`
    (`0.86 [0.84, 0.88] bootstrap`); it records `{value, ci: [low, high], method}`.
    `option` names the option in errors; `need_split=False` takes metric names
    relative to a split given elsewhere (`-m macro_f1=0.81`).
    """
    result: dict[str, Any] = {}
    for text in values:
        key, raw = split_assignment(text, option)
        if need_split and "." not in key:
            raise UsageError(
                f"{option} {text!r}: name the split, as SPLIT.METRIC=VALUE",
                hint=f"for example {option} dev.macro_f1=0.84",
            )
        set_dotted(result, key, _metric_value(raw, f"{option} {key}"), option)
    return result


_BRACKETED = re.compile(r"([^\[\]\s]+)\s*\[([^\[\],]*),([^\[\],]*)\]\s*(\S*)")
_METHOD = re.compile(r"[A-Za-z][A-Za-z0-9_.+-]{0,59}")
_SPELLING_HINT = (
    "write VALUE, VALUE:LOW:HIGH or VALUE:LOW:HIGH:METHOD, e.g. 0.86:0.84:0.88:bootstrap"
)


def _metric_value(raw: str, where: str) -> float | dict[str, Any]:
    """One metric's text as a number, or an estimate with its CI (and method)."""
    bracketed = _BRACKETED.fullmatch(raw.strip())
    parts = [p.strip() for p in (bracketed.groups() if bracketed else raw.split(":"))]
    if bracketed and not parts[3]:
        parts.pop()
    if len(parts) not in (1, 3, 4):
        raise UsageError(f"{where}: {raw[:60]!r} is not a metric value", hint=_SPELLING_HINT)
    value, *bounds = (_finite(part, where) for part in parts[:3])
    if not bounds:
        return value
    problem = estimates.ci_problem(value, bounds)
    if problem is not None:
        raise UsageError(
            f"{where}: malformed CI, {problem}",
            hint="write VALUE:LOW:HIGH with LOW <= VALUE <= HIGH, e.g. 0.86:0.84:0.88",
        )
    estimate: dict[str, Any] = {"value": value, "ci": bounds}
    if len(parts) == 4:
        if not _METHOD.fullmatch(parts[3]):
            raise UsageError(
                f"{where}: {parts[3][:40]!r} is not a method name",
                hint="name how the interval was computed, e.g. bootstrap, wilson, t-test",
            )
        estimate["method"] = parts[3]
    return estimate


def _finite(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(
            f"{where}: {text[:40]!r} is not a number", hint="metric values are numbers"
        ) from None
    if not math.isfinite(value):
        raise UsageError(
            f"{where}: {text} is not a finite number",
            hint="NaN or infinite metrics usually mean training diverged; record a real value",
        )
    return value


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
    redacted: dict[str, Any] = redaction.redact_tree({k: v for k, v in fragment.items() if v})
    return redacted


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


def from_options(options: Mapping[str, Any]) -> dict[str, Any]:
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
    redacted: dict[str, Any] = redaction.redact_tree(prune(fragment))
    return redacted


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


def seed_from_params(fragment: Mapping[str, Any]) -> dict[str, Any]:
    """A parameter named `seed` is the run's seed: it fills `seeds.seed` unless one is set.

    Applied once to everything the user gave (options, --params, a run record, the
    API), so every spelling of the parameter records the same seed, and an explicit
    `--seed` (or a record's `seeds` section) is never overridden.
    """
    result = dict(fragment)
    params, seeds = result.get("params"), result.get("seeds")
    seed = params.get("seed") if isinstance(params, Mapping) else None
    if isinstance(seed, bool) or not isinstance(seed, int):
        return result
    if seeds is None or (isinstance(seeds, Mapping) and seeds.get("seed") is None):
        result["seeds"] = {**(seeds or {}), "seed": seed}
    return result


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
