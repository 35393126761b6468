"""The fast paths of `log MODEL` and `find --top N` give exactly the answers of the full
evaluation they replace: same rows, same order (ties within a commit included), same Δ.

`log MODEL`'s table reads the newest rows through an index and each run's previous row
through another (`catalog.newest`); `find --top N --by METRIC` walks the metric's index
from the best number down (`catalog.ranked`). Both are checked here against the plain
evaluation over every row, on a real history with branches, runs interleaved and
checkpoints of one run committed together, run-less cards, deletions, a rewritten
card and an unreadable one.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from dvcckpt.catalog import Catalog, ranked
from dvcckpt.catalog.rows import FORMAT_VERSION
from tests.conftest import git
from tests.test_catalog import card_text

METRICS = ["dev.acc", "test.f1"]


def write(repo: Path, stem: str, step: int, run: dict[str, Any] | None, rng: random.Random) -> None:
    acc = round(rng.choice([0.5, 0.6, 0.7, 0.8]) + rng.choice([0, 0.01]), 2)  # many ties
    metrics: dict[str, Any] = {"dev": {"acc": acc}}
    if rng.random() < 0.7:  # some cards lack a metric: an empty Δ, not a skipped row
        f1 = round(acc - 0.05, 2)
        metrics["test"] = {"f1": {"value": f1, "ci": [f1 - 0.02, f1 + 0.02]}}
    extra = {"run": run} if run is not None else {}
    path = repo / f"models/clf/{stem}.pt.ckpt.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(card_text(f"clf-{stem}", "clf", step, metrics, **extra))
    git(repo, "add", str(path))


def commit(repo: Path, message: str) -> None:
    git(repo, "commit", "-qm", message, "--no-verify")


@pytest.fixture(scope="module")
def history(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three runs (one run-less), several checkpoints of a run per commit, a side branch,
    a deletion, a rewritten card, an unreadable card, another model (built once: the
    tests only read it)."""
    repo = tmp_path_factory.mktemp("speed-paths") / "repo"
    shutil.copytree(template_repo, repo, symlinks=True)
    rng = random.Random(7)
    runs: list[dict[str, Any] | None] = [{"name": "a", "id": "1"}, {"name": "b"}, None]
    step = 0
    for index in range(14):
        for _ in range(rng.choice([1, 2, 3])):
            step += rng.choice([0, 10])  # equal steps too: path breaks the tie
            stem = f"{rng.choice('zyxa')}-{index}-{step}-{rng.randrange(1000)}"
            write(repo, stem, step, rng.choice(runs), rng)
        if index == 5:
            other = repo / "models/other/x.pt.ckpt.yaml"
            other.parent.mkdir(parents=True)
            other.write_text(card_text("other-x", "other", 1, {"dev": {"acc": 0.99}}))
            git(repo, "add", str(other))
        if index == 8:
            first = sorted((repo / "models/clf").glob("*.yaml"))[0]
            git(repo, "rm", "-q", str(first))
        if index == 10:
            broken = repo / "models/clf/broken.pt.ckpt.yaml"
            broken.write_text("name: [unclosed\n")
            git(repo, "add", str(broken))
        if index == 11:  # a card rewritten: a second version of the same path
            write(repo, sorted(p.name for p in (repo / "models/clf").glob("[zyx]-*"))[1]
                  .removesuffix(".pt.ckpt.yaml"), step, runs[0], rng)  # fmt: skip
        commit(repo, f"checkpoints {index}")
    git(repo, "checkout", "-qb", "side", "HEAD~4")
    for index in range(3):
        write(repo, f"side-{index}", 1000 + index, runs[index % 2], rng)
        commit(repo, f"side {index}")
    git(repo, "checkout", "-q", "main")
    return repo


