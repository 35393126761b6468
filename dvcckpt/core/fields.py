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
    "path", "format", "serialization", "serialization_files", "kind", "phase", "step", "epoch", "size", "files",
    "sha256", "dvc", "created_at", "created_by",
)  # fmt: skip

RUN_FIELDS = ("name", "task", "group", "hypothesis", "owner", "id")
# Short names for often-queried fields, in `find --where/--sort/--by`.
SHORTCUTS = {
    "phase": "checkpoint.phase", "kind": "checkpoint.kind", "step": "checkpoint.step",
    "epoch": "checkpoint.epoch", "created_at": "checkpoint.created_at",
    "created": "checkpoint.created_at", "sha256": "checkpoint.sha256",
    "size": "checkpoint.size", "owner": "run.owner", "task": "run.task", "run": "run.name",
    "group": "run.group", "dataset": "data.dataset", "seed": "seeds.seed",
}  # fmt: skip
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


def card_path(spec: str) -> str:
    """The card path a field spelling names, the same in every command that takes one.

    A shortcut (`step`), a path that starts with a card section (`checkpoint.step`,
    `x-team.lead`) or a single word is kept; any other dotted path is a metric, as
    `log` prints it: `dev.macro_f1` -> `metrics.dev.macro_f1`.
    """
    if spec in SHORTCUTS:
        return SHORTCUTS[spec]
    head = spec.split(".", 1)[0]
    if "." not in spec or head in SECTIONS or head.startswith("x-"):
        return spec
    return f"metrics.{spec}"


def is_schema_field(path: str) -> bool:
    """A field the card schema names (`tags`, `checkpoint.phase`, `run.owner`): its
    absence from every card is a plain empty answer, never a misspelling."""
    parts = path.split(".")
    if len(parts) == 1:
        return parts[0] in SECTIONS
    named = {"checkpoint": CHECKPOINT_FIELDS, "run": RUN_FIELDS}.get(parts[0], ())
    return (len(parts) == 2 and parts[1] in named) or path in SHORTCUTS.values()


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
