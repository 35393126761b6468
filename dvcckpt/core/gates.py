"""Quality gates (`gates.yaml`): rules a checkpoint must pass to enter a stage.

Evaluation is a pure function of the card (and, for regression rules, the
stage's current holder). A rule whose value is missing fails as `missing`;
nothing passes silently.

Metrics with a confidence interval are judged by the worst case inside it, the same
way for every kind, and the table's `actual` says so (`0.8 (CI low 0.68)`):
- `metric` and `each`: the low bound must clear a floor (`>=`, `>`), the high bound a
  ceiling (`<=`, `<`); `==` and `!=` compare the point value.
- `subsets`: each subset's low bound against the high bound of the reference, or of
  the best other subset when there is no reference.
- `regression`: the candidate's unfavourable bound against the holder's favourable
  one (low vs high when higher is better, high vs low when not), so it passes only
  if no values inside the two intervals regress by more than the margin.
A value without a CI is its own bound, so plain metrics are judged as before. A
malformed CI (not two finite numbers, low above high, the value outside) fails
the rule and says why: it is never read as the point value.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dvcckpt.core import estimates
from dvcckpt.core.estimates import Estimate, MalformedCI
from dvcckpt.core.fields import card_path, field, is_empty
from dvcckpt.core.limits import MAX_INT, MIN_INT

GATES_FILE = "gates.yaml"
PASS, FAIL, MISSING = "pass", "fail", "missing"
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
# Which bound of a CI is the unfavourable one for a comparison: the low bound must
# clear a floor, the high bound a ceiling; `==`/`!=` compare the point value.
_LOW_SIDE = {">=": True, ">": True, "<=": False, "<": False}


@dataclass(frozen=True)
class GateResult:
    rule: str
    kind: str
    required: str
    actual: str
    verdict: str  # pass | fail | missing

    @property
    def passed(self) -> bool:
        return self.verdict == PASS

    def as_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "kind": self.kind,
            "required": self.required,
            "actual": self.actual,
            "verdict": self.verdict,
        }


# Each kind of rule and the keys it may carry; a rule is of exactly one kind.
_KINDS: dict[str, tuple[set[str], set[str]]] = {  # kind -> (required, optional)
    "metric": ({"metric", "op", "value"}, set()),
    "each": ({"each", "op", "value"}, set()),
    "subsets": ({"subsets", "metric", "max_relative_drop"}, {"reference"}),
    "regression": ({"regression"}, {"margin", "higher_is_better"}),
    "require": ({"require"}, set()),
    "artifact": ({"artifact"}, set()),
}
_COMMON = {"name", "description"}


def _kinds_of(rule: Mapping[str, Any]) -> list[str]:
    kinds = [kind for kind in _KINDS if kind in rule]
    if "subsets" in kinds and "metric" in kinds:
        kinds.remove("metric")  # a subsets rule names the metric inside each subset
    return kinds


def shape_problems(document: Mapping[str, Any]) -> list[str]:
    """Rules that mix kinds, lack a kind's keys or carry another kind's, as `field: message`.

    A rule with both `metric` and `each` would otherwise be judged as one of them
    and the other silently ignored. Duplicate rule names within a stage are refused
    too: the later one would silently replace the earlier.
    """
    found = []
    sets = document.get("gates")
    names: dict[tuple[str, str], set[str]] = {}
    for index, gate_set in enumerate(sets if isinstance(sets, list) else []):
        rules = gate_set.get("rules") if isinstance(gate_set, Mapping) else None
        if not isinstance(rules, list):
            continue
        seen = names.setdefault(
            (str(gate_set.get("model", "*")), str(gate_set.get("stage"))), set()
        )
        for number, rule in enumerate(rules):
            if not isinstance(rule, Mapping):
                continue
            where = f"gates[{index}].rules[{number}]" + _label(gate_set, rule)
            found += [f"{where}: {problem}" for problem in _rule_shape(rule)]
            name = str(rule.get("name"))
            if name in seen:
                found.append(f"{where}: the rule name {name[:40]!r} is used twice for this stage")
            seen.add(name)
    return found


def labelled(problem: str, document: Mapping[str, Any]) -> str:
    """`gates[0].rules[1].op: ...` with the stage and rule name that position holds."""
    found = re.match(r"gates\[(\d+)\]\.rules\[(\d+)\]", problem)
    try:
        gate_set = document["gates"][int(found.group(1))] if found else None
        rule = gate_set["rules"][int(found.group(2))] if found and gate_set else None
    except (KeyError, IndexError, TypeError):
        return problem
    if not (found and isinstance(gate_set, Mapping) and isinstance(rule, Mapping)):
        return problem
    at = found.end()
    return problem[:at] + _label(gate_set, rule) + problem[at:]


def _label(gate_set: Mapping[str, Any], rule: Mapping[str, Any]) -> str:
    """` (stage production, rule f1)`: where a problem is, in the words of the file."""
    stage, name = str(gate_set.get("stage", "?"))[:40], str(rule.get("name", "?"))[:40]
    return f" (stage {stage}, rule {name})"


def _rule_shape(rule: Mapping[str, Any]) -> list[str]:
    kinds = _kinds_of(rule)
    if len(kinds) > 1:
        both = " and ".join(f"`{k}`" for k in kinds)
        return [f"{both} cannot be combined: a rule checks one thing (split it into two rules)"]
    if not kinds:
        return ["names no check: give it one of " + ", ".join(f"`{k}`" for k in _KINDS)]
    required, optional = _KINDS[kinds[0]]
    missing = sorted(required - set(rule))
    if missing:
        return [f"a `{kinds[0]}` rule needs `{missing[0]}`"]
    stray = sorted(set(rule) - required - optional - _COMMON)
    if stray:
        return [f"`{stray[0]}` does not apply to a `{kinds[0]}` rule"]
    return []


def value_problems(document: Mapping[str, Any]) -> list[str]:
    """Thresholds, margins and drops that are not finite numbers (NaN never compares false
    the way a reader expects, and `1e999` is infinity)."""
    found = []
    for index, gate_set in enumerate(document.get("gates", [])):
        for number, rule in enumerate(gate_set["rules"]):
            for key in ("value", "margin", "max_relative_drop"):
                value = rule.get(key)
                where = f"gates[{index}].rules[{number}]{_label(gate_set, rule)}.{key}"
                if isinstance(value, float) and not math.isfinite(value):
                    found.append(f"{where}: {value} is not a finite number")
                elif isinstance(value, int) and not MIN_INT <= value <= MAX_INT:
                    found.append(f"{where}: {str(value)[:20]}... is out of range")
    return found


def stage_problems(document: Mapping[str, Any], stages: tuple[str, ...]) -> list[str]:
    """Gate sets for a stage dvcckpt.yaml does not define: they would never apply, so a
    typo (`prod`) would let every promotion to the real stage pass ungated."""
    found = []
    for index, gate_set in enumerate(document.get("gates", [])):
        stage = gate_set["stage"]
        if stage not in stages:
            import difflib  # only for a mistake's suggestion

            close = difflib.get_close_matches(stage, stages, n=1, cutoff=0.5)
            found.append(
                f"gates[{index}].stage: {stage[:40]!r} is not a stage of dvcckpt.yaml "
                f"({', '.join(stages)})" + (f"; did you mean `{close[0]}`?" if close else "")
            )
    return found


def rules_for(document: Mapping[str, Any], model: str, stage: str) -> list[dict[str, Any]]:
    """Rules for `model` entering `stage`: `*` sets, then model-specific ones (same name wins)."""
    rules: dict[str, dict[str, Any]] = {}
    for specific in (False, True):
        for gate_set in document.get("gates", []):
            applies = gate_set.get("model", "*")
            if gate_set["stage"] == stage and (applies == model if specific else applies == "*"):
                rules.update({rule["name"]: rule for rule in gate_set["rules"]})
    return list(rules.values())


def evaluate(
    card: Mapping[str, Any], rules: list[dict[str, Any]], holder: Mapping[str, Any] | None = None
) -> list[GateResult]:
    return [_evaluate(card, rule, holder) for rule in rules]


def _evaluate(
    card: Mapping[str, Any], rule: dict[str, Any], holder: Mapping[str, Any] | None
) -> GateResult:
    kind = next((k for k in _CHECKS if k in rule), "metric")
    try:
        return _CHECKS[kind](card, rule, holder)
    except MalformedCI as bad:
        # Fail closed: an interval that is no interval is a finding, never the point value.
        return GateResult(rule["name"], kind, _required(kind, rule), str(bad)[:300], FAIL)


def _required(kind: str, rule: Mapping[str, Any]) -> str:
    """What a rule asks, as the gate table's `required` column shows it."""
    if kind == "each":
        return f"every {rule['each']} {rule['op']} {rule['value']:g}"
    if kind == "subsets":
        limit = float(rule["max_relative_drop"])
        return f"{rule['metric']} drops <= {limit:.0%} across {rule['subsets']}"
    if kind == "regression":
        margin = float(rule.get("margin", 0))
        return f"{rule['regression']} no worse than the current holder by > {margin:g}"
    if kind == "require":
        return "present: " + ", ".join(rule["require"])
    if kind == "artifact":
        return f"artifact {rule['artifact']}"
    return f"{rule['metric']} {rule['op']} {rule['value']:g}"


