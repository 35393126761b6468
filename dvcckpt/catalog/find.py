"""`dvcckpt find`: a parsed query (`catalog.where`) compiled to SQL and run in SQLite.

Filters compile to parameterised SQL over `json_extract`, so they run inside
SQLite against the slim `hot` copy of each card when it holds the field. A metric
is read by its point value wherever it is compared, sorted or ranked: the `value`
of an estimate `{value, ci, method}`, the number itself otherwise. The latest
version of each card comes from the catalog's maintained `latest` table, so a
query reads one row per card, not the whole history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dvcckpt.catalog import known, latest, numbers, ranked, where
from dvcckpt.catalog.index import Index
from dvcckpt.catalog.known import column
from dvcckpt.catalog.rows import VERSION_ROWS, Version
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

# Text fields the `cards` row holds as columns (the text itself, NULL for anything else):
# read there, a filter on them needs no JSON parsed and can use an index (model, name).
COLUMNS = {"model": "k.model", "name": "k.name", "checkpoint.phase": "k.phase",
           "checkpoint.kind": "k.kind", "checkpoint.created_at": "k.created_at"}  # fmt: skip


def field_sql(field: Field) -> tuple[str, list[Any]]:
    """The value a field compares, sorts and ranks by, and its parameters.

    For a field that may hold an estimate, the point value: `FIELD.value` when that
    exists, else the value itself (two JSON lookups either way). Fields the schema
    names (`step`, `phase`, `tags`...) and interval bounds are read as they are.
    """
    if stored := COLUMNS.get(field.resolved()):
        return stored, []
    if numbers.indexes(field.resolved()):  # metrics, evaluations: one indexed row, no JSON
        return numbers.value_sql(field.resolved())
    source = column(field)
    if field.bound() is not None or is_schema_field(field.resolved()):
        return f"json_extract({source}, ?)", [field.json_path()]
    # One json_type and one json_extract per row: an estimate gives its `value`, a
    # group of metrics (or a list) gives NULL, so `dev.class_f1 > 1000` compares nothing
    # instead of SQLite's "text sorts above every number".
    sql = (
        f"CASE json_type({source}, ?) WHEN 'object' THEN json_extract({source}, ?)"
        f" WHEN 'array' THEN NULL ELSE json_extract({source}, ?) END"
    )
    return sql, [field.json_path(), field.point_path(), field.json_path()]


def compile_sql(node: Any) -> tuple[str, list[Any]]:
    """A SQL boolean expression (and its parameters) equivalent to the parsed query."""
    if isinstance(node, Logical):
        compiled = [compile_sql(part) for part in node.parts]
        joined = f" {node.op.upper()} ".join(f"({sql})" for sql, _ in compiled)
        return joined, [p for _, params in compiled for p in params]
    if isinstance(node, Not):
        sql, params = compile_sql(node.operand)
        return f"NOT coalesce(({sql}), 0)", params
    if isinstance(node, Field):  # a bare field: present and truthy (a group: non-empty)
        sql, params = field_sql(node)
        present = f"json_extract({column(node)}, ?)"
        truthy = f"coalesce({sql}, {present}, 0) NOT IN (0, '', '[]', '{{}}')"
        return truthy, [*params, node.json_path()]
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
    if indexed := _indexed_comparison(node):
        return indexed
    left, left_params = _value(node.left)
    right, right_params = _value(node.right)
    if isinstance(node.right, Literal) and node.right.value is None:
        return f"{left} IS {'NOT ' if node.op == '!=' else ''}NULL", left_params
    operator = {"==": "=", "!=": "!="}.get(node.op, node.op)
    return f"{left} {operator} {right}", [*left_params, *right_params]


_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def _indexed_comparison(node: Compare) -> tuple[str, list[Any]] | None:
    """A metric compared with a number, through the index of numbers (`catalog.numbers`)."""
    field, literal, op = node.left, node.right, node.op
    if isinstance(field, Literal) and isinstance(literal, Field):
        field, literal, op = literal, field, _FLIPPED.get(op, op)
    if not (isinstance(field, Field) and isinstance(literal, Literal)) or op not in _FLIPPED:
        return None
    if type(literal.value) not in (int, float) or not numbers.indexes(field.resolved()):
        return None
    return numbers.compare_sql(field.resolved(), "=" if op == "==" else op, literal.value)


def _value(node: Any) -> tuple[str, list[Any]]:
    if isinstance(node, Field):
        return field_sql(node)
    if isinstance(node, Literal):
        return "?", [node.value]
    raise UsageError(
        "--where: compare a field with a value, e.g. step >= 1000",
        hint="parenthesised conditions combine with and/or, not with comparisons",
    )


@dataclass(frozen=True)
class Plan:
    """A compiled query: what matches, in which scope, best first by `keys`."""

    conditions: list[tuple[str, list[Any]]]
    keys: list[SortKey]
    source: tuple[str, str]
    by_card: bool  # the filter names a model or a checkpoint (see `_select`)
    count: int | None  # --top N
    percent: float | None  # --top N%

    def statement(
        self, select: str, joins: str = "", order_by: str | None = None, driver: str = ""
    ) -> tuple[str, list[Any]]:
        """SELECT `select` over every match (no body read), in `order_by` or best first;
        `driver`: a table `w` of card ids (`card_id`) the query reads the cards from."""
        bodies = "b.card" in select
        return _statement(self.conditions, self.keys, self.source, self.by_card, select,
                          joins, bodies, order_by, driver)  # fmt: skip


def run(
    catalog: Index,
    *,
    columns: list[str] | None = None,
    cards: bool = True,
    **options: Any,
) -> list[Version]:
    """Checkpoints matching the filters (`plan`'s options): the latest version of each
    card unless `all_versions`, best first by `by`, then `sort`, then newest.

    `cards=False`: a listing that shows no card body reads none (`Version.card` is
    None; the requested `columns` are all it needs), so a listing of every card costs
    a fraction of reading them all.
    """
    query = plan(catalog, **options)
    fields = [Field(c) for c in (columns or [])]
    if query.count is None and query.percent is None:  # every match is kept: one pass
        return _listing(catalog, query, fields, cards)
    if query.count is not None:  # the best N: from the top of the ranked metric's index
        best = ranked.best(catalog, query, query.count)
        found = _select(catalog, query, query.count) if best is None else best
    else:  # --top N%: of every match
        found = _select(catalog, query)
        share = math.ceil(len(found) * (query.percent or 0) / 100)
        found = found[: max(1, share)] if found else []
    return _with_cards(catalog, found, fields, cards)


def plan(
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
    all_versions: bool = False,
    all_refs: bool = False,
) -> Plan:
    """The filters compiled, every field they name checked against the cards in scope."""
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
        conditions.append(_ranked(ranking.field))
    asked = [("--where", f) for f in (where_fields(tree) if tree is not None else [])]
    asked += [("--by" if key is ranking else "--sort", key.field) for key in keys]
    known.require(catalog, latest.source(all_refs=all_refs, latest=False), asked)
    source = latest.source(all_refs=all_refs, latest=not all_versions)
    by_card = model is not None or _names_card(tree)
    return Plan(conditions, keys, source, by_card, count, percent)


def _ranked(field: Field) -> tuple[str, list[Any]]:
    """Only cards that hold a value of the field ranked by (read per candidate: a list
    of every card holding a common metric would drive the whole query)."""
    ranked, ranked_params = field_sql(field)
    return f"{ranked} IS NOT NULL", ranked_params


def _names_card(tree: Any) -> bool:
    """Whether the query requires one model or checkpoint name (an indexed column)."""
    parts = tree.parts if isinstance(tree, Logical) and tree.op == "and" else (tree,)
    for part in parts:
        if isinstance(part, Compare) and part.op == "==":
            sides = (part.left, part.right)
            named = [s for s in sides if isinstance(s, Field) and s.resolved() in ("model", "name")]
            if named and any(isinstance(s, Literal) and isinstance(s.value, str) for s in sides):
                return True
    return False


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


def _select(catalog: Index, query: Plan, limit: int = -1) -> list[tuple[int, int]]:
    """(commit id, path id) of the first `limit` matches (-1: all) in order; cards are
    fetched for what is kept.

    `by_card`: the filter names a model or checkpoint, so the matching cards are found
    through their index first and their versions looked up (SQLite would otherwise
    walk every version in scope, not knowing how few cards a model has).
    """
    statement, params = query.statement("v.commit_id, v.path_id")
    return [(row[0], row[1]) for row in catalog.sql(f"{statement} LIMIT ?", [*params, limit])]


def _listing(catalog: Index, query: Plan, columns: list[Field], decoded: bool) -> list[Version]:
    """Every match as a full row, in one query (no `--top` cut to apply first)."""
    extra, paths = columns_sql(columns)
    body = "b.card" if decoded else "NULL AS card"
    select = f"{extra} AS x, {_ROW_COLUMNS}, {body}"
    joins = "JOIN commits c ON c.id = v.commit_id JOIN paths p ON p.id = v.path_id"
    statement, params = _statement(
        query.conditions, query.keys, query.source, query.by_card, select, joins,
        decoded or "b.card" in extra,
    )  # fmt: skip
    return [
        Version.listed(tuple(row), decoded=decoded)
        for row in catalog.sql(statement, paths + params)
    ]


# The columns of `rows.VERSION_ROWS` before the card, over `v`, `c`, `p` and `k`.
_ROW_COLUMNS = """c.sha, v.generation, c.author, c.email, c.authored, v.committed, c.subject,
    p.path, k.blob, v.status, k.name, k.model, k.phase, k.step, k.created_at"""


def columns_sql(columns: list[Field]) -> tuple[str, list[Any]]:
    """Requested columns as one JSON array, decoded once per row: an estimate stays a
    dict (json_extract hands objects to the array as JSON), a number a number.

    Columns that all sit in one JSON document are one `json_extract` of several paths
    (one parse of the document per row, the array built as it is read)."""
    paths = [c.json_path() for c in columns]
    sources = {column(c) for c in columns}
    if len(columns) > 1 and len(sources) == 1:
        nulls = ", ".join("null" for _ in columns)  # a row without the document
        marks = ", ".join("?" for _ in columns)
        return f"coalesce(json_extract({sources.pop()}, {marks}), '[{nulls}]')", paths
    extra = ", ".join(f"json_extract({column(c)}, ?)" for c in columns)
    return f"json_array({extra})", paths


def _statement(
    conditions: list[tuple[str, list[Any]]],
    keys: list[SortKey],
    source: tuple[str, str],
    by_card: bool,
    select: str,
    joins: str = "",
    bodies: bool = False,
    order_by: str | None = None,
    driver: str = "",
) -> tuple[str, list[Any]]:
    """The query selecting `select` for every match, best first by `keys`, then newest
    (or in `order_by`); cards read from `driver`'s card ids when given."""
    params: list[Any] = []
    sort_columns = ""
    keys = keys if order_by is None else []  # another order: no sort key is read
    for index, key in enumerate(keys):
        sql, key_params = field_sql(key.field)
        sort_columns += f", {sql} AS s_{index}"
        params.extend(key_params)
    where = " AND ".join(f"({sql})" for sql, _ in conditions) or "1"
    for _, condition_params in conditions:
        params.extend(condition_params)
    order = "".join(
        f"s_{i} IS NULL, s_{i} {'DESC' if key.descending else 'ASC'}, "
        for i, key in enumerate(keys)
    )
    versions, in_scope = source
    tables = f"cards k CROSS JOIN {versions}" if by_card else f"{versions} JOIN cards k"
    if driver:  # walked in its order: each card's versions in scope looked up
        tables = f"{driver} CROSS JOIN cards k ON k.id = w.card_id CROSS JOIN {versions}"
    if bodies or "b.card" in where + sort_columns:
        joins += " LEFT JOIN bodies b ON b.id = k.id"
    statement = f"""
        SELECT {select} {sort_columns}
        FROM {tables} {joins}
        WHERE k.id = v.card_id AND {in_scope} AND v.status != 'D' AND k.error IS NULL
          AND {where}
        {_order_clause(order_by, f"{order}{_NEWEST}")}
    """
    return statement, params


# Newest first, then by path within a commit (the order is total: a tie never depends
# on the plan SQLite picks).
_NEWEST = (
    "v.generation DESC, v.committed DESC, v.commit_id DESC,"
    " (SELECT path FROM paths WHERE id = v.path_id) DESC"
)


def _order_clause(order_by: str | None, best_first: str) -> str:
    if order_by is None:
        return f"ORDER BY {best_first}"
    return f"ORDER BY {order_by}" if order_by else ""


def _with_cards(
    catalog: Index, found: list[tuple[int, int]], columns: list[Field], decoded: bool
) -> list[Version]:
    """Rows (card included unless `decoded` is False, plus the requested columns) for the
    kept matches only."""
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
    extra, paths = columns_sql(columns)
    statement = VERSION_ROWS.replace("SELECT ", f"SELECT {extra} AS x, ", 1).replace(
        "FROM versions v",
        "FROM temp.picked p2 JOIN versions v ON v.commit_id = p2.commit_id AND v.path_id = p2.path_id",
        1,
    )
    if not decoded and all(column(c) != "b.card" for c in columns):
        # No body is read: the card's JSON is the largest part of a row by far.
        statement = statement.replace("b.card", "NULL AS card", 1).replace(
            "LEFT JOIN bodies b ON b.id = v.card_id", "", 1
        )
    rows = catalog.sql(f"{statement} ORDER BY p2.position", paths)
    return [Version.listed(tuple(row), decoded=decoded) for row in rows]
