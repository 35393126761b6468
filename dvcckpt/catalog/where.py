"""The `find` query language: tokens, a recursive-descent parser and its syntax tree.

    metrics.test.macro_f1 >= 0.85 and (phase == "finetune" or "baseline" in tags)

Fields are dotted card paths (`metrics.dev.macro_f1`), metric paths as `log`
spells them (`dev.macro_f1`, see `core.fields.card_path`) or shortcuts (`phase`,
`step`, `owner`...). A metric recorded as an estimate (`{value, ci, method}`) is
compared by its point value; `FIELD.ci_low` and `FIELD.ci_high` are the bounds of
its interval. `evaluations.SPLIT.METRIC` is METRIC in the latest evaluation of
SPLIT. Operators: == != < <= > >=, `in`, `not in`, and, or, not, parentheses.
Literals: numbers, "strings", dates (2026-01-05), true/false/null and [lists].
Parsing is a recursive descent over tokens; the result compiles to a
parameterised SQL expression on `json_extract`, so filtering runs inside SQLite.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any

from dvcckpt.core.fields import card_path
from dvcckpt.core.limits import MAX_EXPRESSION_DEPTH, MAX_INT, MIN_INT
from dvcckpt.errors import UsageError

# Bounds that keep any expression within what SQLite compiles (an expression tree at
# most 1000 deep, a bounded number of parameters) and cheap to parse.
MAX_EXPRESSION_CHARS = 10_000
MAX_TERMS = 256  # comparisons and bare fields
MAX_LIST_ITEMS = 1_000

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<date>\d{4,}-\d{1,2}-\d{1,2}(?:T[0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?)(?![\w.:+-])
      | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.])
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>==|!=|<=|>=|<|>|=)
      | (?P<punct>[()\[\],])
      | (?P<word>[A-Za-z_][A-Za-z0-9_.\-]*)
    """,
    re.X | re.S,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    column: int  # 1-based, for error messages


BOUNDS = {"ci_low": 0, "ci_high": 1}  # FIELD.ci_low: FIELD's interval, `ci[0]`


@dataclass(frozen=True)
class Field:
    path: str

    def json_path(self) -> str:
        """Where the field's value sits (in the card, or in the slim `hot` copy for
        `evaluations.SPLIT...`, which holds each split's latest evaluation)."""
        base = "$" + "".join(f'."{part}"' for part in self.value_parts())
        bound = self.bound()
        return base if bound is None else f'{base}."ci"[{bound}]'

    def point_path(self) -> str:
        """Where the point value of an estimate sits (`FIELD.value`)."""
        return self.json_path() + '."value"'

    def parts(self) -> list[str]:
        return self.resolved().split(".")

    def value_parts(self) -> list[str]:
        """The parts naming the metric itself (`.ci_low` / `.ci_high` left off)."""
        parts = self.parts()
        return parts[:-1] if self.bound() is not None else parts

    def bound(self) -> int | None:
        """0 for `.ci_low`, 1 for `.ci_high` of a metric, else None."""
        parts = self.parts()
        if len(parts) > 2 and parts[0] in ("metrics", "evaluations"):
            return BOUNDS.get(parts[-1])
        return None

    def resolved(self) -> str:
        """The card path: shortcuts expanded, `dev.f1` read as `metrics.dev.f1`."""
        return card_path(self.path)


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
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise QuerySyntaxError(
            expression[:80],
            1,
            f"a {len(expression)}-character expression is over the "
            f"{MAX_EXPRESSION_CHARS}-character limit",
        )
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
        self.depth = 0
        self.terms = 0

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

    def _fail(self, message: str, token: Token | None = None) -> Any:
        token = token or self._peek()
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
        if token := self._take("not"):
            self._enter(token)
            node = Not(self._not())
            self.depth -= 1
            return node
        return self._comparison()

    def _enter(self, token: Token) -> None:
        """One level deeper (a parenthesis or a `not`): refused past the limit, so a
        hostile expression can never exhaust Python's stack."""
        self.depth += 1
        if self.depth > MAX_EXPRESSION_DEPTH:
            raise QuerySyntaxError(
                self.expression,
                token.column,
                f"expression nested deeper than {MAX_EXPRESSION_DEPTH} levels",
            )

    def _term(self, token: Token) -> None:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise QuerySyntaxError(
                self.expression, token.column, f"more than {MAX_TERMS} conditions"
            )

    def _comparison(self) -> Any:
        self._term(self._peek())
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
            self._enter(token)
            node = self._or()
            if not self._take(")"):
                self._fail("expected `)`")
            self.depth -= 1
            return node
        if self._take("["):
            return ListLiteral(tuple(self._list_items()))
        if token.kind in ("number", "string", "date", "true", "false", "null"):
            self.index += 1
            return Literal(self._literal(token))
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
            items.append(self._literal(token))
            if len(items) > MAX_LIST_ITEMS:
                self._fail(f"more than {MAX_LIST_ITEMS} values in a list", token)
            if not self._take(",") and self._peek().text != "]":
                self._fail("expected `,` or `]`")
        return items

    def _literal(self, token: Token) -> Any:
        try:
            return literal(token)
        except ValueError as exc:
            raise QuerySyntaxError(self.expression, token.column, str(exc)) from None