def _readings(mapping: Any, pick: Callable[[Any], Any]) -> dict[str, Estimate] | None:
    """Estimates picked from each entry of a mapping; None if absent or any is missing.

    Every entry is read first, so a malformed CI anywhere raises even when another
    entry is missing: the finding is not hidden behind a `missing` verdict.
    """
    if not isinstance(mapping, Mapping) or not mapping:
        return None
    picked = {str(k): estimates.read(pick(v), str(k)) for k, v in mapping.items()}
    found = {k: v for k, v in picked.items() if v is not None}
    return found if len(found) == len(picked) else None


def _threshold(
    card: Mapping[str, Any], rule: dict[str, Any], holder: Mapping[str, Any] | None
) -> GateResult:
    required = _required("metric", rule)
    reading = estimates.read(field(card, card_path(rule["metric"])), rule["metric"])
    if reading is None:
        return GateResult(rule["name"], "metric", required, "missing", MISSING)
    # Confidence-aware: the bound on the unfavourable side must clear the threshold.
    actual, shown = reading.side(_LOW_SIDE.get(rule["op"]))
    verdict = PASS if _OPS[rule["op"]](actual, float(rule["value"])) else FAIL
    return GateResult(rule["name"], "metric", required, shown, verdict)


def _each(
    card: Mapping[str, Any], rule: dict[str, Any], holder: Mapping[str, Any] | None
) -> GateResult:
    """Every class's unfavourable bound must clear the floor (its point value without a CI)."""
    required = _required("each", rule)
    readings = _readings(field(card, card_path(rule["each"])), lambda item: item)
    if readings is None:
        return GateResult(rule["name"], "each", required, "missing", MISSING)
    sides = {k: r.side(_LOW_SIDE.get(rule["op"])) for k, r in readings.items()}
    compare, floor = _OPS[rule["op"]], float(rule["value"])
    failing = [f"{k} {shown}" for k, (actual, shown) in sides.items() if not compare(actual, floor)]
    if failing:
        return GateResult(rule["name"], "each", required, ", ".join(failing), FAIL)
    worst = min(sides, key=lambda k: sides[k][0])
    return GateResult(rule["name"], "each", required, f"min {worst} {sides[worst][1]}", PASS)


