"""Decisions a change adds, judged as they will be when it merges: `check --base BASE`.

The base's policy (gates.yaml, dvcckpt.yaml, allowed signers) and the base's
stage holders decide; the change's own policy files are never consulted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dvcckpt.core.policy import Finding
from dvcckpt.project import Project
from dvcckpt.promotion import stages, verify
from dvcckpt.promotion.policy import PolicyReader


def decision_findings(
    project: Project, base: str, changed: list[tuple[str, dict[str, Any], dict[str, Any] | None]]
) -> list[Finding]:
    """Findings for every decision in `changed` (path, new card, base card) not in the base."""
    policy = PolicyReader(project).at(base)
    history = stages.decisions(project, base)
    holders = stages.holders(history)
    promoted = {(d.name, d.stage) for d in history if d.counts and d.verdict == "promoted"}
    # From git when the catalog lacks a blob: a missing holder would let regression gates pass.
    holder_cards = stages.cards_by_blob(project, {d.blob for d in holders.values()})
    added: dict[tuple[str, str], Mapping[str, Any]] = {}

    def holder(model: str, stage: str) -> Mapping[str, Any] | None:
        if (model, stage) in added:
            return added[(model, stage)]
        found = holders.get((model, stage))
        return holder_cards.get(found.blob) if found else None

    findings = []
    for path, card, old in changed:
        before = list((old or {}).get("decisions") or [])
        after = list(card.get("decisions") or [])
        if after[: len(before)] != before:
            continue  # the immutability check reports rewritten decisions
        for index in range(len(before), len(after)):
            entry = after[index]
            if not isinstance(entry, Mapping):  # the schema refuses it; never skip one
                findings.append(Finding(path, f"decisions[{index}]", "is not a decision mapping"))
                continue
            judged = verify.judge(entry, card, path, policy, holder,
                                  lambda name, stage: (name, stage) in promoted)  # fmt: skip
            if not judged.counts:
                what = f"{entry.get('verdict')} {entry.get('stage') or ''}".strip()
                findings.append(Finding(path, f"decisions[{index}]", f"{what}: {judged.reason}"))
            elif entry.get("verdict") == "promoted":
                promoted.add((str(card.get("name")), str(entry.get("stage"))))
                added[(str(card.get("model")), str(entry.get("stage")))] = card
    return findings
