"""Fields the cards in scope have: where each is stored, and refusing one no card has.

A misspelt field would otherwise match nothing (or sort nothing) and look like a
real, empty answer. `find` (--where, --sort, --by) and `log` (--metric) refuse it
the same way: the error names the field, the hint the closest fields that cards in
scope do have.
"""

from __future__ import annotations

import difflib
from typing import Any

from dvcckpt.catalog.index import Index
from dvcckpt.catalog.rows import HOT_CHECKPOINT, HOT_SECTIONS
from dvcckpt.catalog.where import BOUNDS, Field
from dvcckpt.core.fields import is_schema_field
from dvcckpt.errors import UsageError

HINT_CARDS = 2_000  # cards read for the closest-field hint of an unknown field
ESTIMATE_KEYS = ("value", "ci", "method", "n")
# A restriction of the cards looked at: SQL over `k` (cards) and its parameters.
Restriction = tuple[str, list[Any]]


def column(field: Field) -> str:
    """The slim `hot` copy when it holds the field, else the full card.

    `evaluations.SPLIT...` is always read from `hot`: it holds each split's latest
    evaluation there (the card's `evaluations` is the whole list)."""
    parts = field.parts()
    in_hot = parts[0] in HOT_SECTIONS and (
        parts[0] != "checkpoint" or (len(parts) > 1 and parts[1] in HOT_CHECKPOINT)
    )
    return "k.hot" if in_hot or parts[0] == "evaluations" else "b.card"


def require(
    catalog: Index,
    source: tuple[str, str],
    asked: list[tuple[str, Field]],
    restrict: Restriction | None = None,
) -> None:
    """Refuse the first field (option, field) that no card version in `source` has.

    `source` is a FROM clause naming versions `v` and its condition
    (`catalog.latest.source`); `restrict` narrows the cards (e.g. to one model).
    A bound (`FIELD.ci_low`) needs a card recording FIELD with an interval.
    """
    checked: set[str] = set()
    for option, field in asked:
        path = field.resolved()
        if path in checked or is_schema_field(path):
            continue
        checked.add(path)
        if not _exists(catalog, source, field, restrict) and _exists(
            catalog, source, None, restrict
        ):
            raise unknown(catalog, source, option, field, restrict)


def _exists(
    catalog: Index, source: tuple[str, str], field: Field | None, restrict: Restriction | None
) -> bool:
    """Whether a readable card in scope has `field` (None: whether there is any card, so
    an empty registry answers empty instead of calling every field misspelt)."""
    versions, in_scope = source
    where, params = restrict or ("1", [])
    has = "1"
    if field is not None:
        has = f"json_type({column(field)}, ?) IS NOT NULL"
        params = [field.json_path(), *params]
    bodies = "JOIN bodies b ON b.id = k.id" if "b.card" in has else ""
    statement = f"""SELECT 1 FROM {versions} JOIN cards k ON k.id = v.card_id {bodies}
        WHERE {in_scope} AND k.error IS NULL AND {has} AND ({where}) LIMIT 1"""
    return bool(catalog.sql(statement, params))


def unknown(
    catalog: Index,
    source: tuple[str, str],
    option: str,
    field: Field,
    restrict: Restriction | None = None,
) -> UsageError:
    """The error naming the field, with the closest fields the cards in scope do have."""
    known = _fields(catalog, source, column(field), restrict)
    return field_error(option, field.resolved(), field.path, known, "no checkpoint in scope",
                       "no card in scope has fields", bounded=field.bound() is not None)  # fmt: skip


def field_error(
    option: str,
    path: str,
    written: str,
    known: list[str],
    who: str,
    nothing: str,
    bounded: bool = False,
) -> UsageError:
    """`OPTION: WHO has the field PATH`, hinting the closest of the `known` fields (or
    `nothing` when there are none): one wording for find, log, group-by and diff."""
    close = difflib.get_close_matches(path, known, n=3, cutoff=0.6)
    section = path.split(".")[0]
    close = close or [k for k in known if k.startswith(section + ".")][:5] or known[:5]
    spelled = "" if written == path else f" (written {written})"
    hint = f"closest fields: {', '.join(close)}" if close else nothing
    if section == "metrics":
        hint += "; a dotted path outside the card sections is a metric: dev.f1 = metrics.dev.f1"
    if bounded:
        hint += "; FIELD.ci_low and FIELD.ci_high need FIELD recorded as {value, ci}"
    return UsageError(f"{option}: {who} has the field {path}{spelled}", hint=hint)


def _fields(
    catalog: Index, source: tuple[str, str], where: str, restrict: Restriction | None
) -> list[str]:
    """Dotted fields of the newest cards in scope (an estimate offers its bounds, not
    its keys), so an error costs the same at any history length."""
    versions, in_scope = source
    condition, params = restrict or ("1", [])
    bodies = "JOIN bodies b ON b.id = k.id" if where == "b.card" else ""
    statement = f"""SELECT DISTINCT t.fullkey FROM (SELECT DISTINCT v.card_id AS id
            FROM {versions} JOIN cards k ON k.id = v.card_id
            WHERE {in_scope} AND ({condition}) ORDER BY v.card_id DESC LIMIT {HINT_CARDS}) c
            JOIN cards k ON k.id = c.id {bodies},
            json_tree({where}) t WHERE k.error IS NULL AND t.fullkey NOT LIKE '%[%'"""
    keys = {row[0][2:].replace('"', "") for row in catalog.sql(statement, params)}
    keys.discard("")
    estimates = {k.rpartition(".")[0] for k in keys if k.endswith(".value")}
    inside = tuple(f"{e}.{part}" for e in estimates for part in ESTIMATE_KEYS)
    bounded = {f"{e}.{bound}" for e in estimates if f"{e}.ci" in keys for bound in BOUNDS}
    return sorted({k for k in keys if k not in inside} | bounded)
