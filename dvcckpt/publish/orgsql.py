"""The `find` query language (`catalog.where`) compiled to DuckDB SQL over the warehouse.

`dvcckpt org find --where ...` means what `dvcckpt find --where ...` means in each
repository: a metric is compared by its point value (an estimate's `value`),
`FIELD.ci_low`/`.ci_high` are its interval's bounds, `evaluations.SPLIT.METRIC`
is METRIC in the last listed evaluation of SPLIT, `not` of an unknown value is
true, and a number compares only with numbers (a text metric never matches
`>= 0.9`), text only with text.

Every field is read once per row: the card's JSON (`card_versions.card`) is
parsed by one `json_extract` of every path the query names, into the list `j`;
each field then becomes three columns, `f<i>_r` (the JSON at its path), `f<i>_n`
(its number, or null) and `f<i>_t` (its text, or null), that conditions and sort
keys read. Text fields the table holds as columns (model, name, phase, kind,
created_at) and `tags` are read there, with no JSON parsed. Values are always
parameters (`$1`, `$2`...); identifiers only ever come from this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from dvcckpt.catalog.where import Compare, Field, ListLiteral, Literal, Logical, Not, SortKey
from dvcckpt.core.fields import is_schema_field
from dvcckpt.errors import UsageError

# Text fields `card_versions` holds as columns (the card's text, null for anything else).
COLUMNS = {"model": "model", "name": "name", "checkpoint.phase": "phase",
           "checkpoint.kind": "kind", "checkpoint.created_at": "created_at"}  # fmt: skip
# What the warehouse's slim copy of a card keeps (`hot`, made once per data file by
# `HOT_SQL`): the fields queries filter, sort and rank by, beside the text the table holds
# as columns. A query reading only these never parses a whole card (a third of its size).
HOT = ("metrics", "evaluations", "resources", "tags", "seeds", "run", "data.dataset",
       "data.version", "checkpoint.step", "checkpoint.epoch", "checkpoint.format")  # fmt: skip


def _hot_sql() -> str:
    """`hot` from `card`: one parse of the card, the sections laid out as in the card."""
    paths = ", ".join("'$" + "".join(f'."{p}"' for p in path.split(".")) + "'" for path in HOT)
    tops: dict[str, list[tuple[str, int]]] = {}
    for index, path in enumerate(HOT, start=1):
        top, _, inner = path.partition(".")
        tops.setdefault(top, []).append((inner, index))
    parts = []
    for top, members in tops.items():
        if members[0][0] == "":  # the whole section
            parts.append(f"'{top}', j[{members[0][1]}]")
        else:
            nested = ", ".join(f"'{name}', j[{index}]" for name, index in members)
            parts.append(f"'{top}', json_object({nested})")
    body = f"json_object({', '.join(parts)})"
    made = f"list_transform([json_extract(card, [{paths}])], lambda j: {body})[1]"
    return f"CASE WHEN json_valid(card) THEN {made} END"  # another publisher's text


HOT_SQL = _hot_sql()
_AS_MAP = "'\"MAP(VARCHAR, JSON)\"'"  # a JSON object as a map (null: not one, or a key twice)
_SECTION = "json_extract(hot, '$.\"metrics\"')"
_SPLITS = f"map_entries(json_transform({_SECTION}, {_AS_MAP}))"
_PLAIN_KEY = "^[A-Za-z0-9_-]*$"  # what a field's part can spell (`catalog.where`)
_BOUND = "json_extract(m.value, '$.\"ci\"[%d]')"


def _points_sql() -> str:
    """`points` from `hot`: `SPLIT.METRIC` (and `.ci_low`, `.ci_high`) -> the number a query
    compares, made by the very expressions `Compiler` applies to the JSON; null (queries
    then read the JSON) unless the map says exactly what the JSON does: the section an
    object or absent, every split an object or no object, no key twice or unspellable."""
    metrics = "map_entries(json_transform(s.value, " + _AS_MAP + "))"
    key = "s.key || '.' || m.key"
    bounds = [f"struct_pack(k := {key} || '.{name}', v := {numeric(bound)})"
              for name, bound in (("ci_low", _BOUND % 0), ("ci_high", _BOUND % 1))]  # fmt: skip
    entry = f"[struct_pack(k := {key}, v := {numeric(_point('m.value'))}), {', '.join(bounds)}]"
    each = f"CASE WHEN json_type(s.value) = 'OBJECT' THEN flatten(list_transform({metrics}, lambda m: {entry})) ELSE [] END"
    entries = f"list_filter(flatten(list_transform({_SPLITS}, lambda s: {each})), lambda e: e.v IS NOT NULL)"
    odd = (
        f"NOT regexp_matches(s.key, '{_PLAIN_KEY}') OR (json_type(s.value) = 'OBJECT' AND "
        f"coalesce(len(list_filter({metrics}, lambda m: NOT regexp_matches(m.key, '{_PLAIN_KEY}'))), -1) != 0)"
    )
    exact = (f"CASE WHEN coalesce(json_type({_SECTION}), 'NULL') = 'NULL' THEN true "
             f"WHEN json_type({_SECTION}) = 'OBJECT' THEN coalesce(len(list_filter({_SPLITS}, lambda s: {odd})), -1) = 0 "
             "ELSE false END")  # fmt: skip
    return f"CASE WHEN {exact} THEN map_from_entries(coalesce({entries}, [])) END"


def _point(value: str) -> str:
    """An estimate's `value`, an array's nothing, any other JSON itself (as `Compiler` reads)."""
    return (f"CASE json_type({value}) WHEN 'OBJECT' THEN json_extract({value}, '$.\"value\"') "
            f"WHEN 'ARRAY' THEN NULL ELSE {value} END")  # fmt: skip


def in_hot(path: str) -> bool:
    return any(path == kept or path.startswith(kept + ".") for kept in HOT)


NUMERIC = "('BIGINT', 'UBIGINT', 'DOUBLE', 'BOOLEAN')"
VALUE, EVALUATIONS = '."value"', '$."evaluations"'
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def card_object(column: str) -> str:
    """Whether a row's card text is a JSON object: rows come from every publisher, and
    text that does not parse (or is no object) counts as unreadable, never as an error
    (CASE: the type is asked only of valid JSON). A slim copy's `hot` was made from a
    valid card only (`HOT_SQL`), as an object: present is enough."""
    if column.endswith("hot"):
        return f"{column} IS NOT NULL"
    return f"CASE WHEN json_valid({column}) THEN json_type({column}) = 'OBJECT' ELSE false END"


def numeric(fragment: str) -> str:
    """A JSON value's number (true and false count 1 and 0, as SQLite compares them); a
    number beyond a double (`1e999`, which no card dvcckpt reads can hold) is none."""
    number = f"TRY_CAST({fragment} AS DOUBLE)"
    return f"CASE WHEN json_type({fragment}) IN {NUMERIC} AND isfinite({number}) THEN {number} END"


def textual(fragment: str) -> str:
    return (
        f"CASE WHEN json_type({fragment}) = 'VARCHAR' THEN json_extract_string({fragment}, '$') END"
    )


POINTS_SQL = _points_sql()


@dataclass
class Compiler:
    """Parameters and card paths gathered while compiling one statement."""

    params: list[Any] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)  # read from the card into `j`
    fields: dict[str, int] = field(default_factory=dict)  # resolved path -> column number
    columns: list[str] = field(default_factory=list)  # `f<i>_r, f<i>_n, f<i>_t` from JSON
    native: list[str] = field(default_factory=list)  # those of fields the table holds
    source: str = "card"  # the JSON column read: the card, or its `hot` sections (`HOT`)
    points: bool = False  # metrics' numbers from the slim copy's `points` map
    statement: str = ""  # the statement compiled (`publish.org`)

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def slot(self, path: str) -> str:
        """`j[k]`: the JSON at `path` in the card (each path read once)."""
        if path not in self.paths:
            self.paths.append(path)
        return f"j[{self.paths.index(path) + 1}]"

    def extraction(self) -> str:
        """The column `j` (every path in one parse of the card), or nothing if none is read."""
        if not self.paths:
            return ""
        return f", json_extract({self.source}, {self.param(list(self.paths))}::VARCHAR[]) AS j"

    def slim(self) -> bool:
        """Whether every field read from JSON sits in the `hot` sections."""
        return all(in_hot(path) for path in self.fields if path not in COLUMNS)

    def value(self, node: Field) -> int:
        """The number of the columns holding a field's value (defined on first use)."""
        key = node.resolved()
        if key not in self.fields:
            self.fields[key] = index = len(self.fields)
            raw, number, text = self._read(node)
            defined = self.native if key in COLUMNS else self.columns
            defined += [f"{raw} AS f{index}_r", f"{number} AS f{index}_n",
                        f"{text} AS f{index}_t"]  # fmt: skip
        return self.fields[key]

    def _read(self, node: Field) -> tuple[str, str, str]:
        path = node.resolved()
        if path in COLUMNS:
            return f"to_json({COLUMNS[path]})", "NULL::DOUBLE", COLUMNS[path]
        mapped = self._mapped(node)
        if mapped is not None:
            return self.slot(node.json_path()), mapped, "NULL::VARCHAR"
        raw, point = self._fragments(node)
        if path.split(".")[0] in ("metrics", "evaluations"):  # numbers only, as find
            return raw, numeric(point), "NULL::VARCHAR"
        return raw, numeric(point), textual(point)

    def _mapped(self, node: Field) -> str | None:
        """A metric's number from `points` (the map the slim copy holds, `POINTS_SQL`), the
        JSON (`odd`: the hot sections of a row without the map) read only for a row
        without one; None when the map cannot hold the field."""
        parts, bound = node.value_parts(), node.bound()
        if not self.points or len(parts) != 3 or parts[0] != "metrics":
            return None
        if not all(re.fullmatch(_PLAIN_KEY.strip("^$"), part) for part in parts):
            return None
        key = ".".join(parts[1:]) + ("" if bound is None else (".ci_low", ".ci_high")[bound])
        raw = f"json_extract(odd, {self.param(node.json_path())})"
        if bound is None:
            value = f"json_extract(odd, {self.param(node.point_path())})"
            raw = f"CASE json_type({raw}) WHEN 'OBJECT' THEN {value} WHEN 'ARRAY' THEN NULL ELSE {raw} END"
        return (
            f"CASE WHEN points IS NOT NULL THEN points[{self.param(key)}] ELSE {numeric(raw)} END"
        )

    def _fragments(self, node: Field) -> tuple[str, str]:
        """The JSON at the field's path, and its point value (an estimate's `value`)."""
        parts = node.value_parts()
        bound = node.bound()
        suffix = "" if bound is None else f'."ci"[{bound}]'
        if parts[0] == "evaluations" and len(parts) > 2:
            entry = self._latest_evaluation(parts[1])
            inner = '$."metrics"' + "".join(f'."{p}"' for p in parts[2:])
            raw = f"json_extract({entry}, {self.param(inner + suffix)})"
            point = f"json_extract({entry}, {self.param(inner + VALUE)})"
        else:
            raw = self.slot(node.json_path())
            point = self.slot(node.point_path())
        if bound is not None or is_schema_field(node.resolved()):
            return raw, raw
        return (
            raw,
            f"CASE json_type({raw}) WHEN 'OBJECT' THEN {point} WHEN 'ARRAY' THEN NULL ELSE {raw} END",
        )

    def _latest_evaluation(self, split: str) -> str:
        """The last listed evaluation of `split` (what `catalog.rows.latest_evaluations` keeps)."""
        entries = f"TRY_CAST({self.slot(EVALUATIONS)} AS JSON[])"
        same = (
            f"lambda e: json_type(e, '$.split') = 'VARCHAR'"
            f" AND json_extract_string(e, '$.split') = {self.param(split)}"
        )
        return f"list_filter({entries}, {same})[-1]"

    def reads_json(self, sql: str) -> bool:
        """Whether an expression reads a field from the card's JSON (not a table column)."""
        native = {int(c.split(" AS f")[1].split("_")[0]) for c in self.native}
        return any(int(i) not in native for i in re.findall(r"\bf(\d+)_[rnt]\b", sql))

    # -- conditions ----------------------------------------------------------------------

    def condition(self, node: Any) -> str:
        """A DuckDB boolean expression equivalent to the parsed query."""
        if isinstance(node, Logical):
            return f" {node.op.upper()} ".join(f"({self.condition(p)})" for p in node.parts)
        if isinstance(node, Not):
            return f"NOT coalesce(({self.condition(node.operand)}), false)"
        if isinstance(node, Field):
            return self._truthy(self.value(node))
        if isinstance(node, Literal):
            return "true" if node.value else "false"
        if isinstance(node, Compare):
            return self._compare(node)
        raise AssertionError(f"unknown node {node!r}")

    def _truthy(self, index: int) -> str:
        """Present and not false, 0, "", [] or {} (a bare field, as find reads it)."""
        value = f"coalesce(f{index}_n::VARCHAR, f{index}_t, f{index}_r::VARCHAR)"
        falsy = "('0.0', '', '[]', '{}', 'null', 'false')"
        return f"coalesce({value} NOT IN {falsy}, false)"

    def _compare(self, node: Compare) -> str:
        left, right, op = node.left, node.right, node.op
        if op == "in":
            return self._membership(left, right)
        if isinstance(left, Literal) and isinstance(right, Field):
            left, right, op = right, left, _FLIPPED[op]
        operator = {"==": "=", "!=": "!="}.get(op, op)
        if isinstance(left, Field) and isinstance(right, Literal):
            index = self.value(left)
            if right.value is None:
                missing = f"(f{index}_r IS NULL OR json_type(f{index}_r) = 'NULL')"
                return f"NOT {missing}" if op == "!=" else missing
            column, value = _typed(index, right.value)
            return f"{column} {operator} {self.param(value)}"
        if isinstance(left, Field) and isinstance(right, Field):
            a, b = self.value(left), self.value(right)
            return f"(f{a}_n {operator} f{b}_n) OR (f{a}_t {operator} f{b}_t)"
        if isinstance(left, Literal) and isinstance(right, Literal):
            return self._constant(left.value, operator, right.value)
        raise UsageError(
            "--where: compare a field with a value, e.g. step >= 1000",
            hint="parenthesised conditions combine with and/or, not with comparisons",
        )

    def _constant(self, a: Any, operator: str, b: Any) -> str:
        """Two literals: compared when of one kind (numbers, texts), else never true."""
        if a is None or b is None or _kind(a) != _kind(b):
            return "false"
        return f"{self.param(_plain(a))} {operator} {self.param(_plain(b))}"

    def _membership(self, left: Any, right: Any) -> str:
        if isinstance(right, ListLiteral):
            if not isinstance(left, Field):
                raise _bad_in()
            index = self.value(left)
            tests = []
            for value in right.values:
                if value is not None:  # SQL's IN never matches a null
                    column, typed = _typed(index, value)
                    tests.append(f"{column} = {self.param(typed)}")
            return " OR ".join(f"({t})" for t in tests) or "false"
        if not isinstance(right, Field):
            raise _bad_in()
        if isinstance(left, Literal) and isinstance(left.value, str) and right.resolved() == "tags":
            return f"coalesce(list_contains(tags, {self.param(left.value)}), false)"
        members = self.value(right)
        items = (
            f"CASE json_type(f{members}_r) WHEN 'ARRAY' THEN TRY_CAST(f{members}_r AS JSON[])"
            f" WHEN 'OBJECT' THEN json_extract(f{members}_r, '$.*') ELSE [f{members}_r] END"
        )
        return f"coalesce(len(list_filter({items}, lambda m: {self._equal_to(left)})) > 0, false)"

    def _equal_to(self, left: Any) -> str:
        """`m` (a JSON member of a list) equals `left` (as json_each's values compare)."""
        if isinstance(left, Literal):
            if left.value is None:
                return "false"
            if _kind(left.value) == "number":
                return f"{numeric('m')} = {self.param(_plain(left.value))}"
            return f"{textual('m')} = {self.param(str(left.value))}"
        if isinstance(left, Field):
            index = self.value(left)
            return f"({numeric('m')} = f{index}_n OR {textual('m')} = f{index}_t)"
        raise _bad_in()

    # -- ordering ------------------------------------------------------------------------

    def order(self, keys: list[SortKey]) -> list[str]:
        """ORDER BY terms: values first (absent last); ascending, numbers sort before text
        (as SQLite sorts them), descending after it."""
        terms = []
        for key in keys:
            index = self.value(key.field)
            number, text = f"f{index}_n", f"f{index}_t"
            terms.append(f"({number} IS NULL AND {text} IS NULL)")
            if key.descending:
                terms += [f"{text} IS NULL", f"{text} DESC", f"{number} DESC"]
            else:
                terms += [f"{number} IS NULL", f"{number} ASC", f"{text} ASC"]
        return terms

    def present(self, node: Field) -> str:
        index = self.value(node)
        return f"(f{index}_n IS NOT NULL OR f{index}_t IS NOT NULL)"


def _typed(index: int, value: Any) -> tuple[str, Any]:
    """The column a literal compares with (numbers with the number, the rest with text)."""
    if _kind(value) == "number":
        return f"f{index}_n", _plain(value)
    return f"f{index}_t", str(value)


def _kind(value: Any) -> str:
    return "number" if isinstance(value, bool | int | float) else "text"


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, bool | int | float) else str(value)


def _bad_in() -> UsageError:
    return UsageError(
        "--where: the right side of `in` must be a field or a [list]",
        hint='for example "baseline" in tags, or phase in ["train", "finetune"]',
    )
