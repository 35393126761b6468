"""Quality gates (`gates.yaml`): rules a checkpoint must pass to enter a stage.

Evaluation is a pure function of the card (and, for regression rules, the
stage's current holder). A rule whose value is missing fails as `missing`;
nothing passes silently.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dvcckpt.core.fields import card_path, field, is_empty
from dvcckpt.core.fields import number as _number
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


def _numbers(mapping: Any, pick: Callable[[Any], Any]) -> dict[str, float] | None:
    """Numbers picked from each entry of a mapping; None if absent or any is missing."""
    if not isinstance(mapping, Mapping) or not mapping:
        return None
    picked = {str(k): _number(pick(v)) for k, v in mapping.items()}
    numbers = {k: v for k, v in picked.items() if v is not None}
    return numbers if len(numbers) == len(picked) else None


def _evaluate(
    card: Mapping[str, Any], rule: dict[str, Any], holder: Mapping[str, Any] | None
) -> GateResult:
    if "each" in rule:
        return _each(card, rule)
    if "subsets" in rule:
        return _subsets(card, rule)
    if "regression" in rule:
        return _regression(card, rule, holder)
    if "require" in rule:
        return _require(card, rule)
    if "artifact" in rule:
        return _artifact(card, rule)
    return _threshold(card, rule)


def _threshold(card: Mapping[str, Any], rule: dict[str, Any]) -> GateResult:
    required = f"{rule['metric']} {rule['op']} {rule['value']:g}"
    raw = field(card, card_path(rule["metric"]))
    value = _number(raw)
    if value is None:
        return GateResult(rule["name"], "metric", required, "missing", MISSING)
    actual, shown = value, f"{value:g}"
    ci = raw.get("ci") if isinstance(raw, Mapping) else None
    if (
        isinstance(ci, list)
        and len(ci) == 2
        and all(isinstance(b, int | float) and not isinstance(b, bool) for b in ci)
        and rule["op"] in (">=", ">", "<=", "<")
    ):
        # Confidence-aware: the bound on the unfavourable side must clear the threshold.
        bound = ci[0] if rule["op"] in (">=", ">") else ci[1]
        actual, shown = (
            float(bound),
            f"{value:g} (CI {'low' if rule['op'] in ('>=', '>') else 'high'} {bound:g})",
        )
    verdict = PASS if _OPS[rule["op"]](actual, float(rule["value"])) else FAIL
    return GateResult(rule["name"], "metric", required, shown, verdict)


def _each(card: Mapping[str, Any], rule: dict[str, Any]) -> GateResult:
    required = f"every {rule['each']} {rule['op']} {rule['value']:g}"
    values = _numbers(field(card, card_path(rule["each"])), lambda item: item)
    if values is None:
        return GateResult(rule["name"], "each", required, "missing", MISSING)
    failing = {k: v for k, v in values.items() if not _OPS[rule["op"]](v, float(rule["value"]))}
    worst = min(values, key=lambda k: values[k])
    if failing:
        shown = ", ".join(f"{k} {v:g}" for k, v in failing.items())
        return GateResult(rule["name"], "each", required, shown, FAIL)
    return GateResult(rule["name"], "each", required, f"min {worst} {values[worst]:g}", PASS)


def _subsets(card: Mapping[str, Any], rule: dict[str, Any]) -> GateResult:
    limit = float(rule["max_relative_drop"])
    required = f"{rule['metric']} drops <= {limit:.0%} across {rule['subsets']}"
    # The inner metric is relative to each subset, so it is not a card path.
    subsets = field(card, card_path(rule["subsets"]))
    values = _numbers(subsets, lambda subset: field(subset, rule["metric"]))
    reference = (
        _number(field(card, card_path(rule["reference"]))) if rule.get("reference") else None
    )
    if values is None or len(values) < 2 or (rule.get("reference") and reference is None):
        return GateResult(rule["name"], "subsets", required, "missing", MISSING)
    base = reference if reference is not None else max(values.values())
    drops = {k: (base - v) / base if base else 0.0 for k, v in values.items()}
    worst = max(drops, key=lambda k: drops[k])
    verdict = PASS if drops[worst] <= limit + 1e-12 else FAIL
    return GateResult(rule["name"], "subsets", required, f"{drops[worst]:.1%} ({worst})", verdict)


def _regression(
    card: Mapping[str, Any], rule: dict[str, Any], holder: Mapping[str, Any] | None
) -> GateResult:
    margin = float(rule.get("margin", 0))
    higher = rule.get("higher_is_better", True)
    required = f"{rule['regression']} no worse than the current holder by > {margin:g}"
    if holder is None:
        return GateResult(rule["name"], "regression", required, "no current holder", PASS)
    path = card_path(rule["regression"])
    mine, theirs = _number(field(card, path)), _number(field(holder, path))
    if mine is None or theirs is None:
        return GateResult(rule["name"], "regression", required, "missing", MISSING)
    gain = (mine - theirs) if higher else (theirs - mine)
    shown = f"{mine:g} vs {theirs:g} ({holder.get('name', 'holder')})"
    return GateResult(
        rule["name"], "regression", required, shown, PASS if gain >= -margin - 1e-12 else FAIL
    )


def _require(card: Mapping[str, Any], rule: dict[str, Any]) -> GateResult:
    absent = [f for f in rule["require"] if is_empty(field(card, f))]
    required = "present: " + ", ".join(rule["require"])
    if absent:
        return GateResult(
            rule["name"], "require", required, "missing " + ", ".join(absent), MISSING
        )
    return GateResult(rule["name"], "require", required, "all present", PASS)


def _artifact(card: Mapping[str, Any], rule: dict[str, Any]) -> GateResult:
    wanted = rule["artifact"]
    found = [
        a.get("path", "")
        for a in card.get("artifacts") or []
        if isinstance(a, Mapping) and (a.get("kind") == wanted or wanted in str(a.get("path", "")))
    ]
    required = f"artifact {wanted}"
    if not found:
        return GateResult(rule["name"], "artifact", required, "missing", MISSING)
    return GateResult(rule["name"], "artifact", required, found[0], PASS)