def literal(token: Token) -> Any:
    """A token's value; ValueError for a number or date outside what can be compared."""
    if token.kind == "number":
        return number(token.text)
    if token.kind == "date":
        return date(token.text)
    if token.kind == "string":
        return re.sub(r"\\(.)", r"\1", token.text[1:-1], flags=re.S)
    return {"true": True, "false": False, "null": None}.get(token.kind, token.text)


def number(text: str) -> int | float:
    """An integer within SQLite's 64-bit range, or a finite float."""
    digits = text.lstrip("+-")
    if digits.isdigit():
        if len(digits) > 19 or not MIN_INT <= int(text) <= MAX_INT:
            raise ValueError(f"the number {_short(text)} is outside the 64-bit integer range")
        return int(text)
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {_short(text)} is out of range")
    return int(value) if value.is_integer() and "." not in text and abs(value) < 2**53 else value


def date(text: str) -> str:
    """A date or date-time literal, kept as written (cards store ISO 8601 text)."""
    try:
        dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{_short(text)} is not a valid date ({exc})") from None
    return text


def _short(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:37]}..."


def parse(expression: str) -> Any:
    return _Parser(expression).parse()


def fields(node: Any) -> list[Field]:
    """Every field the parsed expression reads, in order of appearance."""
    if isinstance(node, Field):
        return [node]
    if isinstance(node, Logical):
        return [f for part in node.parts for f in fields(part)]
    if isinstance(node, Not):
        return fields(node.operand)
    if isinstance(node, Compare):
        return fields(node.left) + fields(node.right)
    return []


def render(node: Any) -> str:
    """Expression text that parses back to `node` (the inverse of `parse`)."""
    if isinstance(node, Logical):
        return f" {node.op} ".join(_grouped(part, Logical) for part in node.parts)
    if isinstance(node, Not):
        return f"not {_grouped(node.operand, (Logical, Compare))}"
    if isinstance(node, Compare):
        left, right = _grouped(node.left, _NODES), _grouped(node.right, _NODES)
        return f"{left} {node.op} {right}"
    if isinstance(node, Field):
        return node.path
    if isinstance(node, ListLiteral):
        return "[" + ", ".join(_value_text(v) for v in node.values) + "]"
    return _value_text(node.value)


_NODES = (Logical, Not, Compare)


def _grouped(node: Any, kinds: Any) -> str:
    return f"({render(node)})" if isinstance(node, kinds) else render(node)


def _value_text(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class SortKey:
    field: Field
    descending: bool


# A field an option names (`--metric test.recall@5`): dotted parts, none empty, without
# what would end a JSON path's quoted key or reach a terminal (`"`, `\`, controls).
_OPTION_FIELD = re.compile(r'[^\s."\\\x00-\x1f\x7f-]+[^\s."\\\x00-\x1f\x7f]*'
                           r'(?:\.[^\s."\\\x00-\x1f\x7f]+)*')  # fmt: skip


def field_option(option: str, text: str, example: str = "dev.f1") -> Field:
    """A field named by an option such as `--metric` (it may hold more than the query
    language's words, e.g. `recall@5`), refused when no card path could be spelled so."""
    if not _OPTION_FIELD.fullmatch(text):
        raise UsageError(
            f"{option}: {_short(text)!r} is not a field",
            hint=f"name a field by its dotted path, e.g. {option} {example}",
        )
    return Field(text)


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
