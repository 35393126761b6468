"""Promotion, rejection and archiving: append-only decisions on a card.

A decision is written to the card in the work tree and staged, ready to be
committed on a branch and reviewed in a pull request; it takes effect when
the pull request is merged (see `stages`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dvcckpt.adapters import capture, git, signing
from dvcckpt.cards import card, resolve
from dvcckpt.cards.retire import required_reference, required_text
from dvcckpt.core import decision as decision_format
from dvcckpt.core import gates
from dvcckpt.core.gates import GateResult
from dvcckpt.errors import CheckFailed, UsageError
from dvcckpt.project import Project, load_gates
from dvcckpt.promotion import stages


@dataclass(frozen=True)
class Evaluation:
    name: str
    model: str
    stage: str
    results: list[GateResult]
    holder: str | None

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "stage": self.stage, "passed": self.passed,
                "holder": self.holder, "gates": [r.as_dict() for r in self.results]}  # fmt: skip


def evaluate(project: Project, data: dict[str, Any], stage: str) -> Evaluation:
    """Gate results of a card for a stage (regression rules compare with the current holder)."""
    _check_stage(project, stage)
    rules = gates.rules_for(load_gates(project.root), data["model"], stage)
    holder = stages.holder_version_card(project, stages.main_branch(project), data["model"], stage)
    if holder is not None and holder.get("name") == data["name"]:
        holder = None  # re-evaluating the holder itself: nothing to regress against
    results = gates.evaluate(data, rules, holder)
    return Evaluation(
        data["name"], data["model"], stage, results, holder.get("name") if holder else None
    )


def promote(project: Project, reference: str, stage: str, rationale: str,
            override_reason: str | None = None,
            key: Path | None = None) -> tuple[card.Card, Evaluation]:  # fmt: skip
    rationale = required_text(rationale, "--rationale", "why this checkpoint is promoted")
    if override_reason is not None:
        override_reason = required_text(override_reason, "--reason", "why the gates are overridden")
    target = resolve.in_work_tree(project, required_reference(reference))
    data = target.data
    evaluation = evaluate(project, data, stage)
    problems = [
        f"{r.rule}: {r.verdict} ({r.actual}; needs {r.required})"
        for r in evaluation.results
        if not r.passed
    ]
    problems += _previous_stage_problems(project, data, stage)
    if problems and override_reason is None:
        raise CheckFailed(
            f"{data['name']} cannot be promoted to {stage}: {len(problems)} problem(s)",
            hint="fix them, or record a deliberate exception with --override --reason TEXT",
            details=problems,
        )
    decision: dict[str, Any] = {"verdict": "promoted", "stage": stage, **_who_and_when(project)}
    decision["rationale"] = rationale
    if problems:
        decision["override"] = True
        decision["reason"] = override_reason
    decision["gates"] = [r.as_dict() for r in evaluation.results]
    blob = _gates_blob(project)
    if blob:
        decision["gates_blob"] = blob
    return _append(project, target, decision, key), evaluation


def record(
    project: Project,
    reference: str,
    verdict: str,
    reason: str,
    stage: str | None = None,
    key: Path | None = None,
) -> card.Card:
    """A rejection or an archiving decision, with the reason."""
    reason = required_text(reason, "--reason", f"why the checkpoint is {verdict}")
    if stage is not None:
        _check_stage(project, stage)
    target = resolve.in_work_tree(project, required_reference(reference))
    decision: dict[str, Any] = {"verdict": verdict, **({"stage": stage} if stage else {})}
    decision.update(_who_and_when(project))
    decision["reason"] = reason
    return _append(project, target, decision, key)


def _check_stage(project: Project, stage: str) -> None:
    if stage not in project.config.stages:
        raise UsageError(f"unknown stage {stage!r}",
                         hint=f"stages in dvcckpt.yaml: {', '.join(project.config.stages)}")  # fmt: skip


def _previous_stage_problems(project: Project, data: dict[str, Any], stage: str) -> list[str]:
    order = project.config.stages
    if not project.config.require_previous_stage or order.index(stage) == 0:
        return []
    previous = order[order.index(stage) - 1]
    promoted = {
        d.get("stage") for d in data.get("decisions") or [] if d.get("verdict") == "promoted"
    }
    if previous in promoted:
        return []
    return [
        f"previous stage: {data['name']} was never promoted to {previous} (required by dvcckpt.yaml)"
    ]


def _who_and_when(project: Project) -> dict[str, Any]:
    return {"at": capture.now_utc(), "by": capture.user(project.root)}


def _gates_blob(project: Project) -> str | None:
    """Git blob id of the gates.yaml used: the exact rules stay retrievable from history."""
    path = project.root / gates.GATES_FILE
    return git.blob_id(path.read_bytes()) if path.is_file() else None


def _append(
    project: Project, target: card.Card, decision: dict[str, Any], key: Path | None
) -> card.Card:
    if target.path is None:
        raise UsageError("decisions are recorded on a card in the work tree",
                         hint="name the checkpoint without @REV")  # fmt: skip
    editable = card.read(target.path, project.config.card_max_bytes, editable=True)
    if editable.document.get("tombstone"):
        raise UsageError(f"{target.name} is retired", hint="decisions are for live checkpoints")
    decision["card"] = decision_format.binding(editable.data, project.relative(target.path))
    _sign(project, decision, key)
    existing = editable.document.get("decisions")
    if existing is None:
        editable.document["decisions"] = [decision]
    else:
        existing.append(decision)
    # Staged and written as one change: with a stale index.lock nothing is written, so a
    # re-run records the decision once.
    return card.write_staged(project.root, target.path, editable.document)


def _sign(project: Project, decision: dict[str, Any], key: Path | None) -> None:
    """Sign the decision with `--key` or git's SSH signing key; refuse unsigned if required."""
    found = signing.signing_key(project.root, key)
    if found is None:
        if project.config.require_signed:
            raise UsageError(
                "this repository requires signed decisions (promotion.require_signed)",
                hint="pass --key PATH, or `git config gpg.format ssh` and "
                "`git config user.signingkey PATH` to an SSH key listed in the allowed signers",
            )
        return
    principal = git.config_value(project.root, "user.email")
    if not principal:
        raise UsageError(
            "signing needs a principal: git config user.email is not set",
            hint="git config user.email YOU@EXAMPLE.COM (as listed in the allowed signers)",
        )
    decision["signature"] = {"principal": principal, "namespace": decision_format.NAMESPACE}
    decision["signature"]["sig"] = signing.sign(decision_format.payload(decision), found)
