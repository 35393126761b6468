"""Card fields as plain data: canonical section order, dotted lookups, metric values.

Pure functions over mappings, shared by every layer that reads cards (policy,
gates, catalog, rendering): one reading of "the value at `metrics.dev.f1`".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

# Canonical order of top-level sections for newly written cards.
SECTIONS = (
    "schema", "name", "model", "checkpoint", "run", "code", "data", "params", "seeds",
    "training", "env", "metrics", "evaluations", "resources", "evaluation_protocol",
    "parents", "artifacts", "tags", "notes", "decisions", "tombstone",
)  # fmt: skip
CHECKPOINT_FIELDS = (
    "path", "format", "serialization", "kind", "phase", "step", "epoch", "size", "files",
    "sha256", "dvc", "created_at", "created_by",
)  # fmt: skip

RUN_FIELDS = ("name", "task", "group", "hypothesis", "owner", "id")
# What a checkpoint holds, and how it relates to its parents.
KINDS = ("full", "weights", "optimizer", "ema")
RELATIONS = ("resumed_from", "finetuned_from", "distilled_from")


def ordered(card: Mapping[str, Any]) -> dict[str, Any]:
    """A new card in canonical section order, empty sections dropped, `x-` keys last."""
    result: dict[str, Any] = {}
    for key in SECTIONS:
        if key in card and not is_empty(card[key]):
            result[key] = card[key]
    for section, order in (("checkpoint", CHECKPOINT_FIELDS), ("run", RUN_FIELDS)):
        if section in result:
            result[section] = _in_order(result[section], order)
    for key in sorted(k for k in card if k not in SECTIONS):
        result[key] = card[key]
    return result


def _in_order(fields: Mapping[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    known = {key: fields[key] for key in order if fields.get(key) is not None}
    return known | {key: value for key, value in fields.items() if key not in order}


def field(data: Mapping[str, Any] | None, dotted: str) -> Any:
    """The value at a dotted path (`metrics.dev.macro_f1`), or None if any part is absent."""
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def number(value: Any) -> float | None:
    """A metric as a float: plain numbers, or the `value` of an estimate with a CI."""
    if isinstance(value, Mapping) and "value" in value:
        value = value["value"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer beyond float range is no usable metric
        return None


def is_estimate(value: Any) -> bool:
    """`{value, ci, method}`: one metric, not a group of metrics."""
    return isinstance(value, Mapping) and "value" in value


def leaves(section: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted paths and values of a nested section; estimates and empty mappings are leaves."""
    for key, item in section.items():
        dotted = f"{prefix}{key}"
        if isinstance(item, Mapping) and item and not is_estimate(item):
            yield from leaves(item, dotted + ".")
        else:
            yield dotted, item


def is_empty(value: Any) -> bool:
    """Absent for policy purposes: None, or an empty string, list or mapping."""
    return value is None or (isinstance(value, str | list | dict) and not value)
