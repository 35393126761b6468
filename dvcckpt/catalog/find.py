"""`dvcckpt find`: a parsed query (`catalog.where`) compiled to SQL and run in SQLite.

Filters compile to parameterised SQL over `json_extract`, so they run inside
SQLite against the slim `hot` copy of each card when it holds the field.
"""

from __future__ import annotations

import difflib
import math
from typing import Any

from dvcckpt.catalog import where
from dvcckpt.catalog.index import Index
from dvcckpt.catalog.rows import HOT_CHECKPOINT, HOT_SECTIONS, VERSION_ROWS, Version
from dvcckpt.catalog.where import (
    Compare,
    Field,
    ListLiteral,
    Literal,
    Logical,
    Not,
    SortKey,
    parse,
    parse_top,
    sort_keys,
)
from dvcckpt.catalog.where import fields as where_fields
from dvcckpt.core.fields import is_schema_field
from dvcckpt.errors import UsageError

HINT_CARDS = 2_000  # cards read for the closest-field hint of an unknown field


def column(field: Field) -> str:
    """The slim `hot` copy when it holds the field, else the full card."""
    parts = field.parts()
    in_hot = parts[0] in HOT_SECTIONS and (
        parts[0] != "checkpoint" or (len(parts) > 1 and parts[1] in HOT_CHECKPOINT)
    )
    return "k.hot" if in_hot else "b.card"


def field_sql(field: Field) -> str:
    return f"json_extract({column(field)}, ?)"


def compile_sql(node: Any) -> tuple[str, list[Any]]:
    """A SQL boolean expression (and its parameters) equivalent to the parsed query."""
    if isinstance(node, Logical):
        compiled = [compile_sql(part) for part in node.parts]
        joined = f" {node.op.upper()} ".join(f"({sql})" for sql, _ in compiled)
        return joined, [p for _, params in compiled for p in params]
    if isinstance(node, Not):
        sql, params = compile_sql(node.operand)
        return f"NOT coalesce(({sql}), 0)", params
    if isinstance(node, Field):  # a bare field: present and truthy
        return f"coalesce({field_sql(node)}, 0) NOT IN (0, '', '[]', '{{}}')", [node.json_path()]
    if isinstance(node, Literal):
        return "?", [bool(node.value)]
    if isinstance(node, Compare):
        return _compare(node)
    raise AssertionError(f"unknown node {node!r}")


def _compare(node: Compare) -> tuple[str, list[Any]]:
    if node.op == "in":
        if isinstance(node.right, ListLiteral):
            left, params = _value(node.left)
            marks = ", ".join("?" for _ in node.right.values)
            return f"{left} IN ({marks})", [*params, *node.right.values]
        if isinstance(node.right, Field):
            left, params = _value(node.left)
            member = (
                f"EXISTS (SELECT 1 FROM json_each({column(node.right)}, ?) WHERE value = {left})"
            )
            return member, [node.right.json_path(), *params]
        raise UsageError(
            "--where: the right side of `in` must be a field or a [list]",
            hint='for example "baseline" in tags, or phase in ["train", "finetune"]',
        )
    left, left_params = _value(node.left)
    right, right_params = _value(node.right)
    if isinstance(node.right, Literal) and node.right.value is None:
        return f"{left} IS {'NOT ' if node.op == '!=' else ''}NULL", left_params
    operator = {"==": "=", "!=": "!="}.get(node.op, node.op)
    return f"{left} {operator} {right}", [*left_params, *right_params]


def _value(node: Any) -> tuple[str, list[Any]]:
    if isinstance(node, Field):
        return field_sql(node), [node.json_path()]
    if isinstance(node, Literal):
        return "?", [node.value]
    raise UsageError(
        "--where: compare a field with a value, e.g. step >= 1000",
        hint="parenthesised conditions combine with and/or, not with comparisons",
    )