def _subsets(
    card: Mapping[str, Any], rule: dict[str, Any], holder: Mapping[str, Any] | None
) -> GateResult:
    """The worst case inside the intervals: each subset's low bound against the high
    bound of the reference, or of the best other subset (point values without CIs)."""
    required = _required("subsets", rule)
    # The inner metric is relative to each subset, so it is not a card path.
    subsets = field(card, card_path(rule["subsets"]))
    readings = _readings(subsets, lambda subset: field(subset, rule["metric"]))
    named = rule.get("reference")
    reference = estimates.read(field(card, card_path(named)), named) if named else None
    if readings is None or len(readings) < 2 or (named and reference is None):
        return GateResult(rule["name"], "subsets", required, "missing", MISSING)
    drops = _drops(readings, (named, reference) if named and reference else None)
    worst = max(drops, key=lambda k: drops[k][0])
    drop, shown = drops[worst]
    verdict = PASS if drop <= float(rule["max_relative_drop"]) + 1e-12 else FAIL
    return GateResult(rule["name"], "subsets", required, f"{drop:.1%} ({shown})", verdict)


def _drops(
    readings: dict[str, Estimate], reference: tuple[str, Estimate] | None
) -> dict[str, tuple[float, str]]:
    """Each subset's relative drop from its base, and what the table says about it.

    Without a reference a subset's base is the best *other* subset, so an interval is
    never compared with itself; without CIs that is the best subset, as it always was.
    """
    tops = sorted(readings, key=lambda k: readings[k].side(False)[0], reverse=True)[:2]
    result = {}
    for name, reading in readings.items():
        base_name, base = reference or (
            (tops[1], readings[tops[1]]) if name == tops[0] else (tops[0], readings[tops[0]])
        )
        high, low = base.side(False)[0], reading.side(True)[0]
        drop = (high - low) / high if high else 0.0
        if reading.ci is None and base.ci is None:
            result[name] = (drop, name)
        else:
            low_text, high_text = _bound_text(reading, True), _bound_text(base, False)
            result[name] = (drop, f"{name} {low_text} vs {base_name} {high_text}")
    return result


