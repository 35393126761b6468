"""Every number a card's metrics and latest evaluations hold, indexed for queries.

`find --where 'dev.macro_f1 >= 0.9'` then reads the cards whose value qualifies
through an index instead of parsing the JSON of every card in scope, and a sort or
a column reads one indexed row per card. One row per number, under the field path
the query language names it by: a metric's point value (an estimate's `value`) under
its own path (`metrics.dev.macro_f1`), its interval bounds under `.ci_low` and
`.ci_high`, each split's latest evaluation under `evaluations.SPLIT...`. Only numbers
(a boolean counts as 0 or 1, as SQLite compares it): a text metric compares with no
number, so `>= 0.9` never matches "n/a".
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from typing import Any

SCHEMA = """
CREATE TABLE metric_values (
    field TEXT NOT NULL, card_id INTEGER NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (field, card_id)) WITHOUT ROWID;
CREATE INDEX metric_values_value ON metric_values (field, value);
"""
TABLES = frozenset({"metric_values"})
SECTIONS = ("metrics", "evaluations")
_BOUNDS = {"ci_low": 0, "ci_high": 1}
OPERATORS = ("<", "<=", ">", ">=", "=", "!=")


def indexes(field: str) -> bool:
    """Whether `field` (a resolved card path) is one this table holds."""
    parts = field.split(".")
    return len(parts) > 1 and parts[0] in SECTIONS


def store(db: sqlite3.Connection, card_id: int, hot: Mapping[str, Any]) -> None:
    db.executemany(
        "INSERT OR REPLACE INTO metric_values VALUES (?, ?, ?)",
        ((field, card_id, value) for field, value in values(hot)),
    )


def values(hot: Mapping[str, Any]) -> Iterator[tuple[str, float]]:
    """(field, number) of every number under the indexed sections of a card's hot copy."""
    for section in SECTIONS:
        node = hot.get(section)
        if isinstance(node, Mapping):
            yield from _walk(section, node)


def _walk(prefix: str, node: Mapping[str, Any]) -> Iterator[tuple[str, float]]:
    for key, value in node.items():
        # A key with a dot cannot be named in a query; `ci_low`/`ci_high` name bounds.
        if not isinstance(key, str) or "." in key or key in _BOUNDS:
            continue
        path = f"{prefix}.{key}"
        if isinstance(value, Mapping):
            if (point := _number(value.get("value"))) is not None:
                yield path, point
            ci = value.get("ci")
            if isinstance(ci, list) and len(ci) == 2:
                for name, index in _BOUNDS.items():
                    if (bound := _number(ci[index])) is not None:
                        yield f"{path}.{name}", bound
            yield from _walk(path, value)
        elif (number := _number(value)) is not None:
            yield path, number


def _number(value: Any) -> float | None:
    if isinstance(value, int | float):  # bool too: JSON's true compares as 1 in SQLite
        return float(value)
    return None


def value_sql(field: str) -> tuple[str, list[Any]]:
    """The field's number for the card `k` (NULL when it holds none)."""
    return "(SELECT value FROM metric_values WHERE field = ? AND card_id = k.id)", [field]


_LISTED = "k.id IN (SELECT card_id FROM metric_values WHERE field = ? AND value "
_PER_CARD = "EXISTS (SELECT 1 FROM metric_values WHERE field = ? AND card_id = k.id AND value "


def compare_sql(field: str, operator: str, number: float) -> tuple[str, list[Any]]:
    """Cards whose `field` compares to `number`, found through the value index."""
    assert operator in OPERATORS
    return f"{_LISTED}{operator} ?)", [field, number]


def per_card(statement: str) -> str:
    """`statement` with each comparison of `compare_sql` checked per card (one primary-key
    lookup) instead of through the list of every qualifying card: for a query that
    reads few cards, that list would cost more than the query (same parameters)."""
    return statement.replace(_LISTED, _PER_CARD)
