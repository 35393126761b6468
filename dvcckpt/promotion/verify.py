"""Is a decision valid? The one set of rules `stages`, `check --base` and `audit` apply.

A decision counts only if, under the policy of the commit it was judged
against (the first parent / the pull request's base):
- it names a known verdict and stage, and is bound to the card version it sits on;
- its signature is valid for its principal in that policy's allowed signers, and
  the owners policy lets that principal decide this model and stage (an unsigned
  decision counts only while `promotion.require_signed` is false);
- for a promotion: re-evaluating that policy's gates gives exactly the recorded
  results, and they pass (or the decision is an explicit override), and the
  previous stage was held first when `promotion.require_previous_stage` says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dvcckpt.adapters import signing
from dvcckpt.core import config as config_module
from dvcckpt.core import decision as decision_format
from dvcckpt.core import gates
from dvcckpt.promotion.policy import Policy

VERIFIED, UNSIGNED, INVALID = "verified", "unsigned", "invalid"


@dataclass(frozen=True)
class Judgement:
    status: str  # verified | unsigned | invalid
    reason: str | None
    principal: str | None
    binding: dict[str, Any]

    @property
    def counts(self) -> bool:
        return self.status != INVALID


def judge(
    entry: Mapping[str, Any],
    card: Mapping[str, Any],
    card_path: str,
    policy: Policy,
    holder: Callable[[str, str], Mapping[str, Any] | None],
    promoted_before: Callable[[str, str], bool],
) -> Judgement:
    """Judge one decision found on `card` (at `card_path`) under `policy`.

    `holder(model, stage)` gives the current holder's card (for regression gates);
    `promoted_before(name, stage)` whether that checkpoint validly held the stage.
    """
    bound = decision_format.binding(card, card_path)
    signature = entry.get("signature") if isinstance(entry.get("signature"), Mapping) else None
    principal = str(signature.get("principal")) if signature else None

    def invalid(reason: str) -> Judgement:
        return Judgement(INVALID, reason, principal, bound)

    if policy.problem:
        return invalid(policy.problem)
    problem = _shape_problem(entry, card, bound, policy)
    if problem:
        return invalid(problem)
    status = VERIFIED
    if signature is None:
        if policy.config.require_signed:
            return invalid("unsigned, and promotion.require_signed is true")
        status = UNSIGNED
    else:
        problem = _signature_problem(entry, signature, str(card.get("model")), policy)
        if problem:
            return invalid(problem)
    if entry.get("verdict") == "promoted":
        problem = _promotion_problem(entry, card, policy, holder, promoted_before)
        if problem:
            return invalid(problem)
    return Judgement(status, None, principal, bound)


def _shape_problem(
    entry: Mapping[str, Any], card: Mapping[str, Any], bound: dict[str, Any], policy: Policy
) -> str | None:
    verdict, stage = entry.get("verdict"), entry.get("stage")
    if verdict not in decision_format.COUNTED_VERDICTS:
        return f"unknown verdict {verdict!r}"
    if verdict == "promoted" and not stage:
        return "a promotion must name its stage"
    if stage is not None and stage not in policy.config.stages:
        return f"stage {stage!r} is not one of {', '.join(policy.config.stages)}"
    recorded = entry.get("card")
    if recorded is not None and recorded != bound:
        return "bound to another card version (name, path, hashes or immutable fields differ)"
    if recorded is None and entry.get("signature") is not None:
        return "signed without a card binding"
    return None


def _signature_problem(
    entry: Mapping[str, Any], signature: Mapping[str, Any], model: str, policy: Policy
) -> str | None:
    principal = str(signature.get("principal") or "")
    sig = signature.get("sig")
    if not principal or not isinstance(sig, str):
        return "malformed signature"
    reason = signing.verify(decision_format.payload(entry), sig, policy.signers, principal)
    if reason:
        return f"{reason} (allowed signers at {policy.label})"
    if not config_module.may_decide(policy.config, principal, model, entry.get("stage")):
        stage = entry.get("stage") or "any stage"
        return f"{principal} does not own {model} at {stage} (owners in dvcckpt.yaml)"
    return None


def _promotion_problem(
    entry: Mapping[str, Any],
    card: Mapping[str, Any],
    policy: Policy,
    holder: Callable[[str, str], Mapping[str, Any] | None],
    promoted_before: Callable[[str, str], bool],
) -> str | None:
    model, name, stage = str(card.get("model")), str(card.get("name")), str(entry["stage"])
    rules = gates.rules_for(policy.gates, model, stage) if policy.gates else []
    current = holder(model, stage)
    if current is not None and current.get("name") == name:
        current = None  # re-promoting the holder itself: nothing to regress against
    expected = [r.as_dict() for r in gates.evaluate(card, rules, current)]
    recorded = entry.get("gates") or []
    if _ordered(recorded) != _ordered(expected):
        return (
            f"recorded gate results differ from gates.yaml at {policy.label} "
            f"(re-evaluated: {_summary(expected)})"
        )
    failing = [r["rule"] for r in expected if r["verdict"] != gates.PASS]
    if failing and not (entry.get("override") is True and str(entry.get("reason") or "").strip()):
        return f"fails gate(s) {', '.join(failing)} without a recorded override"
    order = policy.config.stages
    if policy.config.require_previous_stage and order.index(stage) > 0:
        previous = order[order.index(stage) - 1]
        if not promoted_before(name, previous):
            return f"was never promoted to {previous} (promotion.require_previous_stage)"
    return None


def _ordered(results: Any) -> list[Any]:
    if not isinstance(results, list):
        return [results]
    return sorted(
        (dict(r) if isinstance(r, Mapping) else r for r in results),
        key=lambda r: str(r.get("rule")) if isinstance(r, dict) else str(r),
    )


def _summary(results: list[dict[str, Any]]) -> str:
    if not results:
        return "no gates"
    return ", ".join(f"{r['rule']} {r['verdict']}" for r in results)
