"""Fields a query names that no card in scope has (`org find`, `org log`): refused with the
closest fields the newest cards do have, as `find` refuses them in a repository; and the
decoding of JSON another publisher wrote."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dvcckpt.adapters import duckdbscan
from dvcckpt.catalog import known
from dvcckpt.catalog.rows import latest_evaluations
from dvcckpt.catalog.where import Field
from dvcckpt.core.fields import is_estimate, is_schema_field, leaves
from dvcckpt.publish.orgsql import Compiler, card_object

if TYPE_CHECKING:
    from dvcckpt.publish.org import Scope

HINT_CARDS = 200  # newest cards whose fields the hint of an unknown field offers


def json_value(text: Any) -> Any:
    """JSON another publisher wrote, as plain data: what does not decode, or nests beyond
    Python's stack, is None; numbers beyond a double (`1e999`, `Infinity`) are null, so
    `--json` prints valid JSON."""
    if text is None:
        return None
    try:
        return json.loads(text, parse_constant=lambda _: None, parse_float=_finite)
    except (ValueError, RecursionError):
        return None


def _finite(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


# -- fields no card has ---------------------------------------------------------------------


def require(scope: Scope, asked: list[tuple[str, Field]]) -> None:
    """Refuse the first field (option, field) that no card version in scope has, with the
    closest fields the newest cards do have (as `find` refuses it)."""
    checked: set[str] = set()
    for option, field in asked:
        path = field.resolved()
        if path in checked or is_schema_field(path):
            continue
        checked.add(path)
        if not _exists(scope, field) and _exists(scope, None):
            raise known.field_error(option, path, field.path, _newest_fields(scope),
                                    "no checkpoint in scope", "no card in scope has fields",
                                    bounded=field.bound() is not None)  # fmt: skip


def _exists(scope: Scope, field: Field | None) -> bool:
    """Whether some card version in scope has the field (any card: `field` None); the
    current versions are looked at first, the others only if none of those has it."""
    if scope.body == "hot" and scope.pending is not None and _has(scope, field, "card_current"):
        return True
    scope.every_version()
    return _has(scope, field, "card_versions")


def _has(scope: Scope, field: Field | None, view: str) -> bool:
    sql = Compiler(source=scope.body)
    has = "true" if field is None else f"f{sql.value(field)}_r IS NOT NULL"
    statement = f"""SELECT 1 FROM (SELECT * {", ".join(["", *sql.columns])} FROM (
        SELECT {sql.source} {sql.extraction()} FROM {view}
        WHERE {card_object(sql.source)}))
        WHERE {has} LIMIT 1"""
    return bool(duckdbscan.rows(scope.db, statement, sql.params))


def _newest_fields(scope: Scope) -> list[str]:
    """Dotted fields of the newest cards (an estimate offers its bounds, not its keys;
    `evaluations.SPLIT.METRIC` the metrics of each split's latest evaluation)."""
    if scope.body != "card":
        scope.versions(("committed_at", "generation"), "card")
    statement = f"""SELECT card FROM card_versions WHERE {card_object("card")}
        ORDER BY committed_at DESC NULLS LAST, generation DESC LIMIT $1"""
    found: set[str] = set()
    for (text,) in duckdbscan.rows(scope.db, statement, [HINT_CARDS]):
        card = json_value(text)
        if not isinstance(card, dict):
            continue
        evaluated = latest_evaluations(card.pop("evaluations", None))
        if evaluated:  # as the catalog's hot copy holds them: {split: metrics}
            card["evaluations"] = evaluated
        found.update(_paths(card))
    return sorted(found)


def _paths(card: Mapping[str, Any]) -> set[str]:
    found = set()
    for path, value in leaves(card):
        found.add(path)
        if is_estimate(value) and isinstance(value.get("ci"), list):
            found.update({f"{path}.ci_low", f"{path}.ci_high"})
    for path in list(found):  # every enclosing section is a field too
        parts = path.split(".")
        found.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return found
