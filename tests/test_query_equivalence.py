"""`find` answers exactly what a brute-force reading of every card in Git answers.

A 300-commit synthetic history (benchmarks/gen_history.py: branches, merges, tags,
20% of metrics with a CI, evaluations appended by later commits) is read straight
from Git (`git log --raw`, `git cat-file`, PyYAML), each query evaluated in plain
Python over the cards in scope, and compared with `Catalog.find`, which runs the
compiled SQL over the catalog's maintained scopes.
"""

from __future__ import annotations

import math
import operator
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dvcckpt.catalog import Catalog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from gen_history import generate

COMMITS = 300


@dataclass(frozen=True)
class Version:
    sha: str
    path: str
    card: dict[str, Any] | None  # None: the path was deleted


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip


@dataclass
class History:
    repo: Path
    versions: list[Version]  # every card version on any ref
    rank: dict[str, tuple[int, int]]  # commit -> (generation, commit time)
    head: set[str]  # commits reachable from HEAD

    def latest(self, commits: set[str] | None) -> list[Version]:
        """The newest version of each path among `commits` (all when None), deletions out."""
        chosen: dict[str, Version] = {}
        for version in self.versions:
            if commits is not None and version.sha not in commits:
                continue
            old = chosen.get(version.path)
            if old is None or self.rank[version.sha] > self.rank[old.sha]:
                chosen[version.path] = version
        return [v for v in chosen.values() if v.card is not None]

    def scope(self, *, all_versions: bool = False, all_refs: bool = False) -> list[Version]:
        commits = None if all_refs else self.head
        if all_versions:
            return [v for v in self.versions if v.card and (commits is None or v.sha in commits)]
        return self.latest(commits)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    repo = tmp_path_factory.mktemp("equivalence") / "history"
    generate(repo, COMMITS, 3)
    log = git(repo, "log", "--all", "--raw", "--no-renames", "--no-abbrev", "--format=@%H %ct %P")
    parents: dict[str, list[str]] = {}
    times: dict[str, int] = {}
    changes: list[tuple[str, str, str]] = []
    sha = ""
    for line in log.splitlines():
        if line.startswith("@"):
            sha, when, *rest = line[1:].split()
            parents[sha], times[sha] = rest, int(when)
        elif line.startswith(":"):
            meta, path = line.split("\t")
            changes.append((sha, path, meta.split()[3]))
    generations: dict[str, int] = {}
    for commit in reversed(list(parents)):  # git log lists children before parents
        generations[commit] = 1 + max((generations[p] for p in parents[commit]), default=0)
    blobs = {blob for _, _, blob in changes if set(blob) != {"0"}}
    texts = read_blobs(repo, blobs)
    versions = [
        Version(s, p, yaml.safe_load(texts[b]) if b in texts else None) for s, p, b in changes
    ]
    rank = {c: (generations[c], times[c]) for c in parents}
    head = set(git(repo, "rev-list", "HEAD").split())
    return History(repo, versions, rank, head)


def read_blobs(repo: Path, blobs: set[str]) -> dict[str, str]:
    out = subprocess.run(["git", "-C", str(repo), "cat-file", "--batch"], capture_output=True,
                         input="".join(f"{b}\n" for b in blobs).encode(), check=True).stdout  # fmt: skip
    texts, offset = {}, 0
    while offset < len(out):
        header_end = out.index(b"\n", offset)
        name, _, size = out[offset:header_end].decode().split()
        texts[name] = out[header_end + 1 : header_end + 1 + int(size)].decode()
        offset = header_end + 2 + int(size)
    return texts


# -- the brute-force reading --------------------------------------------------------------


def raw(card: dict[str, Any], path: str) -> Any:
    node: Any = card
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def point(card: dict[str, Any], path: str) -> Any:
    value = raw(card, path)
    return value["value"] if isinstance(value, dict) and "value" in value else value


def bound(card: dict[str, Any], path: str, index: int) -> Any:
    value = raw(card, path)
    ci = value.get("ci") if isinstance(value, dict) else None
    return ci[index] if isinstance(ci, list) and len(ci) == 2 else None