def run(
    catalog: Index,
    *,
    where: str | None = None,
    model: str | None = None,
    phase: str | None = None,
    tag: str | None = None,
    owner: str | None = None,
    since: str | None = None,
    until: str | None = None,
    sort: str | None = None,
    top: str | None = None,
    by: str | None = None,
    columns: list[str] | None = None,
    all_versions: bool = False,
    all_refs: bool = False,
    cards: bool = True,
) -> list[Version]:
    """Checkpoints matching the filters: latest version of each card unless `all_versions`.

    `cards=False`: a listing that shows no card body decodes none (each is decoded on
    first use of `Version.card`).
    """
    conditions: list[tuple[str, list[Any]]] = []
    tree = parse(where) if where else None
    if tree is not None:
        conditions.append(compile_sql(tree))
    shortcuts = (("model", model), ("phase", phase), ("owner", owner))
    for name, value in shortcuts:
        if value is not None:
            conditions.append(_compare(Compare("==", Field(name), Literal(value))))
    if tag is not None:
        conditions.append(_compare(Compare("in", Literal(tag), Field("tags"))))
    if since is not None:
        since = _date_option("--since", since)
        conditions.append(_compare(Compare(">=", Field("created_at"), Literal(since))))
    if until is not None:
        until = _day_after(_date_option("--until", until))
        conditions.append(_compare(Compare("<", Field("created_at"), Literal(until))))
    count, percent = parse_top(top)
    if top and not by:
        raise UsageError("--top needs --by METRIC", hint="for example --top 5 --by metrics.dev.f1")
    ranking = sort_keys(by)[0] if by else None
    if ranking and not by.startswith(("-", "+")):  # type: ignore[union-attr]
        ranking = SortKey(ranking.field, True)  # higher is better unless `+metric`
    keys = ([ranking] if ranking else []) + sort_keys(sort)
    if ranking:
        conditions.append((f"{field_sql(ranking.field)} IS NOT NULL", [ranking.field.json_path()]))
    commits = None if all_refs else catalog.reachable(["HEAD"])
    scope = catalog.scope(commits)
    asked = [("--where", f) for f in (where_fields(tree) if tree is not None else [])]
    asked += [("--by" if key is ranking else "--sort", key.field) for key in keys]
    _require_fields(catalog, scope, asked)
    found = _select(catalog, conditions, keys, scope, all_versions)
    if count is not None:
        found = found[:count]
    elif percent is not None:
        found = found[: max(1, math.ceil(len(found) * percent / 100))] if found else []
    return _with_cards(catalog, found, [Field(c) for c in (columns or [])], cards)


def _date_option(option: str, text: str) -> str:
    """A valid date or date-time (as written), else a usage error naming the value."""
    try:
        return where.date(text.strip().replace(" ", "T", 1))
    except ValueError as exc:
        raise UsageError(
            f"{option} {text[:40]!r}: {exc}", hint="use YYYY-MM-DD, e.g. 2026-01-05"
        ) from None


def _day_after(day: str) -> str:
    import datetime as dt

    moment = dt.datetime.fromisoformat(day[:10])
    if moment.date() == dt.date.max:
        return "9999-12-31~"  # sorts after every created_at of that last day
    return (moment.date() + dt.timedelta(days=1)).isoformat()


def _select(
    catalog: Index,
    conditions: list[tuple[str, list[Any]]],
    keys: list[SortKey],
    scope: str,
    all_versions: bool,
) -> list[tuple[int, int]]:
    """(commit id, path id) of matches in order; cards are fetched for what is kept."""
    params: list[Any] = []
    sort_columns = ""
    for index, key in enumerate(keys):
        sort_columns += f", {field_sql(key.field)} AS s_{index}"
        params.append(key.field.json_path())
    where = " AND ".join(f"({sql})" for sql, _ in conditions) or "1"
    for _, condition_params in conditions:
        params.extend(condition_params)
    order = "".join(
        f"s_{i} IS NULL, s_{i} {'DESC' if key.descending else 'ASC'}, "
        for i, key in enumerate(keys)
    )
    latest = "" if all_versions else "AND v.rn = 1"
    bodies = "LEFT JOIN bodies b ON b.id = k.id" if "b.card" in where + sort_columns else ""
    statement = f"""
        WITH v AS (
            SELECT v.commit_id, v.path_id, v.card_id, v.status, v.generation, v.committed,
                   ROW_NUMBER() OVER (PARTITION BY v.path_id
                       ORDER BY v.generation DESC, v.committed DESC, v.commit_id DESC) AS rn
            FROM versions v {scope})
        SELECT v.commit_id, v.path_id {sort_columns}
        FROM v JOIN cards k ON k.id = v.card_id {bodies}
        WHERE v.status != 'D' AND k.error IS NULL {latest} AND {where}
        ORDER BY {order}v.generation DESC, v.committed DESC, v.commit_id DESC
    """
    return [(row[0], row[1]) for row in catalog.sql(statement, params)]


