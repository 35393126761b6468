"""Every gate kind judges a metric with a confidence interval by the worst case inside it.

`metric`, `each`, `subsets` and `regression` compare the unfavourable bound and say so
in the gate table (`0.8 (CI low 0.68)`); a metric without a CI is judged by its point
value as before; a malformed CI fails the rule with the reason, never read as a value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dvcckpt.cards import card
from dvcckpt.core import estimates, gates
from tests.conftest import git, write_checkpoint


def ci(value: float, low: float, high: float) -> dict[str, Any]:
    return {"value": value, "ci": [low, high], "method": "bootstrap"}


def judged(card_data: dict[str, Any], rule: dict[str, Any], holder: Any = None) -> gates.GateResult:
    return gates.evaluate(card_data, [{"name": "r", **rule}], holder)[0]


FLOOR = {"each": "metrics.test.class_f1", "op": ">=", "value": 0.70}
CEILING = {"each": "resources.latency_ms", "op": "<=", "value": 120}
DIALECTS = {"subsets": "metrics.test_dialects", "metric": "macro_f1", "max_relative_drop": 0.05}
REGRESSION = {"regression": "metrics.dev.f1", "margin": 0.01}
LATENCY = {"regression": "resources.latency_ms_p95", "higher_is_better": False}


# -- each: per-class floors and ceilings --------------------------------------------------


def test_a_class_whose_ci_low_is_under_the_floor_fails_it() -> None:
    wide = {"metrics": {"test": {"class_f1": {"neg": ci(0.80, 0.68, 0.90), "pos": 0.88}}}}
    result = judged(wide, FLOOR)
    assert (result.verdict, result.actual) == ("fail", "neg 0.8 (CI low 0.68)")
    assert result.required == "every metrics.test.class_f1 >= 0.7"
    plain = {"metrics": {"test": {"class_f1": {"neg": 0.80, "pos": 0.88}}}}
    assert judged(plain, FLOOR).actual == "min neg 0.8"  # the same point value passes
    no_interval = {"metrics": {"test": {"class_f1": {"neg": {"value": 0.80, "method": "run"}}}}}
    assert judged(no_interval, FLOOR).actual == "min neg 0.8"


def test_a_passing_floor_names_the_bound_that_came_closest() -> None:
    tight = {"metrics": {"test": {"class_f1": {"neg": ci(0.80, 0.74, 0.86), "pos": 0.73}}}}
    result = judged(tight, FLOOR)
    assert (result.verdict, result.actual) == ("pass", "min pos 0.73")
    tight["metrics"]["test"]["class_f1"]["pos"] = 0.90
    assert judged(tight, FLOOR).actual == "min neg 0.8 (CI low 0.74)"


def test_a_ceiling_compares_the_high_bound() -> None:
    latency = {"resources": {"latency_ms": {"cpu": ci(110, 95, 130), "gpu": 20}}}
    result = judged(latency, CEILING)
    assert (result.verdict, result.actual) == ("fail", "cpu 110 (CI high 130)")


# -- subsets: worst case is each subset's low bound vs the best other's high bound -----------


def test_a_subset_drop_is_measured_from_the_high_bound_to_the_low_bound() -> None:
    # Points 0.86 vs 0.84 are a 2.3% drop; the intervals allow 0.88 vs 0.81, 8.0%.
    robust = {
        "metrics": {
            "test_dialects": {
                "en-us": {"macro_f1": ci(0.86, 0.85, 0.88)},
                "aae": {"macro_f1": ci(0.84, 0.81, 0.87)},
            }
        }
    }
    result = judged(robust, DIALECTS)
    assert result.verdict == "fail"
    assert result.actual == "8.0% (aae CI low 0.81 vs en-us CI high 0.88)"
    for subset in robust["metrics"]["test_dialects"].values():
        subset["macro_f1"] = subset["macro_f1"]["value"]
    assert (judged(robust, DIALECTS).verdict, judged(robust, DIALECTS).actual) == (
        "pass",
        "2.3% (aae)",
    )


def test_a_subset_interval_is_never_compared_with_itself() -> None:
    # en-us against its own bounds would "drop" 13% (0.92 to 0.80); its real worst cases
    # are 4.8% below aae and aae's 8.7% below en-us's high bound.
    card_data = {
        "metrics": {
            "test_dialects": {
                "en-us": {"macro_f1": ci(0.86, 0.80, 0.92)},
                "aae": {"macro_f1": 0.84},
            }
        }
    }
    result = judged(card_data, {**DIALECTS, "max_relative_drop": 0.10})
    assert (result.verdict, result.actual) == ("pass", "8.7% (aae 0.84 vs en-us CI high 0.92)")


def test_a_subset_reference_with_a_ci_is_taken_at_its_high_bound() -> None:
    card_data = {
        "metrics": {
            "test": {"macro_f1": ci(0.85, 0.83, 0.87)},
            "test_dialects": {"en-us": {"macro_f1": 0.85}, "aae": {"macro_f1": 0.83}},
        }
    }
    rule = {**DIALECTS, "reference": "test.macro_f1"}
    result = judged(card_data, rule)
    assert (result.verdict, result.actual) == (
        "pass",
        "4.6% (aae 0.83 vs test.macro_f1 CI high 0.87)",
    )


# -- regression: candidate's unfavourable bound vs the holder's favourable one -------------


def test_a_regression_compares_the_candidate_low_with_the_holder_high() -> None:
    candidate = {"metrics": {"dev": {"f1": ci(0.83, 0.79, 0.87)}}}
    holder = {"name": "old", "metrics": {"dev": {"f1": ci(0.82, 0.80, 0.84)}}}
    result = judged(candidate, REGRESSION, holder)
    assert result.verdict == "fail"  # by point values it would gain 0.01
    assert result.actual == "0.83 (CI low 0.79) vs 0.82 (CI high 0.84) (old)"
    tight = {"metrics": {"dev": {"f1": ci(0.86, 0.835, 0.88)}}}
    assert judged(tight, REGRESSION, holder).verdict == "pass"  # 0.835 >= 0.84 - 0.01


def test_a_lower_is_better_regression_compares_the_candidate_high_with_the_holder_low() -> None:
    candidate = {"resources": {"latency_ms_p95": ci(90, 80, 105)}}
    holder = {"name": "old", "resources": {"latency_ms_p95": ci(100, 95, 104)}}
    result = judged(candidate, LATENCY, holder)
    assert (result.verdict, result.actual) == ("fail", "90 (CI high 105) vs 100 (CI low 95) (old)")
    holder["resources"]["latency_ms_p95"] = ci(110, 106, 114)
    assert judged(candidate, LATENCY, holder).verdict == "pass"


def test_a_holder_without_a_ci_is_its_point_value() -> None:
    candidate = {"metrics": {"dev": {"f1": ci(0.83, 0.815, 0.85)}}}
    holder = {"name": "old", "metrics": {"dev": {"f1": 0.82}}}
    result = judged(candidate, REGRESSION, holder)
    assert (result.verdict, result.actual) == ("pass", "0.83 (CI low 0.815) vs 0.82 (old)")
    plain = {"metrics": {"dev": {"f1": 0.80}}}
    assert judged(plain, REGRESSION, holder).actual == "0.8 vs 0.82 (old)"


# -- malformed intervals fail closed ---------------------------------------------------------


MALFORMED = [
    pytest.param({"value": 0.8, "ci": [0.9, 0.7]}, "low 0.9 is above high 0.7", id="low>high"),
    pytest.param({"value": 0.95, "ci": [0.7, 0.9]}, "value 0.95 is outside [0.7, 0.9]", id="out"),
    pytest.param({"value": 0.8, "ci": [0.7]}, "is not two numbers", id="one-bound"),
    pytest.param({"value": 0.8, "ci": [0.7, "high"]}, "not two finite numbers", id="text"),
    pytest.param({"value": 0.8, "ci": [0.7, True]}, "not two finite numbers", id="bool"),
    pytest.param({"value": 0.8, "ci": [float("-inf"), 0.9]}, "not two finite", id="inf"),
    pytest.param({"value": 0.8, "ci": None}, "is not two numbers", id="null"),
]


@pytest.mark.parametrize(("estimate", "reason"), MALFORMED)
def test_a_malformed_ci_fails_every_kind_and_says_why(estimate: Any, reason: str) -> None:
    cases = [
        ({"metrics": {"test": {"f1": estimate}}}, {"metric": "test.f1", "op": ">=", "value": 0.5}),
        ({"metrics": {"test": {"class_f1": {"neg": estimate, "pos": 0.9}}}}, FLOOR),
        (
            {"metrics": {"test_dialects": {"a": {"macro_f1": estimate}, "b": {"macro_f1": 0.8}}}},
            DIALECTS,
        ),
        ({"metrics": {"dev": {"f1": estimate}}}, REGRESSION),
    ]
    holder = {"name": "old", "metrics": {"dev": {"f1": 0.5}}}
    for card_data, rule in cases:
        result = judged(card_data, rule, holder)
        assert result.verdict == "fail", (rule, result)  # a point value of 0.8 would pass
        assert "malformed CI" in result.actual and reason in result.actual, result.actual


def test_a_malformed_ci_names_where_it_is() -> None:
    floor = judged(
        {"metrics": {"test": {"class_f1": {"neg": {"value": 0.8, "ci": [0.9, 0.7]}}}}}, FLOOR
    )
    assert floor.actual == "neg: malformed CI, low 0.9 is above high 0.7"
    assert floor.kind == "each" and floor.required == "every metrics.test.class_f1 >= 0.7"
    holder = {"name": "old", "metrics": {"dev": {"f1": {"value": 0.8, "ci": [0.9, 0.7]}}}}
    result = judged({"metrics": {"dev": {"f1": 0.9}}}, REGRESSION, holder)
    assert result.verdict == "fail"
    assert result.actual == "metrics.dev.f1 of old: malformed CI, low 0.9 is above high 0.7"


def test_a_malformed_ci_is_found_even_beside_a_missing_class() -> None:
    classes = {"pos": "n/a", "neg": {"value": 0.8, "ci": [0.9, 0.7]}}
    result = judged({"metrics": {"test": {"class_f1": classes}}}, FLOOR)
    assert result.verdict == "fail" and "malformed CI" in result.actual


def test_a_threshold_no_longer_reads_a_malformed_ci_as_its_low_bound() -> None:
    # [0.9, 0.7] used to be read as "low 0.9" and passed a >= 0.85 threshold.
    bad = {"metrics": {"test": {"f1": {"value": 0.8, "ci": [0.9, 0.7]}}}}
    result = judged(bad, {"metric": "test.f1", "op": ">=", "value": 0.85})
    assert (result.verdict, result.actual) == (
        "fail",
        "test.f1: malformed CI, low 0.9 is above high 0.7",
    )


# -- the gate and promote commands on a real repository ---------------------------------------


GATES = """\
version: 1
gates:
  - stage: dev
    rules:
      - {name: no-regression, regression: metrics.dev.macro_f1, margin: 0.01}
  - stage: production
    rules:
      - {name: class-floor, each: metrics.test.class_f1, op: ">=", value: 0.70}
