"""`dvcckpt find`: a small query language over card fields, compiled to SQLite.

    metrics.test.macro_f1 >= 0.85 and (phase == "finetune" or "baseline" in tags)

Fields are dotted card paths (`metrics.dev.macro_f1`) or shortcuts (`phase`,
`step`, `tags`, `owner`...). Operators: == != < <= > >=, `in`, `not in`, and,
or, not, parentheses. Literals: numbers, "strings", dates (2026-01-05),
true/false/null and [lists]. Parsing is a recursive descent over tokens; the
result compiles to a parameterised SQL expression on `json_extract`, so
filtering runs inside SQLite.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from dvcckpt.catalog.index import HOT_CHECKPOINT, HOT_SECTIONS, VERSION_ROWS, Catalog, Version
from dvcckpt.errors import UsageError

SHORTCUTS = {
    "phase": "checkpoint.phase",
    "kind": "checkpoint.kind",
    "step": "checkpoint.step",
    "epoch": "checkpoint.epoch",
    "created_at": "checkpoint.created_at",
    "created": "checkpoint.created_at",
    "sha256": "checkpoint.sha256",
    "size": "checkpoint.size",
    "owner": "run.owner",
    "task": "run.task",
    "run": "run.name",
    "group": "run.group",
    "dataset": "data.dataset",
    "seed": "seeds.seed",
}
_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<date>\d{4}-\d{2}-\d{2}(?:T[0-9:.]+Z?)?)(?![\w.])
      | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.])
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>==|!=|<=|>=|<|>|=)
      | (?P<punct>[()\[\],])
      | (?P<word>[A-Za-z_][A-Za-z0-9_.\-]*)
    """,
    re.X,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    column: int  # 1-based, for error messages


@dataclass(frozen=True)
class Field:
    path: str

    def json_path(self) -> str:
        return "$" + "".join(f'."{part}"' for part in self.parts())

    def parts(self) -> list[str]:
        return SHORTCUTS.get(self.path, self.path).split(".")

    def column(self) -> str:
        """The slim `hot` copy when it holds the field, else the full card."""
        parts = self.parts()
        in_hot = parts[0] in HOT_SECTIONS and (
            parts[0] != "checkpoint" or (len(parts) > 1 and parts[1] in HOT_CHECKPOINT)
        )
        return "k.hot" if in_hot else "b.card"

    def sql(self) -> str:
        return f"json_extract({self.column()}, ?)"


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class ListLiteral:
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Compare:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Logical:
    op: str  # and / or
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    operand: Any


class QuerySyntaxError(UsageError):
    def __init__(self, expression: str, column: int, message: str) -> None:
        super().__init__(
            f"--where: syntax error at column {column}: {message}",
            hint="for example --where 'metrics.test.macro_f1 >= 0.85 and \"baseline\" in tags'",
            details=[expression, " " * (column - 1) + "^"],
        )
        self.column = column


def tokenize(expression: str) -> list[Token]:
    tokens, position = [], 0
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None:
            raise QuerySyntaxError(expression, position + 1, f"unexpected {expression[position]!r}")
        kind = match.lastgroup or ""
        text = match.group()
        if kind == "word" and text.lower() in _KEYWORDS:
            kind = text.lower()
        if kind != "space":
            tokens.append(Token(kind, text, position + 1))
        position = match.end()
    tokens.append(Token("end", "", len(expression) + 1))
    return tokens


class _Parser:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = tokenize(expression)
        self.index = 0

    def parse(self) -> Any:
        node = self._or()
        if self._peek().kind != "end":
            self._fail("expected `and`, `or` or the end of the expression")
        return node

    def _peek(self) -> Token:
        return self.tokens[self.index]

    def _take(self, *kinds: str) -> Token | None:
        if self._peek().kind in kinds or self._peek().text in kinds:
            self.index += 1
            return self.tokens[self.index - 1]
        return None

    def _fail(self, message: str) -> Any:
        token = self._peek()
        found = "the end" if token.kind == "end" else repr(token.text)
        raise QuerySyntaxError(self.expression, token.column, f"{message}, found {found}")

    def _or(self) -> Any:
        parts = [self._and()]
        while self._take("or"):
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else Logical("or", tuple(parts))

    def _and(self) -> Any:
        parts = [self._not()]
        while self._take("and"):
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else Logical("and", tuple(parts))

    def _not(self) -> Any:
        if self._take("not"):
            return Not(self._not())
        return self._comparison()

    def _comparison(self) -> Any:
        left = self._operand()
        if op := self._take("op"):
            return Compare("==" if op.text == "=" else op.text, left, self._operand())
        if self._take("in"):
            return Compare("in", left, self._operand())
        if self._peek().kind == "not" and self.tokens[self.index + 1].kind == "in":
            self.index += 2
            return Not(Compare("in", left, self._operand()))
        return left

    def _operand(self) -> Any:
        token = self._peek()
        if self._take("("):
            node = self._or()
            if not self._take(")"):
                self._fail("expected `)`")
            return node
        if self._take("["):
            return ListLiteral(tuple(self._list_items()))
        if token.kind in ("number", "string", "date", "true", "false", "null"):
            self.index += 1
            return Literal(_literal(token))
        if token.kind == "word":
            self.index += 1
            return Field(token.text)
        return self._fail("expected a field, a value or `(`")

    def _list_items(self) -> list[Any]:
        items: list[Any] = []
        while not self._take("]"):
            token = self._peek()
            if token.kind not in ("number", "string", "date", "true", "false", "null"):
                self._fail("expected a value in the list")
            self.index += 1
            items.append(_literal(token))
            if not self._take(",") and self._peek().text != "]":
                self._fail("expected `,` or `]`")
        return items


