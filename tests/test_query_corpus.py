"""Bad input to the query commands, table-driven; properties of the `--where` language.

Each corpus case runs one command on a real repository and asserts the contract of
tests/corpus.py: a user exit code, one `error:` line naming the option or value at
fault, a `hint:`, no traceback, and a repository left as it was. The properties:
any text either parses or is a usage error (never a crash or a RecursionError),
anything that parses compiles to SQL that SQLite runs, and rendered expressions
parse back to the same tree.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dvcckpt.catalog import find, numbers, where
from dvcckpt.errors import ConfigError, UsageError
from tests.corpus import assert_user_error, changed, snapshot
from tests.test_catalog import commit_card

DEEP = "(" * 3000 + "step" + ")" * 3000
MANY = " or ".join(["step > 1"] * 300)
LONG_LIST = "step in [" + ", ".join(["1"] * 1500) + "]"
# (command line, exit code, what the error must name)
CORPUS: dict[str, tuple[tuple[str, ...], int, tuple[str, ...]]] = {
    "huge integer": (("find", "--where", "step > 99999999999999999999"), 2, ("99999999999999999999",)),
    "huge negative": (("find", "--where", "step > -9223372036854775809"), 2, ("-9223372036854775809",)),
    "infinite float": (("find", "--where", "metrics.dev.f1 > 1e999"), 2, ("1e999",)),
    "digits beyond int parsing": (("find", "--where", "step > " + "9" * 5000), 2, ("64-bit",)),
    "five-digit year": (("find", "--where", "created > 99999-01-01"), 2, ("99999-01-01",)),
    "no such day": (("find", "--where", "created_at >= 2026-02-30"), 2, ("2026-02-30",)),
    "no such month": (("find", "--where", "created_at < 2026-13-01T00:00:00Z"), 2, ("2026-13-01",)),
    "3000 parentheses": (("find", "--where", DEEP), 2, ("nested deeper than 64",)),
    "2000 nots": (("find", "--where", "not " * 2000 + "step"), 2, ("nested deeper than 64",)),
    "over-long expression": (("find", "--where", "a" * 20_000), 2, ("20000-character",)),
    "300 conditions": (("find", "--where", MANY), 2, ("256 conditions",)),
    "1500 list items": (("find", "--where", LONG_LIST), 2, ("1000 values",)),
    "in a string": (("find", "--where", '"a" in "b"'), 2, ("in",)),
    "compare a comparison": (("find", "--where", "(step == 1) == 2"), 2, ("--where",)),
    "unterminated string": (("find", "--where", "name == 'abc"), 2, ("column 9",)),
    "dangling operator": (("find", "--where", "step >"), 2, ("the end",)),
    "NUL character": (("find", "--where", "step\0 > 1"), 2, ("column 5",)),
    "stray parenthesis": (("find", "--where", "step > 1 )"), 2, ("')'",)),
    "blank expression": (("find", "--where", "   "), 2, ("--where",)),
    "since month 13": (("find", "--since", "2026-13-01"), 2, ("--since", "2026-13-01")),
    "since a word": (("find", "--since", "yesterday"), 2, ("--since", "yesterday")),
    "since empty": (("find", "--since", ""), 2, ("--since",)),
    "until February 30": (("find", "--until", "2026-02-30"), 2, ("--until", "2026-02-30")),
    "until year 99999": (("find", "--until", "99999-01-01"), 2, ("--until", "99999-01-01")),
    "until trailing junk": (("find", "--until", "2026-01-05junk"), 2, ("--until",)),
    "top zero": (("find", "--top", "0", "--by", "step"), 2, ("--top",)),
    "top over 100%": (("find", "--top", "101%", "--by", "step"), 2, ("--top",)),
    "top NaN%": (("find", "--top", "nan%", "--by", "step"), 2, ("--top",)),
    "top 1e999": (("find", "--top", "1e999", "--by", "step"), 2, ("--top",)),
    "top without by": (("find", "--top", "5"), 2, ("--by",)),
    "sort not a field": (("find", "--sort", "a b"), 2, ("--sort",)),
    "by a bare sign": (("find", "--top", "1", "--by", "-"), 2, ("--sort",)),
    "log metric without split": (("log", "--metric", "f1"), 2, ("--metric", "f1")),
    "log unknown model": (("log", "nope", "--metric", "dev.f1"), 4, ("nope",)),
    "log unknown revision": (("log", "--rev", "nonexistent..HEAD"), 4, ("nonexistent",)),
    "log option as revision": (("log", "--rev=--all"), 4, ("--all",)),
    "log negative rows": (("log", "-n", "-1"), 2, ("-n",)),
    "plot into a missing folder": (("log", "--metric", "dev.f1", "--plot", "no/such/c.html"), 2, ("no/such",)),
    "plot under a file": (("log", "--metric", "dev.f1", "--plot", "train.py/c.html"), 2, ("train.py",)),
    "plot onto a folder": (("log", "--metric", "dev.f1", "--plot", "models.svg"), 2, ("models.svg",)),
    "plot unknown format": (("log", "--metric", "dev.f1", "--plot", "c.txt"), 2, ("c.txt",)),
    "plot without metric": (("log", "--plot", "c.html"), 2, ("metric",)),
    "diff unknown names": (("diff", "nope1", "nope2"), 4, ("nope1",)),
    "diff unknown revision": (("diff", "HEAD", "nonexistent"), 4, ("nonexistent",)),
    "diff option injection": (("diff", "--", "--output=stolen", "HEAD"), 4, ("--output=stolen",)),
    "diff name at unknown revision": (("diff", "m-train-full-step000001@nope", "HEAD"), 4, ("nope",)),
    "report unknown base": (("report", "--base", "nonexistent"), 4, ("nonexistent",)),
    "report option as base": (("report", "--base=--output=stolen"), 4, ("--output=stolen",)),
    "stages unknown branch": (("stages", "--json"), 0, ()),
}  # fmt: skip


@pytest.fixture
def cards(repo: Path) -> Path:
    (repo / "dvcckpt.yaml").write_text("version: 1\nproject: demo\n")
    (repo / "models.svg").mkdir()
    (repo / "models.svg" / "keep").write_text("a folder named like a chart\n")
    for step in (1, 2, 3):
        commit_card(repo, "m", step, {"dev": {"f1": step / 10}})
    return repo


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_bad_query_input_is_a_clean_user_error(cards: Path, cli, case: str) -> None:
    args, code, names = CORPUS[case]
    cli("find")  # the catalog exists: the refused command must not need to write
    before = snapshot(cards)
    result = cli(*args)
    assert result.code == code, result.err
    if code:
        assert_user_error(result.code, result.err, names=names)
    assert not changed(before, snapshot(cards))
    assert not (cards / "stolen").exists()


def test_valid_edge_values_still_work(cards: Path, cli) -> None:
    for args in (
        ("find", "--where", "step < 9223372036854775807 and step > -9223372036854775808"),
        ("find", "--where", "metrics.dev.f1 < 1e308 and created_at > 0001-01-01"),
        ("find", "--where", "created_at >= 2026-01-05T10:00:00+02:00"),
        ("find", "--where", "(" * 60 + "step > 0" + ")" * 60),
        ("find", "--since", "2026-01-05", "--until", "9999-12-31"),
        ("find", "--since", "2026-01-05 10:00"),
    ):
        result = cli(*args)
        assert result.code == 0, (args, result.err)
    made = cli("log", "--metric", "dev.f1", "--plot", str(cards / "chart.svg"))
    assert made.code == 0 and (cards / "chart.svg").read_text().startswith("<svg")


# -- properties of the query language -------------------------------------------------------

TOKENS = ["(", ")", "[", "]", ",", "and", "or", "not", "in", "==", "!=", "<", "<=", ">", ">=",
          "=", "true", "false", "null", "step", "metrics.dev.f1", "dev.f1.ci_high", "tags", "'x'", '"y\\"z"', "-1",
          "1.5e3", "1e999", "2026-01-05", "99999-01-01", "2026-02-30", "9" * 25, '"', "'", "\\",
          "\0", "é", "\n"]  # fmt: skip


def run_sql(sql: str, params: list[Any]) -> None:
    """Run a compiled filter the way `find` does, against a one-card catalog."""
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        db.executescript(
            "CREATE TABLE cards (id INTEGER PRIMARY KEY, hot TEXT, name TEXT, model TEXT,"
            " phase TEXT, kind TEXT, created_at TEXT);"
            "CREATE TABLE bodies (id INTEGER PRIMARY KEY, card TEXT);"
            """INSERT INTO cards VALUES (1, '{"tags": ["x"], "checkpoint": {"step": 3}}',"""
            " 'm-1', 'm', 'train', 'full', '2026-01-05');"
            """INSERT INTO bodies VALUES (1, '{"data": {"dataset": "y"}}');"""
            + numbers.SCHEMA
            + "INSERT INTO metric_values VALUES ('metrics.dev.f1', 1, 0.5);"
        )
        db.execute(
            f"SELECT count(*) FROM cards k JOIN bodies b ON b.id = k.id WHERE {sql}", params
        ).fetchone()


def parse_and_run(text: str) -> None:
    try:
        node = where.parse(text)
        sql, params = find.compile_sql(node)
    except (UsageError, ConfigError):
        return
    run_sql(sql, params)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_any_text_parses_or_is_a_usage_error(text: str) -> None:
    parse_and_run(text)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=40), st.integers(0, 80))
def test_any_token_soup_parses_or_is_a_usage_error(tokens: list[str], nesting: int) -> None:
    parse_and_run("(" * nesting + " ".join(tokens) + ")" * nesting)


FIELDS = st.sampled_from(["step", "phase", "metrics.dev.f1", "tags", "x-ext.a_b", "run.name",
                          "dev.f1.ci_low", "evaluations.test.f1", "model"])  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
LEAVES = st.one_of(
    FIELDS.map(where.Field),
    st.builds(lambda op, f, v: where.Compare(op, where.Field(f), where.Literal(v)),
              st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), FIELDS, SCALARS),
    st.builds(lambda v, f: where.Compare("in", where.Literal(v), where.Field(f)), SCALARS, FIELDS),
    st.builds(lambda f, vs: where.Compare("in", where.Field(f), where.ListLiteral(tuple(vs))),
              FIELDS, st.lists(SCALARS, max_size=4)),
)  # fmt: skip
EXPRESSIONS = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        inner.map(where.Not),
        st.builds(
            where.Logical,
            st.sampled_from(["and", "or"]),
            st.lists(inner, min_size=2, max_size=4).map(tuple),
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS)
def test_rendered_expressions_parse_back_to_the_same_tree(node: Any) -> None:
    text = where.render(node)
    assert where.parse(text) == node, text
    run_sql(*find.compile_sql(node))