"""


def add(repo: Path, cli: Any, step: int, metrics: dict[str, Any]) -> str:
    """Register a checkpoint whose metrics (estimates included) come from a metrics file."""
    write_checkpoint(repo / f"models/sentiment/step-{step}.pt", seed=step)
    metrics_file = repo / f"metrics-{step}.json"
    metrics_file.write_text(json.dumps(metrics))
    args = ["--metrics", str(metrics_file), "--seed", "42", "--data", "tweets=v1"]
    result = cli("add", f"models/sentiment/step-{step}.pt", *args)
    assert result.code == 0, result.err
    metrics_file.unlink()
    return str(card.read(repo / f"models/sentiment/step-{step}.pt.ckpt.yaml").data["name"])


@pytest.fixture
def registry(repo: Path, cli: Any) -> Path:
    (repo / "gates.yaml").write_text(GATES)
    (repo / "dvcckpt.yaml").write_text(
        "version: 1\nproject: demo\nstages: [dev, production]\n"
        "promotion: {require_previous_stage: false}\n"
    )
    return repo


def test_gate_and_promote_fail_a_class_floor_on_its_ci_low(registry: Path, cli: Any) -> None:
    classes = {"neg": ci(0.80, 0.68, 0.90), "pos": ci(0.88, 0.85, 0.91)}
    name = add(registry, cli, 100, {"test": {"macro_f1": 0.84, "class_f1": classes}})
    git(registry, "add", "--all")
    git(registry, "commit", "-qm", "a checkpoint with per-class intervals")
    gated = cli("gate", name, "--stage", "production")
    assert gated.code == 1, gated.out + gated.err
    assert "neg 0.8 (CI low 0.68)" in gated.out and "✗ fail" in gated.out
    results = json.loads(cli("gate", name, "--stage", "production", "--json").out)["gates"]
    assert results == [
        {
            "rule": "class-floor",
            "kind": "each",
            "required": "every metrics.test.class_f1 >= 0.7",
            "actual": "neg 0.8 (CI low 0.68)",
            "verdict": "fail",
        }
    ]
    refused = cli("promote", name, "--to", "production", "--rationale", "looks fine")
    assert refused.code == 1 and "class-floor" in refused.out + refused.err
    assert "decisions" not in card.read(registry / "models/sentiment/step-100.pt.ckpt.yaml").data


def test_promote_refuses_a_regression_the_intervals_allow(registry: Path, cli: Any) -> None:
    holder = add(registry, cli, 100, {"dev": {"macro_f1": ci(0.82, 0.80, 0.84)}})
    candidate = add(registry, cli, 200, {"dev": {"macro_f1": ci(0.83, 0.79, 0.87)}})
    git(registry, "add", "--all")
    git(registry, "commit", "-qm", "two checkpoints")
    assert cli("promote", holder, "--to", "dev", "--rationale", "first").code == 0
    git(registry, "commit", "-qm", "promote the first to dev")
    gated = cli("gate", candidate, "--stage", "dev")
    assert gated.code == 1, gated.out + gated.err
    assert f"0.83 (CI low 0.79) vs 0.82 (CI high 0.84) ({holder})" in gated.out
    refused = cli("promote", candidate, "--to", "dev", "--rationale", "higher point value")
    assert refused.code == 1 and "no-regression" in refused.out + refused.err


def test_gate_fails_a_hand_edited_malformed_ci(registry: Path, cli: Any) -> None:
    name = add(registry, cli, 100, {"test": {"class_f1": {"neg": ci(0.80, 0.75, 0.85)}}})
    card_file = registry / "models/sentiment/step-100.pt.ckpt.yaml"
    card_file.write_text(card_file.read_text().replace("- 0.75\n", "- 0.95\n"))
    assert "0.95" in card_file.read_text()
    git(registry, "add", "--all")
    git(registry, "commit", "-qm", "an interval that is no interval")
    gated = cli("gate", name, "--stage", "production")
    assert gated.code == 1, gated.out + gated.err
    assert "neg: malformed CI, low 0.95 is above high 0.85" in gated.out


def test_interval_problems_lists_every_malformed_ci_of_a_card() -> None:
    """The check the hook can report beside the schema's (the schema cannot say low <= high)."""
    card_data = {
        "metrics": {
            "test": {
                "f1": ci(0.86, 0.84, 0.88),
                "class_f1": {"neg": {"value": 0.8, "ci": [0.9, 0.7]}},
            }
        },
        "evaluations": [{"split": "test2", "metrics": {"f1": {"value": 0.9, "ci": [0.7, 0.8]}}}],
    }
    assert estimates.interval_problems(card_data) == [
        "metrics.test.class_f1.neg.ci: malformed CI, low 0.9 is above high 0.7",
        "evaluations[0].metrics.f1.ci: malformed CI, value 0.9 is outside [0.7, 0.8]",
    ]
    assert estimates.interval_problems({"metrics": {"test": {"f1": ci(0.86, 0.84, 0.88)}}}) == []
