"""Card comparison: which fields differ between two cards, section by section."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dvcckpt.core.fields import is_estimate, leaves

SECTIONS = ("params", "data", "seeds", "env", "code", "metrics", "resources")


@dataclass(frozen=True)
class Change:
    section: str
    field: str
    a: Any
    b: Any

    @property
    def delta(self) -> float | None:
        numbers = all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in (self.a, self.b)
        )
        return self.b - self.a if numbers else None

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
    sections: tuple[str, ...] = SECTIONS,
) -> list[Change]:
    changes = []
    for section in sections:
        left = dict(_leaves(a.get(section) or {}))
        right = dict(_leaves(b.get(section) or {}))
        for key in dict.fromkeys([*left, *right]):
            if everything or left.get(key) != right.get(key):
                changes.append(Change(section, key, left.get(key), right.get(key)))
    return changes


def _leaves(section: Any) -> Iterator[tuple[str, Any]]:
    """Leaves to compare; an estimate compares by its value. A section that is not a
    mapping (a card committed past the hook may hold `metrics: text`) is one leaf."""
    if not isinstance(section, Mapping):
        yield "(value)", section
        return
    for key, value in leaves(section):
        yield key, value["value"] if is_estimate(value) else value
