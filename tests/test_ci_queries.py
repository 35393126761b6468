"""Confidence intervals and evaluations are first-class in queries.

A metric recorded as an estimate (`{value, ci, method}`) is compared, sorted and
ranked by its point value, `FIELD.ci_low/ci_high` reach its bounds, columns hold the
decoded estimate; `evaluations.SPLIT.METRIC` reads the latest evaluation of SPLIT;
`log` refuses a metric the model's cards lack, keeps intervals beside point values,
and lists evaluations one per row. All on real git repositories.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dvcckpt.catalog import Catalog
from tests.conftest import git
from tests.corpus import assert_user_error
from tests.test_catalog import commit_card
from tests.test_field_language import steps


def estimate(value: float, low: float, high: float) -> dict[str, Any]:
    return {"value": value, "ci": [low, high], "method": "bootstrap"}


# step -> test.macro_f1 as recorded: plain numbers and estimates mixed.
RECORDED: dict[int, Any] = {
    1: 0.80,
    2: estimate(0.86, 0.84, 0.88),
    3: estimate(0.70, 0.60, 0.80),
    4: 0.90,
}


@pytest.fixture
def mixed(repo: Path) -> Path:
    for step, f1 in RECORDED.items():
        zero = estimate(0.0, 0.0, 0.1) if step == 2 else 0.5
        commit_card(repo, "m", step, {"test": {"macro_f1": f1, "zero": zero}, "dev": {"acc": 0.5}})
    return repo


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (("--where", "test.macro_f1 >= 5"), []),  # an estimate is not "above every number"
        (("--where", "test.macro_f1 >= 0.85", "--sort", "step"), [2, 4]),
        (("--where", "test.macro_f1 < 0.85", "--sort", "step"), [1, 3]),
        (("--where", "test.macro_f1 == 0.86"), [2]),
        (("--where", "test.macro_f1 in [0.7, 0.9]", "--sort", "step"), [3, 4]),
        (("--top", "2", "--by", "test.macro_f1"), [4, 2]),
        (("--top", "1", "--by", "+test.macro_f1"), [3]),
        (("--top", "50%", "--by", "test.macro_f1"), [4, 2]),
        (("--sort", "-test.macro_f1"), [4, 2, 1, 3]),
        (("--sort", "test.macro_f1"), [3, 1, 2, 4]),
        (("--where", "test.macro_f1.ci_low >= 0.8"), [2]),
        (("--where", "test.macro_f1.ci_high < 0.85"), [3]),
        (("--where", "test.macro_f1.ci_low == null", "--sort", "step"), [1, 4]),  # no bounds
        (("--where", "not test.macro_f1.ci_low > 0", "--sort", "step"), [1, 4]),
        (("--sort", "-test.macro_f1.ci_high", "--where", "test.macro_f1.ci_high"), [2, 3]),
        (("--where", "test.zero", "--sort", "step"), [1, 3, 4]),  # point value 0: falsy
    ],
)
def test_estimates_compare_sort_and_rank_by_their_point_value(
    mixed: Path, cli, options: tuple[str, ...], expected: list[int]
) -> None:
    assert steps(cli, *options) == expected


def test_columns_hold_decoded_values_an_estimate_as_a_mapping(mixed: Path) -> None:
    found = Catalog(mixed).find(
        columns=["test.macro_f1", "test.macro_f1.ci_low", "name"], sort="step"
    )
    assert [v.values for v in found] == [
        (0.80, None, "m-train-full-step000001"),
        (RECORDED[2], 0.84, "m-train-full-step000002"),
        (RECORDED[3], 0.60, "m-train-full-step000003"),
        (0.90, None, "m-train-full-step000004"),
    ]


def test_a_table_shows_an_estimate_with_its_interval(mixed: Path, cli) -> None:
    result = cli("find", "--by", "test.macro_f1", "--top", "2", "--csv")
    assert result.code == 0, result.err
    assert "0.86 [0.84, 0.88]" in result.out and "{" not in result.out


@pytest.mark.parametrize(
    ("where", "field", "closest"),
    [
        ("test.macro_f1.ci_lw > 0", "metrics.test.macro_f1.ci_lw", "metrics.test.macro_f1.ci_low"),
        ("dev.acc.ci_low > 0", "metrics.dev.acc.ci_low", "{value, ci}"),  # never an estimate
    ],
)
def test_a_bound_no_card_has_is_an_error(
    mixed: Path, cli, where: str, field: str, closest: str
) -> None:
    result = cli("find", "--where", where)
    assert_user_error(result.code, result.err, names=("--where", field))
    assert closest in next(line for line in result.err.splitlines() if line.startswith("hint:"))


# -- evaluations ------------------------------------------------------------------------


def evaluation(split: str, at: str, f1: Any, **extra: Any) -> dict[str, Any]:
    return {"split": split, "at": at, "metrics": {"macro_f1": f1}, **extra}


EVALUATED = {
    # latest test: 0.9 (a later `at`), an ood entry beside it
    1: [evaluation("test", "2026-02-01T10:00:00Z", 0.70),
        evaluation("test", "2026-03-01T10:00:00Z", 0.90), evaluation("ood", "2026-04-01", 0.50)],
    # latest test: 0.95, the last listed (the list only grows: position is record order)
    2: [evaluation("test", "2026-03-01T10:30:00Z", 0.60),
        evaluation("test", "2026-03-01T09:00:00-02:00", estimate(0.95, 0.93, 0.97))],
    # a forged far-future `at` does not keep an entry latest: the last listed wins
    3: [evaluation("test", "9999-12-31T00:00:00Z", 0.99),
        evaluation("test", "2026-03-01T10:00:00Z", 0.75)],
    4: [],
}  # fmt: skip


@pytest.fixture
def evaluated(repo: Path) -> Path:
    for step, entries in EVALUATED.items():
        extra = {"evaluations": entries} if entries else {}
        commit_card(repo, "m", step, {"test": {"macro_f1": 0.5}}, run={"name": "r", "id": "r1"},
                    **extra)  # fmt: skip
    return repo


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (("--where", "evaluations.test.macro_f1 >= 0.8", "--sort", "step"), [1, 2]),
        (("--where", "evaluations.test.macro_f1 < 0.8"), [3]),
        (("--where", "evaluations.ood.macro_f1 == 0.5"), [1]),
        (("--where", "evaluations.test.macro_f1.ci_low > 0.9"), [2]),
        (("--top", "1", "--by", "evaluations.test.macro_f1"), [2]),
        (("--sort", "-evaluations.test.macro_f1"), [2, 1, 3, 4]),
    ],
)
def test_evaluations_read_the_latest_evaluation_of_the_split(
    evaluated: Path, cli, options: tuple[str, ...], expected: list[int]
) -> None:
    assert steps(cli, *options) == expected


def test_an_evaluation_appended_later_is_found_and_shown(evaluated: Path, cli) -> None:
    card = evaluated / "models/m/step-4.pt.ckpt.yaml"
    commit_card(evaluated, "m", 4, {"test": {"macro_f1": 0.5}},
                evaluations=[evaluation("test", "2026-05-01T00:00:00Z", 0.97)])  # fmt: skip
    assert card.exists()
    assert steps(cli, "--top", "1", "--by", "evaluations.test.macro_f1") == [4]
    found = Catalog(evaluated).find(columns=["evaluations.test.macro_f1"], sort="step")
    assert [v.values[0] for v in found] == [0.90, estimate(0.95, 0.93, 0.97), 0.75, 0.97]


def test_an_evaluation_split_no_card_has_is_an_error(evaluated: Path, cli) -> None:
    result = cli("find", "--where", "evaluations.tset.macro_f1 > 0.5")
    assert_user_error(result.code, result.err, names=("--where", "evaluations.tset.macro_f1"))
    assert "evaluations.test.macro_f1" in result.err.splitlines()[-1]


# -- log --------------------------------------------------------------------------------


def test_log_refuses_a_metric_no_card_of_the_model_has(mixed: Path, cli) -> None:
    commit_card(mixed, "other", 1, {"dev": {"loss": 0.3}})
    for metric, closest in (("dev.acuracy", "metrics.dev.acc"), ("dev.loss", "metrics.dev.acc")):
        result = cli("log", "m", "--metric", metric)
        assert_user_error(result.code, result.err, names=("--metric", f"metrics.{metric}"))
        assert closest in result.err.splitlines()[-1]
    assert cli("log", "other", "--metric", "dev.loss").code == 0


def test_log_keeps_point_values_and_intervals_apart(mixed: Path, cli) -> None:
    rows = Catalog(mixed).log("m", metrics=["test.macro_f1"])
    assert [(r.step, r.values["test.macro_f1"], r.intervals["test.macro_f1"]) for r in rows] == [
        (4, 0.90, None),
        (3, 0.70, (0.60, 0.80)),
        (2, 0.86, (0.84, 0.88)),
        (1, 0.80, None),
    ]
    assert rows[1].deltas["test.macro_f1"] == pytest.approx(0.70 - 0.86)
    shown = cli("log", "m", "--metric", "test.macro_f1")
    assert "0.86 [0.84, 0.88]" in shown.out


def test_log_lists_evaluations_newest_first_with_the_commit_that_added_each(
    evaluated: Path,
) -> None:
    first = git(evaluated, "log", "-1", "--format=%H", "--", "models/m/step-1.pt.ckpt.yaml").strip()
    later = evaluation("test", "2026-06-01T00:00:00Z", 0.91, step=7)
    again = commit_card(evaluated, "m", 1, {"test": {"macro_f1": 0.5}}, run={"name": "r"},
                        evaluations=[*EVALUATED[1], later])  # fmt: skip
    rows = Catalog(evaluated).log("m", metrics=["test.macro_f1"], evaluations=True)
    # newest recorded first (the commit that added it, then its place), whatever `at`
    # claims: step 3's forged year-9999 entry does not jump ahead
    assert [r.values["test.macro_f1"] for r in rows] == [0.91, 0.75, 0.99, 0.95, 0.60, 0.90, 0.70]
    assert rows[0].evaluated_at == "2026-06-01T00:00:00Z" and rows[0].step == 7
    assert rows[0].commit == again and rows[0].run == "r" and rows[0].split == "test"
    assert rows[3].intervals["test.macro_f1"] == (0.93, 0.97) and rows[3].run_id == "r1"
    old = next(r for r in rows if r.values["test.macro_f1"] == 0.70)
    assert old.commit == first and old.step == 1  # first added there; the card's step
    assert {r.split for r in rows} == {"test"}  # only the split the metric names
    everything = Catalog(evaluated).log("m", evaluations=True)
    assert {r.split for r in everything} == {"test", "ood"} and len(everything) == len(rows) + 1


def test_log_evaluations_refuses_a_split_no_card_has(evaluated: Path) -> None:
    from dvcckpt.errors import UsageError

    with pytest.raises(UsageError, match=r"evaluations\.tset\.macro_f1") as raised:
        Catalog(evaluated).log("m", metrics=["tset.macro_f1"], evaluations=True)
    assert "evaluations.test.macro_f1" in (raised.value.hint or "")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (("--where", "metrics.test > 1000"), []),  # a group of metrics is no number
        (("--where", "metrics.test != 5"), []),
        (("--where", "metrics.test"), [1, 2, 3, 4]),  # but a bare group is present
        (("--where", "not metrics.test"), []),
    ],
)
def test_a_group_of_metrics_compares_as_no_value(
    mixed: Path, cli, options: tuple[str, ...], expected: list[int]
) -> None:
    assert sorted(steps(cli, *options)) == expected
