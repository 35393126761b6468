"""Metrics with confidence intervals (`{value, ci, method}`), read the one way gates need.

A CI is two finite numbers `[low, high]` with `low <= value <= high`. Anything else
recorded under `ci` is malformed, and malformed is never read as "no CI": a reader
that fell back to the point value would let a bad interval pass a gate its honest
bounds fail. The card schema checks the shape (two numbers) but cannot say
`low <= high`, so `ci_problem` is the one check of the rest, shared by the gates
and the `-m VALUE:LOW:HIGH` parser.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dvcckpt.core.fields import leaves, number


class MalformedCI(ValueError):
    """A recorded CI that is not `[low, high]` around its value; the message says where."""


@dataclass(frozen=True)
class Estimate:
    """A metric as gates compare it: the point value and, when recorded, its CI."""

    value: float
    ci: tuple[float, float] | None = None

    def side(self, low: bool | None) -> tuple[float, str]:
        """The number compared on one side of the interval, and how a gate table shows it.

        `low=True` takes the lower bound, `False` the upper one, `None` the point value
        (for `==`/`!=`). Without a CI it is always the point value, shown as `0.86`;
        with one, `0.86 (CI low 0.84)`, so a reader sees the interval decided.
        """
        if self.ci is None or low is None:
            return self.value, f"{self.value:g}"
        bound = self.ci[0] if low else self.ci[1]
        return bound, f"{self.value:g} (CI {'low' if low else 'high'} {bound:g})"


def _finite(bound: Any) -> float | None:
    if isinstance(bound, Mapping):  # `number` would read an estimate's value
        return None
    found = number(bound)
    return found if found is not None and math.isfinite(found) else None


def _shown(ci: Any) -> str:
    text = str(ci)
    return text if len(text) <= 40 else text[:37] + "..."


def ci_problem(value: float, ci: Any) -> str | None:
    """Why `ci` is no confidence interval for `value` (`low 0.9 is above high 0.7`),
    or None when it is one."""
    if not isinstance(ci, list | tuple) or len(ci) != 2:
        return f"{_shown(ci)} is not two numbers [low, high]"
    low, high = _finite(ci[0]), _finite(ci[1])
    if low is None or high is None:
        return f"{_shown(list(ci))} is not two finite numbers [low, high]"
    if low > high:
        return f"low {low:g} is above high {high:g}"
    if not low <= value <= high:
        return f"value {value:g} is outside [{low:g}, {high:g}]"
    return None


def read(raw: Any, where: str) -> Estimate | None:
    """`raw` (a number or an estimate) as an Estimate; None when it is no number.

    Raises MalformedCI, naming `where`, when an interval is recorded but is not one.
    """
    value = number(raw)
    if value is None:
        return None
    if not isinstance(raw, Mapping) or "ci" not in raw:
        return Estimate(value)
    problem = ci_problem(value, raw["ci"])
    if problem is not None:
        raise MalformedCI(f"{where}: malformed CI, {problem}")
    low, high = raw["ci"]
    return Estimate(value, (float(low), float(high)))


def interval_problems(card: Mapping[str, Any]) -> list[str]:
    """Every malformed CI in a card's metrics and evaluations, as `field: message`.

    The card schema cannot say `low <= value <= high`; this is that check, for the
    policy to report beside the schema's findings.
    """
    found = []
    sections: list[tuple[str, Any]] = [("metrics", card.get("metrics"))]
    entries = card.get("evaluations")
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        if isinstance(entry, Mapping):
            sections.append((f"evaluations[{index}].metrics", entry.get("metrics")))
    for prefix, section in sections:
        if not isinstance(section, Mapping):
            continue
        for path, value in leaves(section, prefix + "."):
            if not (isinstance(value, Mapping) and "ci" in value):
                continue
            point = number(value)
            problem = ci_problem(point, value["ci"]) if point is not None else None
            if problem is not None:
                found.append(f"{path}.ci: malformed CI, {problem}")
    return found
