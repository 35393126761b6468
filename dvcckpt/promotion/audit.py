"""`dvcckpt audit`: every decision in the main branch's reviewed history, and whether it holds.

Decisions are re-judged from scratch on every audit (signatures, bindings,
gates and owners under each first parent's policy), so a history rewritten
after the fact (`git filter-branch`, a force-push) shows up as invalid
decisions, and a stage holder whose card no longer matches its decision shows
up as a broken binding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dvcckpt.errors import StateError
from dvcckpt.project import Project
from dvcckpt.promotion import stages


@dataclass(frozen=True)
class Audit:
    branch: str
    decisions: list[stages.Decision]
    broken_holders: list[str]  # "MODEL@STAGE: why"

    @property
    def ok(self) -> bool:
        return not self.broken_holders and all(d.counts for d in self.decisions)

    def as_dict(self) -> dict[str, Any]:
        return {"branch": self.branch, "ok": self.ok, "broken_holders": self.broken_holders,
                "decisions": [_row(d) for d in self.decisions]}  # fmt: skip


def audit(project: Project, model: str | None = None) -> Audit:
    branch = stages.main_branch(project)
    history = [d for d in stages.decisions(project, branch) if model in (None, d.model)]
    broken = []
    for (holder_model, stage), decision in sorted(stages.holders(history).items()):
        try:
            stages.bound_card(project, decision, branch)
        except StateError as exc:
            broken.append(f"{holder_model}@{stage}: {exc.message}")
    return Audit(branch, history, broken)


def _row(decision: stages.Decision) -> dict[str, Any]:
    entry = decision.entry
    return {
        "commit": decision.commit,
        "model": decision.model,
        "card": decision.name,
        "path": decision.path,
        "stage": decision.stage,
        "verdict": decision.verdict,
        "principal": decision.principal,
        "by": (entry.get("by") or {}).get("email") if isinstance(entry.get("by"), dict) else None,
        "at": entry.get("at"),
        "why": entry.get("rationale") or entry.get("reason"),
        "override": bool(entry.get("override")),
        "status": decision.status,
        "reason": decision.reason,
    }


def rows(result: Audit) -> list[dict[str, Any]]:
    return [_row(d) for d in result.decisions]
