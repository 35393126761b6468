"""One field language: `find --where/--sort/--by` read `dev.macro_f1` as `log --metric`
does (`metrics.dev.macro_f1`), and a field no card has is an error, not an empty answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git, write_checkpoint
from tests.corpus import assert_user_error, changed, snapshot

F1 = {1: 0.70, 2: 0.90, 3: 0.85}  # step -> dev.macro_f1


@pytest.fixture
def registry(repo: Path, cli) -> Path:
    """Three checkpoints registered by `add` and committed, one per step."""
    for step, f1 in F1.items():
        write_checkpoint(repo / f"models/m/step-{step}.pt", seed=step)
        result = cli("add", f"models/m/step-{step}.pt", "--step", str(step),
                     "-m", f"dev.macro_f1={f1}", "-m", f"test.acc={f1 - 0.1:.2f}")  # fmt: skip
        assert result.code == 0, result.err
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"step {step}", "--no-verify")
    return repo


def steps(cli, *options: str) -> list[int]:
    result = cli("find", *options, "--json")
    assert result.code == 0, result.err
    return [row["card"]["checkpoint"]["step"] for row in json.loads(result.out)]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (("--by", "dev.macro_f1", "--top", "1"), [2]),
        (("--by", "+dev.macro_f1", "--top", "1"), [1]),
        (("--where", "dev.macro_f1 > 0.8"), None),  # any order: compared as a set
        (("--sort", "-dev.macro_f1"), [2, 3, 1]),
        (("--sort", "dev.macro_f1"), [1, 3, 2]),
        (("--where", "test.acc < 0.7 or dev.macro_f1 >= 0.9", "--sort", "step"), [1, 2]),
    ],
)
def test_metric_paths_as_log_spells_them(registry: Path, cli, options, expected) -> None:
    found = steps(cli, *options)
    if expected is None:
        assert sorted(found) == [2, 3]
    else:
        assert found == expected
    # the same answer as the full card path
    full = [o.replace("dev.macro_f1", "metrics.dev.macro_f1").replace("test.acc", "metrics.test.acc")
            for o in options]  # fmt: skip
    assert steps(cli, *full) == found


@pytest.mark.parametrize(
    ("options", "option", "field", "closest"),
    [
        (("--where", "dev.macro_f2 > 0.8"), "--where", "metrics.dev.macro_f2",
         "metrics.dev.macro_f1"),
        (("--by", "dev.macro_f2", "--top", "1"), "--by", "metrics.dev.macro_f2",
         "metrics.dev.macro_f1"),
        (("--sort", "-metrics.tset.acc"), "--sort", "metrics.tset.acc", "metrics.test.acc"),
        (("--where", "step > 0 and params.lr > 1"), "--where", "params.lr", "checkpoint"),
    ],
)  # fmt: skip
def test_a_field_no_card_has_is_an_error_with_the_closest_fields(
    registry: Path, cli, options, option, field, closest
) -> None:
    before = snapshot(registry)
    result = cli("find", *options)
    assert result.code == 2
    assert_user_error(result.code, result.err, names=(option, field))
    hint = next(line for line in result.err.splitlines() if line.startswith("hint:"))
    assert closest in hint
    assert not changed(before, snapshot(registry))


def test_schema_fields_absent_from_every_card_are_an_empty_answer(registry: Path, cli) -> None:
    """`tags` and `run.owner` are fields the schema names: no typo to report."""
    for query in ('"baseline" in tags', 'owner == "ana"', "tags"):
        result = cli("find", "--where", query)
        assert result.code == 0, result.err
        assert "no matching" in result.out + result.err
        assert steps(cli, "--where", f"({query}) or dev.macro_f1 >= 0.9") == [2]


def test_one_column_per_field_however_it_is_spelt(registry: Path, cli) -> None:
    """The primary metric (`metrics.dev.macro_f1` once resolved) and `--by dev.macro_f1`
    are one field: the table shows it once."""
    config = "version: 1\nproject: p\nprimary_metric: dev.macro_f1\n"
    (registry / "dvcckpt.yaml").write_text(config)
    result = cli("find", "--by", "dev.macro_f1", "--top", "2", "--csv")
    assert result.code == 0, result.err
    header, *lines = result.out.splitlines()
    assert header.count("macro_f1") == 1 and len(lines) == 2
    assert lines[0].endswith("0.9")


def test_a_registry_without_cards_answers_empty(repo: Path, cli) -> None:
    """Nothing to misspell against: no error, and `dev.f1` still reads as a metric."""
    result = cli("find", "--where", "dev.macro_f1 > 0.8", "--sort", "-params.lr")
    assert result.code == 0, result.err
    assert "no matching" in result.out + result.err


def test_gate_rules_read_fields_in_the_same_language() -> None:
    """`metric: test.macro_f1` in gates.yaml is `metrics.test.macro_f1`, as in find and log."""
    from dvcckpt.core import gates

    card = {
        "name": "m-1",
        "metrics": {"test": {"macro_f1": 0.9, "class_f1": {"a": 0.8, "b": 0.6}}},
    }
    holder = {"name": "m-0", "metrics": {"test": {"macro_f1": 0.95, "class_f1": {}}}}
    short = [
        {"name": "f1", "metric": "test.macro_f1", "op": ">=", "value": 0.85},
        {"name": "floor", "each": "test.class_f1", "op": ">=", "value": 0.7},
        {"name": "no-regression", "regression": "test.macro_f1", "margin": 0.01},
    ]
    full = [
        {
            **rule,
            **{k: f"metrics.{v}" for k, v in rule.items() if k in ("metric", "each", "regression")},
        }
        for rule in short
    ]
    got = {r.rule: r.verdict for r in gates.evaluate(card, short, holder)}
    assert got == {r.rule: r.verdict for r in gates.evaluate(card, full, holder)}
    assert got == {"f1": "pass", "floor": "fail", "no-regression": "fail"}