def evaluated(card: dict[str, Any], split: str) -> dict[str, Any]:
    """The metrics of the latest evaluation of `split`: the last listed (record order)."""
    entries = [e for e in card.get("evaluations") or [] if e.get("split") == split]
    return entries[-1]["metrics"] if entries else {}


def value_of(card: dict[str, Any], field: str) -> Any:
    """A field as `find` reads it: point values, `.ci_low/.ci_high`, `evaluations.S.M`."""
    if field.startswith("evaluations."):
        _, split, rest = field.split(".", 2)
        return value_of({"metrics": evaluated(card, split)}, f"metrics.{rest}")
    for suffix, index in ((".ci_low", 0), (".ci_high", 1)):
        if field.endswith(suffix):
            return bound(card, field.removesuffix(suffix), index)
    return point(card, field)


def column_of(card: dict[str, Any], field: str) -> Any:
    """A field as a `find` column shows it: as recorded (an estimate whole), or a bound."""
    if field.startswith("evaluations."):
        _, split, rest = field.split(".", 2)
        return column_of({"metrics": evaluated(card, split)}, f"metrics.{rest}")
    for suffix, index in ((".ci_low", 0), (".ci_high", 1)):
        if field.endswith(suffix):
            return bound(card, field.removesuffix(suffix), index)
    return raw(card, field)


COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<": operator.lt, "<=": operator.le, "==": operator.eq,
}  # fmt: skip


def compares(field: str, op: str, number: float) -> Callable[[dict[str, Any]], bool]:
    def check(card: dict[str, Any]) -> bool:
        value = value_of(card, field)
        return isinstance(value, int | float) and COMPARE[op](value, number)

    return check


# -- the queries ------------------------------------------------------------------------

FILTERS: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
    ("metrics.test.macro_f1 >= 0.52", compares("metrics.test.macro_f1", ">=", 0.52)),
    ("test.macro_f1.ci_low >= 0.5", compares("metrics.test.macro_f1.ci_low", ">=", 0.5)),
    ("dev.accuracy.ci_high < 0.53 or dev.loss > 0.98",
     lambda c: compares("metrics.dev.accuracy.ci_high", "<", 0.53)(c)
     or compares("metrics.dev.loss", ">", 0.98)(c)),
    ("evaluations.test.macro_f1 >= 0.8", compares("evaluations.test.macro_f1", ">=", 0.8)),
    ("evaluations.ood.accuracy.ci_low > 0.7", compares("evaluations.ood.accuracy.ci_low", ">", 0.7)),
    ("not dev.macro_f1.ci_low", lambda c: not value_of(c, "metrics.dev.macro_f1.ci_low")),
    ('phase == "finetune" and "baseline" in tags and run.group == "ner-g0"',
     lambda c: c["checkpoint"]["phase"] == "finetune" and "baseline" in c["tags"]
     and c["run"]["group"] == "ner-g0"),
    ('model == "ner" and metrics.test.macro_f1 >= 0.5',  # found through the model's index
     lambda c: c["model"] == "ner" and compares("metrics.test.macro_f1", ">=", 0.5)(c)),
    ("test.accuracy > 0.52 and not (seed == 1 or test.accuracy.ci_low >= 0)",
     lambda c: compares("metrics.test.accuracy", ">", 0.52)(c) and not (
         c["seeds"]["seed"] == 1 or compares("metrics.test.accuracy.ci_low", ">=", 0)(c))),
]  # fmt: skip
SCOPES = [{}, {"all_versions": True}, {"all_refs": True}, {"all_versions": True, "all_refs": True}]


@pytest.fixture(scope="module")
def catalog(history: History) -> Catalog:
    return Catalog(history.repo)


@pytest.mark.parametrize("scope", SCOPES, ids=lambda s: "+".join(s) or "head")
@pytest.mark.parametrize("query", FILTERS, ids=[q for q, _ in FILTERS])
def test_filters_match_the_brute_force_answer(
    history: History, catalog: Catalog, query: tuple[str, Any], scope: dict[str, bool]
) -> None:
    where, predicate = query
    expected = {(v.sha, v.path) for v in history.scope(**scope) if predicate(v.card)}
    found = [(v.sha, v.path) for v in catalog.find(where=where, cards=False, **scope)]
    assert len(found) == len(set(found))
    assert set(found) == expected
    assert expected or where.startswith("evaluations.ood"), "a query that tests nothing"