def _literal(token: Token) -> Any:
    if token.kind == "number":
        value = float(token.text)
        return int(value) if value.is_integer() and "." not in token.text else value
    if token.kind == "string":
        return re.sub(r"\\(.)", r"\1", token.text[1:-1])
    return {"true": True, "false": False, "null": None}.get(token.kind, token.text)


def parse(expression: str) -> Any:
    return _Parser(expression).parse()


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
        return f"coalesce({node.sql()}, 0) NOT IN (0, '', '[]', '{{}}')", [node.json_path()]
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
                f"EXISTS (SELECT 1 FROM json_each({node.right.column()}, ?) WHERE value = {left})"
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
        return node.sql(), [node.json_path()]
    if isinstance(node, Literal):
        return "?", [node.value]
    raise UsageError(
        "--where: compare a field with a value, e.g. step >= 1000",
        hint="parenthesised conditions combine with and/or, not with comparisons",
    )


@dataclass(frozen=True)
class SortKey:
    field: Field
    descending: bool


def sort_keys(spec: str | None) -> list[SortKey]:
    keys = []
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        descending = part.startswith("-")
        name = part.lstrip("-+")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", name):
            raise UsageError(f"--sort: {part!r} is not a field", hint="e.g. --sort -metrics.dev.f1")
        keys.append(SortKey(Field(name), descending))
    return keys


def parse_top(text: str | None) -> tuple[int | None, float | None]:
    """`5` -> (5, None); `10%` -> (None, 10.0)."""
    if text is None:
        return None, None
    try:
        if text.endswith("%"):
            percent = float(text[:-1])
            if not 0 < percent <= 100:
                raise ValueError
            return None, percent
        count = int(text)
        if count < 1:
            raise ValueError
        return count, None
    except ValueError:
        raise UsageError(
            f"--top {text!r}: expected a count or a percentage",
            hint="for example --top 5 or --top 10%",
        ) from None


def run(
    catalog: Catalog,
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
) -> list[Version]:
    """Checkpoints matching the filters: latest version of each card unless `all_versions`."""
    conditions: list[tuple[str, list[Any]]] = []
    if where:
        conditions.append(compile_sql(parse(where)))
    shortcuts = (("model", model), ("phase", phase), ("owner", owner))
    for name, value in shortcuts:
        if value is not None:
            conditions.append(_compare(Compare("==", Field(name), Literal(value))))
    if tag is not None:
        conditions.append(_compare(Compare("in", Literal(tag), Field("tags"))))
    if since:
        conditions.append(_compare(Compare(">=", Field("created_at"), Literal(since))))
    if until:
        conditions.append(_compare(Compare("<", Field("created_at"), Literal(_day_after(until)))))
    count, percent = parse_top(top)
    if top and not by:
        raise UsageError("--top needs --by METRIC", hint="for example --top 5 --by metrics.dev.f1")
    ranking = sort_keys(by)[0] if by else None
    if ranking and not by.startswith(("-", "+")):  # type: ignore[union-attr]
        ranking = SortKey(ranking.field, True)  # higher is better unless `+metric`
    keys = ([ranking] if ranking else []) + sort_keys(sort)
    if ranking:
        conditions.append((f"{ranking.field.sql()} IS NOT NULL", [ranking.field.json_path()]))
    commits = None if all_refs else catalog.reachable(["HEAD"])
    found = _select(catalog, conditions, keys, commits, all_versions)
    if count is not None:
        found = found[:count]
    elif percent is not None:
        found = found[: max(1, math.ceil(len(found) * percent / 100))] if found else []
    return _with_cards(catalog, found, [Field(c) for c in (columns or [])])


def _day_after(day: str) -> str:
    import datetime as dt

    try:
        return (dt.date.fromisoformat(day[:10]) + dt.timedelta(days=1)).isoformat()
    except ValueError:
        raise UsageError(f"--until {day!r} is not a date", hint="use YYYY-MM-DD") from None


def _select(
    catalog: Catalog,
    conditions: list[tuple[str, list[Any]]],
    keys: list[SortKey],
    commits: set[str] | None,
    all_versions: bool,
) -> list[tuple[int, int]]:
    """(commit id, path id) of matches in order; cards are fetched for what is kept."""
    params: list[Any] = []
    sort_columns = ""
    for index, key in enumerate(keys):
        sort_columns += f", {key.field.sql()} AS s_{index}"
        params.append(key.field.json_path())
    where = " AND ".join(f"({sql})" for sql, _ in conditions) or "1"
    for _, condition_params in conditions:
        params.extend(condition_params)
    order = "".join(
        f"s_{i} IS NULL, s_{i} {'DESC' if key.descending else 'ASC'}, "
        for i, key in enumerate(keys)
    )
    latest = "" if all_versions else "AND v.rn = 1"
    scope = catalog.scope(commits)
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


def _with_cards(
    catalog: Catalog, found: list[tuple[int, int]], columns: list[Field]
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
    return [Version.from_row(row) for row in rows]