def _bound_text(reading: Estimate, low: bool) -> str:
    """`CI low 0.78`, or the point value when there is no interval."""
    bound, shown = reading.side(low)
    return f"CI {'low' if low else 'high'} {bound:g}" if reading.ci else shown


def _regression(
    card: Mapping[str, Any], rule: dict[str, Any], holder: Mapping[str, Any] | None
) -> GateResult:
    """The candidate's unfavourable bound against the holder's favourable one: it passes
    only if no value inside the two intervals is a regression beyond the margin."""
    margin = float(rule.get("margin", 0))
    higher = rule.get("higher_is_better", True)
    required = _required("regression", rule)
    if holder is None:
        return GateResult(rule["name"], "regression", required, "no current holder", PASS)
    path, who = card_path(rule["regression"]), str(holder.get("name", "holder"))
    mine = estimates.read(field(card, path), rule["regression"])
    theirs = estimates.read(field(holder, path), f"{rule['regression']} of {who[:100]}")
    if mine is None or theirs is None:
        return GateResult(rule["name"], "regression", required, "missing", MISSING)
    (my_value, my_shown), (their_value, their_shown) = mine.side(higher), theirs.side(not higher)
    gain = (my_value - their_value) if higher else (their_value - my_value)
    shown = f"{my_shown} vs {their_shown} ({holder.get('name', 'holder')})"
    return GateResult(
        rule["name"], "regression", required, shown, PASS if gain >= -margin - 1e-12 else FAIL
    )


def _require(
    card: Mapping[str, Any], rule: dict[str, Any], holder: Mapping[str, Any] | None
) -> GateResult:
    absent = [f for f in rule["require"] if is_empty(field(card, f))]
    required = _required("require", rule)
    if absent:
        return GateResult(
            rule["name"], "require", required, "missing " + ", ".join(absent), MISSING
        )
    return GateResult(rule["name"], "require", required, "all present", PASS)


def _artifact(
    card: Mapping[str, Any], rule: dict[str, Any], holder: Mapping[str, Any] | None
) -> GateResult:
    wanted = rule["artifact"]
    found = [
        a.get("path", "")
        for a in card.get("artifacts") or []
        if isinstance(a, Mapping) and (a.get("kind") == wanted or wanted in str(a.get("path", "")))
    ]
    required = _required("artifact", rule)
    if not found:
        return GateResult(rule["name"], "artifact", required, "missing", MISSING)
    return GateResult(rule["name"], "artifact", required, found[0], PASS)


_Check = Callable[[Mapping[str, Any], dict[str, Any], Mapping[str, Any] | None], GateResult]
# Dispatch in this order; a rule with none of these keys is a threshold (`metric`).
_CHECKS: dict[str, _Check] = {
    "each": _each,
    "subsets": _subsets,
    "regression": _regression,
    "require": _require,
    "artifact": _artifact,
    "metric": _threshold,
}
