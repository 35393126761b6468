"""The queries the speed targets are measured on answer exactly what a brute-force
reading of every card in Git answers: a CI comparison with `--top 10%` (every match
ranked) and `--top N` (the walk down the metric's index), and `--group-by run.group`
and `--group-by run` (count, best, last, mean and std over runs, group order).

The 300-commit synthetic history of `test_query_equivalence` (benchmarks/gen_history.py:
branches, merges, tags, 20% of metrics with a CI) is read straight from Git, the
answers computed in plain Python over the cards in scope, with `find`'s full order:
best first, then newest (generation, commit time), then path, descending.
"""

from __future__ import annotations

import json
import math
import statistics
from typing import Any

import pytest

from dvcckpt.catalog import Catalog, ranked
from tests import test_query_equivalence as equivalence
from tests.test_query_equivalence import History, Version, raw, value_of

history = equivalence.history  # the fixtures: the history read from Git, its catalog
catalog = equivalence.catalog

METRIC = "metrics.dev.macro_f1"
# Thresholds for this short history (its metrics stay between 0.45 and 0.6).
CI = "metrics.test.macro_f1.ci_low >= 0.52 or metrics.dev.macro_f1 >= 0.55"
SCOPES = [{}, {"all_versions": True}, {"all_refs": True}]


def number(card: dict[str, Any], field: str) -> float | None:
    value = value_of(card, field)
    return float(value) if isinstance(value, int | float) else None


def matches(card: dict[str, Any]) -> bool:
    low, dev = number(card, "metrics.test.macro_f1.ci_low"), number(card, METRIC)
    return (low is not None and low >= 0.52) or (dev is not None and dev >= 0.55)


def best_first(history: History, versions: list[Version]) -> list[tuple[str, str]]:
    """`find`'s order: by the metric (higher first), then newest, then path (descending)."""

    def key(version: Version) -> tuple[Any, ...]:
        value = number(version.card or {}, METRIC)
        return (value, *history.rank[version.sha], version.path)

    return [(v.sha, v.path) for v in sorted(versions, key=key, reverse=True)]


@pytest.mark.parametrize("scope", SCOPES, ids=lambda s: "+".join(s) or "head")
@pytest.mark.parametrize("top", ["10%", "3", "25"])
def test_ci_comparison_with_top_matches_the_brute_force_ranking(
    history: History, catalog: Catalog, scope: dict[str, bool], top: str
) -> None:
    found = [
        v for v in history.scope(**scope) if v.card and matches(v.card) and number(v.card, METRIC)
    ]
    expected = best_first(history, found)
    keep = math.ceil(len(expected) * 0.1) if top == "10%" else int(top)
    answer = catalog.find(where=CI, top=top, by="dev.macro_f1", cards=False, **scope)
    assert len(expected) > 30, "a query that tests little"
    assert [(v.sha, v.path) for v in answer] == expected[:keep]


def test_the_index_walk_answers_top_n_here(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--top 3` above is the walk's answer, not the fallback's."""
    answers: list[Any] = []
    best = ranked.best

    def recording(*args: Any) -> Any:
        answers.append(best(*args))
        return answers[-1]

    monkeypatch.setattr(ranked, "best", recording)
    catalog.find(where=CI, top="3", by="dev.macro_f1", cards=False)
    assert answers and answers[0] is not None


def brute_groups(history: History, group_by: str) -> list[tuple[Any, ...]]:
    """(key, checkpoints, runs, n, mean, std, best name, last name) of each group, best
    group first, read from the cards of HEAD in history order."""

    def order(version: Version) -> tuple[Any, ...]:
        step = raw(version.card or {}, "checkpoint.step")
        return (*history.rank[version.sha], version.sha, step is None, step or 0, version.path)

    cards = sorted((v for v in history.scope() if number(v.card or {}, METRIC) is not None),
                   key=order)  # fmt: skip
    groups: dict[str, dict[Any, list[Version]]] = {}
    for version in cards:
        card = version.card or {}
        name, run_id = (
            None if (x := raw(card, f)) is None else str(x) for f in ("run.name", "run.id")
        )
        key = ["run", name, run_id] if group_by == "run" else raw(card, group_by)
        run = (name, run_id) if name or run_id else (None, None, version.path)
        groups.setdefault(json.dumps(key), {}).setdefault(run, []).append(version)
    out = []
    for key, runs in groups.items():
        bests, lasts = [], []
        for members in runs.values():
            best = members[0]
            for member in members:  # the first to reach the best value
                if number(member.card or {}, METRIC) > number(best.card or {}, METRIC):  # type: ignore[operator]
                    best = member
            bests.append(best)
            lasts.append(members[-1])
        values = [number(b.card or {}, METRIC) for b in bests]
        mean = statistics.fmean(values)  # type: ignore[arg-type]
        std = statistics.stdev(values) if len(values) > 1 else None  # type: ignore[type-var]
        group_best = max(bests, key=lambda b: number(b.card or {}, METRIC))  # type: ignore[arg-type, return-value]
        every = [v for members in runs.values() for v in members]
        last = max(every, key=order)
        out.append((json.loads(key), len(every), len(runs), len(values), mean, std,
                    raw(group_best.card or {}, "name"), raw(last.card or {}, "name")))  # fmt: skip

    def shown(key: Any) -> Any:  # the key as a group shows it (a run: its name, else its id)
        if group_by != "run":
            return key
        return key[1] if key[1] is not None else key[2]

    out.sort(key=lambda g: (-g[4], json.dumps(shown(g[0]), default=str)))  # best mean first
    return out


@pytest.mark.parametrize("group_by", ["run.group", "run"])
def test_group_by_matches_the_brute_force_aggregation(
    history: History, catalog: Catalog, group_by: str
) -> None:
    expected = brute_groups(history, group_by)
    grouping = catalog.groups(group_by, "dev.macro_f1", by="dev.macro_f1")
    found = [
        (["run", g.runs[0].run, g.runs[0].run_id] if group_by == "run" else g.key,
         g.checkpoints, len(g.runs), sum(r.contributed is not None for r in g.runs), g.mean,
         g.std, g.best.name if g.best else None, g.last.name if g.last else None)
        for g in grouping.groups
    ]  # fmt: skip
    several = 1 if group_by == "run" else 2  # checkpoints of a run, runs of a group
    assert len(expected) >= 10 and any(e[several] > 1 for e in expected), "that tests little"
    assert found == expected
