"""Card comparison: which fields differ between two cards, section by section."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dvcckpt.core.fields import SECTIONS as CARD_SECTIONS
from dvcckpt.core.fields import leaves, number

# Every section, the ones that explain a metric change first, the checkpoint's identity
# last (it differs between any two checkpoints); keys outside the schema follow.
_FIRST = ("params", "data", "seeds", "env", "code", "metrics", "resources")
_LAST = ("checkpoint", "name", "model", "schema")
SECTIONS = (
    *_FIRST,
    *(s for s in CARD_SECTIONS if s not in _FIRST and s not in _LAST),
    *_LAST,
)


@dataclass(frozen=True)
class Change:
    section: str
    field: str  # dotted path inside the section; `[i]` for a list item; "" for the whole
    a: Any
    b: Any

    @property
    def delta(self) -> float | None:
        """B - A on point values (an estimate's `value`); None unless both are numbers."""
        left, right = (None if isinstance(v, bool) else number(v) for v in (self.a, self.b))
        if left is None or right is None:
            return None
        return int(self.b) - int(self.a) if _ints(self.a, self.b) else right - left

    def as_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "field": self.field,
            "a": self.a,
            "b": self.b,
            "delta": self.delta,
        }


@dataclass(frozen=True)
class Comparison:
    a: str  # labels such as name@commit
    b: str
    changes: list[Change]

    def as_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "changes": [c.as_dict() for c in self.changes]}


def compare_cards(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    everything: bool = False,
    sections: tuple[str, ...] | None = None,
) -> list[Change]:
    """Every field that differs (or every field, with `everything`); `sections` narrows."""
    if sections is None:
        extra = sorted(k for k in dict.fromkeys([*a, *b]) if k not in SECTIONS)
        sections = (*SECTIONS, *map(str, extra))
    changes = []
    for section in sections:
        left, right = a.get(section), b.get(section)
        if left is None and right is None:
            continue
        for key, x, y in _pairs(left, right):
            if everything or x != y:
                changes.append(Change(section, key, x, y))
    return changes


def _pairs(left: Any, right: Any) -> Iterator[tuple[str, Any, Any]]:
    """(field, A, B) for one section. Mappings compare leaf by leaf (an estimate is one
    leaf: its value and its interval); a list of records (evaluations, decisions) item
    by item, so an appended record is one `[i]` row; anything else as one value."""
    if _records(left) or _records(right):
        lefts, rights = _as_list(left), _as_list(right)
        for i in range(max(len(lefts), len(rights))):
            x = lefts[i] if i < len(lefts) else None
            y = rights[i] if i < len(rights) else None
            if isinstance(x, Mapping) and isinstance(y, Mapping) and x and y:
                for key, p, q in _pairs(x, y):
                    yield f"[{i}].{key}", p, q
            else:
                yield f"[{i}]", x, y
        return
    if all(side is None or _mapping(side) for side in (left, right)):
        before, after = dict(leaves(left or {})), dict(leaves(right or {}))
        for key in dict.fromkeys([*before, *after]):
            yield key, before.get(key), after.get(key)
        return
    yield "", _absent(left), _absent(right)


def _records(value: Any) -> bool:
    return isinstance(value, list) and any(isinstance(item, Mapping) for item in value)


def _mapping(value: Any) -> bool:
    return isinstance(value, Mapping)  # a section or record; estimates are leaves inside


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def _absent(value: Any) -> Any:
    """An empty section reads as an absent one (a card writer drops empty sections)."""
    return None if value in ({}, []) else value


def _ints(*values: Any) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)