def ranked(cards: list[dict[str, Any]], field: str, descending: bool) -> list[float]:
    values = [v for c in cards if isinstance(v := value_of(c, field), int | float)]
    return sorted(values, reverse=descending)


@pytest.mark.parametrize("scope", SCOPES[:3], ids=lambda s: "+".join(s) or "head")
@pytest.mark.parametrize(
    ("by", "top", "field", "descending"),
    [
        ("dev.macro_f1", "10", "metrics.dev.macro_f1", True),
        ("+dev.loss", "7%", "metrics.dev.loss", False),
        ("test.macro_f1.ci_low", "5", "metrics.test.macro_f1.ci_low", True),
        ("evaluations.test.macro_f1", "25%", "evaluations.test.macro_f1", True),
    ],
)
def test_top_n_and_percent_match_the_brute_force_ranking(
    history: History, catalog: Catalog, by: str, top: str, field: str, descending: bool,
    scope: dict[str, bool],
) -> None:  # fmt: skip
    cards = [v.card for v in history.scope(**scope) if v.card]
    values = ranked(cards, field, descending)
    keep = int(top) if not top.endswith("%") else math.ceil(len(values) * float(top[:-1]) / 100)
    found = catalog.find(by=by, top=top, columns=[field], **scope)
    assert [value_of(v.card or {}, field) for v in found] == values[:keep]
    assert [v.values[0] for v in found] == [column_of(v.card or {}, field) for v in found]


def test_multi_key_sort_matches_the_brute_force_order(history: History, catalog: Catalog) -> None:
    cards = [v.card for v in history.scope() if v.card]

    def key(card: dict[str, Any]) -> tuple[Any, ...]:
        accuracy = point(card, "metrics.test.accuracy")
        return (-accuracy, card["checkpoint"]["step"])

    found = catalog.find(sort="-test.accuracy,step")
    assert [key(v.card or {}) for v in found] == sorted(key(c) for c in cards)


def test_columns_decode_estimates_as_the_card_records_them(
    history: History, catalog: Catalog
) -> None:
    fields = ["metrics.dev.accuracy", "metrics.dev.accuracy.ci_low", "evaluations.test.macro_f1"]
    found = catalog.find(columns=fields)
    assert found
    for version in found:
        card = version.card or {}
        assert version.values == tuple(column_of(card, field) for field in fields)


LEAVES = ["metrics.dev.macro_f1", "dev.accuracy.ci_low", "test.macro_f1.ci_high",
          "evaluations.test.macro_f1", "evaluations.ood.accuracy", "metrics.dev.class_f1.neg"]  # fmt: skip


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> tuple[str, Callable[[dict[str, Any]], bool]]:
    if depth >= 2 or draw(st.booleans()):
        field = draw(st.sampled_from(LEAVES))
        op = draw(st.sampled_from(sorted(COMPARE)))
        number = draw(st.sampled_from([0.45, 0.5, 0.52, 0.55, 0.7, 0.8]))
        resolved = (
            field if field.split(".")[0] in ("metrics", "evaluations") else f"metrics.{field}"
        )
        return f"{field} {op} {number}", compares(resolved, op, number)
    kind = draw(st.sampled_from(["and", "or", "not"]))
    left = draw(expressions(depth + 1))
    if kind == "not":
        return f"not ({left[0]})", lambda c: not left[1](c)
    right = draw(expressions(depth + 1))
    combine = (lambda a, b: a and b) if kind == "and" else (lambda a, b: a or b)
    return f"({left[0]}) {kind} ({right[0]})", lambda c: combine(left[1](c), right[1](c))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(expressions())
def test_random_expressions_match_the_brute_force_answer(
    history: History, catalog: Catalog, expression: tuple[str, Any]
) -> None:
    where, predicate = expression
    expected = {v.path for v in history.scope() if predicate(v.card)}
    assert {v.path for v in catalog.find(where=where, cards=False)} == expected, where