def _require_fields(catalog: Index, scope: str, asked: list[tuple[str, Field]]) -> None:
    """Refuse a field that no card in scope has: a misspelt field would otherwise
    match nothing (or sort nothing) and look like a real, empty answer."""
    checked: set[str] = set()
    for option, field in asked:
        path = field.resolved()
        if path in checked or is_schema_field(path):
            continue
        checked.add(path)
        source = column(field)
        bodies = "JOIN bodies b ON b.id = k.id" if source == "b.card" else ""
        statement = f"""SELECT 1 FROM versions v {scope} JOIN cards k ON k.id = v.card_id {bodies}
            WHERE k.error IS NULL AND json_type({source}, ?) IS NOT NULL LIMIT 1"""
        if not catalog.sql(statement, [field.json_path()]) and _any_card(catalog, scope):
            raise _unknown_field(catalog, scope, option, field)


def _any_card(catalog: Index, scope: str) -> bool:
    """Whether there is a card to misspell against (an empty registry answers empty)."""
    statement = f"""SELECT 1 FROM versions v {scope} JOIN cards k ON k.id = v.card_id
        WHERE k.error IS NULL LIMIT 1"""
    return bool(catalog.sql(statement))


def _unknown_field(catalog: Index, scope: str, option: str, field: Field) -> UsageError:
    """The error naming the field, with the closest fields the cards in scope do have."""
    path = field.resolved()
    source = column(field)
    bodies = "JOIN bodies b ON b.id = k.id" if source == "b.card" else ""
    # Hints come from the newest cards in scope, so an error costs the same at any
    # history length (whether the field exists at all was checked over every card).
    statement = f"""SELECT DISTINCT t.fullkey FROM (SELECT DISTINCT v.card_id AS id
            FROM versions v {scope} ORDER BY v.card_id DESC LIMIT {HINT_CARDS}) c
            JOIN cards k ON k.id = c.id {bodies},
            json_tree({source}) t WHERE k.error IS NULL AND t.fullkey NOT LIKE '%[%'"""
    known = sorted({row[0][2:].replace('"', "") for row in catalog.sql(statement) if row[0] != "$"})
    close = difflib.get_close_matches(path, known, n=3, cutoff=0.6)
    section = path.split(".")[0]
    close = close or [k for k in known if k.startswith(section + ".")][:5] or known[:5]
    spelled = "" if field.path == path else f" (written {field.path})"
    hint = f"closest fields: {', '.join(close)}" if close else "no card in scope has fields"
    if section == "metrics":
        hint += "; a dotted path outside the card sections is a metric: dev.f1 = metrics.dev.f1"
    return UsageError(f"{option}: no checkpoint in scope has the field {path}{spelled}", hint=hint)


def _with_cards(
    catalog: Index, found: list[tuple[int, int]], columns: list[Field], decoded: bool
) -> list[Version]:
    """Full rows (card included, plus the requested columns) for the kept matches only."""
    if not found:
        return []
    catalog.sql(
        "CREATE TEMP TABLE IF NOT EXISTS picked (position INTEGER PRIMARY KEY, commit_id INTEGER, path_id INTEGER)"
    )
    catalog.sql("DELETE FROM temp.picked")
    catalog.executemany(
        "INSERT INTO temp.picked VALUES (?, ?, ?)",
        ((i, commit, path) for i, (commit, path) in enumerate(found)),
    )
    extra = "".join(f", json_extract(b.card, ?) AS x_{i}" for i in range(len(columns)))
    statement = VERSION_ROWS.replace("SELECT ", f"SELECT p2.position{extra}, ", 1).replace(
        "FROM versions v",
        "FROM temp.picked p2 JOIN versions v ON v.commit_id = p2.commit_id AND v.path_id = p2.path_id",
        1,
    )
    rows = catalog.sql(f"{statement} ORDER BY p2.position", [c.json_path() for c in columns])
    return [Version.from_row(row, decoded=decoded) for row in rows]