def fast_statements(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements the catalog runs from now on (to see which path answered)."""
    seen: list[str] = []
    sql = catalog.sql

    def recording(statement: str, params: Any = ()) -> Any:
        seen.append(statement)
        return sql(statement, params)

    monkeypatch.setattr(catalog, "sql", recording)
    return seen


@pytest.mark.parametrize(
    "scope", [{}, {"all_refs": True}, {"rev": "main~6..main"}], ids=["head", "all", "range"]
)
def test_log_table_through_the_index_equals_the_full_history(
    history: Path, monkeypatch: pytest.MonkeyPatch, scope: dict[str, Any]
) -> None:
    catalog = Catalog(history)
    every = [row.as_dict() for row in catalog.log("clf", metrics=METRICS, **scope)]
    assert len(every) > 8 and any(row["deltas"]["dev.acc"] for row in every)
    seen = fast_statements(catalog, monkeypatch)
    for limit in [1, 2, 3, 5, 8, len(every) - 1, len(every), len(every) + 5]:
        shown = catalog.log("clf", metrics=METRICS, limit=limit, **scope)
        assert [row.as_dict() for row in shown] == every[:limit], limit
    assert any("INDEXED BY versions_model" in s for s in seen), "the index was not walked"
    assert any("INDEXED BY versions_run" in s for s in seen)


def test_log_of_a_checkpoint_name_keeps_the_window(history: Path) -> None:
    catalog = Catalog(history)
    name = catalog.log("clf", metrics=METRICS[:1])[0].name
    shown = catalog.log(name, metrics=METRICS[:1], limit=5)
    assert shown and shown == catalog.log(name, metrics=METRICS[:1])[:5]


@pytest.mark.parametrize("first_walk", [1, 4, ranked.FIRST_WALK])
@pytest.mark.parametrize(
    "query",
    [
        {"by": "dev.acc"},
        {"by": "+dev.acc"},
        {"by": "test.f1.ci_low", "sort": "-step"},
        {"by": "dev.acc", "model": "clf", "where": "test.f1 >= 0.6"},
        {"by": "dev.acc", "all_versions": True},
        {"by": "dev.acc", "all_refs": True},
    ],
    ids=lambda q: " ".join(f"{k}={v}" for k, v in q.items()),
)
def test_top_n_from_the_metric_index_equals_ranking_every_match(
    history: Path, monkeypatch: pytest.MonkeyPatch, query: dict[str, Any], first_walk: int
) -> None:
    catalog = Catalog(history)
    monkeypatch.setattr(ranked, "FIRST_WALK", first_walk)
    if first_walk < ranked.FIRST_WALK:  # short walks: some prove, others walk again or give up
        monkeypatch.setattr(ranked, "PER_MATCH", 1)
    proved = 0
    best = ranked.best
    for count in [1, 2, 3, 5, 9, 40]:

        def counting(*args: Any) -> Any:
            nonlocal proved
            found = best(*args)
            proved += found is not None
            return found

        monkeypatch.setattr(ranked, "best", counting)
        fast = catalog.find(top=str(count), cards=False, **query)
        monkeypatch.setattr(ranked, "best", lambda *args: None)
        full = catalog.find(top=str(count), cards=False, **query)
        assert [(v.sha, v.path) for v in fast] == [(v.sha, v.path) for v in full], count
        assert fast, "a query that tests nothing"
    assert proved, "the walk never answered"


def test_listing_order_is_total_within_a_commit(history: Path) -> None:
    """Checkpoints committed together with the same rank list by path (newest first:
    descending), whatever plan SQLite picks."""
    found = Catalog(history).find(by="dev.acc", top="40", cards=False, columns=["dev.acc"])
    pairs = list(itertools.pairwise(found))
    tied = [(a, b) for a, b in pairs if a.sha == b.sha and a.values == b.values]
    assert tied, "no tie within a commit: the history tests nothing"
    assert all(a.path > b.path for a, b in tied)


def test_a_catalog_of_the_previous_format_is_rebuilt_not_misread(
    history: Path, tmp_path: Path
) -> None:
    """A catalog written before versions carried their card's model and run (format 6:
    no such columns, no such indexes) is rebuilt on the next query: the fast `log`
    path never runs on a table that lacks what it reads."""
    repo = tmp_path / "repo"
    shutil.copytree(history, repo, symlinks=True)
    catalog = Catalog(repo)
    expected = [row.as_dict() for row in catalog.log("clf", metrics=METRICS, limit=6)]
    catalog.close()
    with contextlib.closing(sqlite3.connect(catalog.path)) as db:
        db.executescript(
            """DROP INDEX versions_model; DROP INDEX versions_run;
            ALTER TABLE versions DROP COLUMN model; ALTER TABLE versions DROP COLUMN run_name;
            ALTER TABLE versions DROP COLUMN run_id; ALTER TABLE cards DROP COLUMN run_name;
            ALTER TABLE cards DROP COLUMN run_id; UPDATE meta SET value = '6' WHERE key = 'format';"""
        )
    again = Catalog(repo)
    assert [row.as_dict() for row in again.log("clf", metrics=METRICS, limit=6)] == expected
    with contextlib.closing(sqlite3.connect(again.path)) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone() == (
            FORMAT_VERSION,
        )
        assert db.execute("SELECT count(*) FROM versions WHERE model = 'clf'").fetchone()[0]
