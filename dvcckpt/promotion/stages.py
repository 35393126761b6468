"""Stages from reviewed history: who holds `dev`, `staging`, `production`, and since when.

The holder of a stage is computed by walking the main branch's first-parent
chain: at each commit only the net change against its first parent counts
(what a reviewer approved at the merge), so decisions that exist only inside a
merged branch's intermediate commits never count. Each decision that change
adds is judged (`promotion.verify`) under the policy of that first parent; an
invalid one is kept in the history with its reason and ignored. A decision
takes effect at its merge, never by its timestamp.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dvcckpt.adapters import git, gitlog
from dvcckpt.cards.card import Card
from dvcckpt.catalog import Catalog
from dvcckpt.catalog.rows import read_card
from dvcckpt.core import decision as decision_format
from dvcckpt.errors import StateError, UsageError
from dvcckpt.project import Project
from dvcckpt.promotion import verify
from dvcckpt.promotion.policy import PolicyReader

NULL_BLOB = "0" * 40
_CACHE_VERSION = "replay-1"


@dataclass(frozen=True)
class Decision:
    model: str
    name: str
    path: str  # the card's repository path
    verdict: str
    stage: str | None
    entry: Mapping[str, Any]  # the decision as recorded on the card
    commit: str  # the first-parent commit of main that brought it in
    order: int  # position of that commit on main
    blob: str = ""  # the card version it sits on
    status: str = verify.UNSIGNED  # verified | unsigned | invalid
    reason: str | None = None
    principal: str | None = None
    binding: dict[str, Any] = field(default_factory=dict)

    @property
    def counts(self) -> bool:
        return self.status != verify.INVALID

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "name": self.name, "path": self.path, "verdict": self.verdict,
                "stage": self.stage, "commit": self.commit, "status": self.status,
                "reason": self.reason, "principal": self.principal, **dict(self.entry)}  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def main_branch(project: Project) -> str:
    """The branch whose first-parent history decides stages."""
    if project.config.main_branch:
        return project.config.main_branch
    for candidate in ("main", "master"):
        if git.commit_of(project.root, f"refs/heads/{candidate}"):
            return candidate
    return "HEAD"


def decisions(project: Project, branch: str | None = None) -> list[Decision]:
    """Every decision the reviewed history of `branch` brought in, judged, in order.

    The result depends only on the branch tip, so it is cached in the catalog.
    """
    branch = branch or main_branch(project)
    tip = git.commit_of(project.root, branch)
    if tip is None:
        return []
    catalog = project.catalog
    key = f"{_CACHE_VERSION}:{tip}"
    cached = catalog.meta(key)
    if cached is not None:
        return [Decision(**d) for d in json.loads(cached)]
    found = Replay(project, catalog).run(tip)
    catalog.set_meta(key, json.dumps([d.to_json() for d in found], separators=(",", ":")),
                     prefix=_CACHE_VERSION)  # fmt: skip
    return found


class Replay:
    """Walks a first-parent chain once, judging each decision its net changes add."""

    def __init__(self, project: Project, catalog: Catalog) -> None:
        self.project = project
        self.catalog = catalog
        self.policies = PolicyReader(project)
        self.holders: dict[tuple[str, str], Decision] = {}
        self.promoted: set[tuple[str, str]] = set()
        self.found: list[Decision] = []
        self.cards: dict[str, dict[str, Any]] = {}

    def run(self, tip: str) -> list[Decision]:
        commits = list(gitlog.mainline(self.project.root, tip))
        with_decisions = self.catalog.blobs_with_decisions()
        known = self.catalog.known_blobs()
        relevant = []
        for index, commit in enumerate(commits):
            changes = [c for c in commit.changes
                       if c[2] != NULL_BLOB and (c[2] in with_decisions or c[2] not in known)]  # fmt: skip
            if changes:
                relevant.append((index, commit, changes))
        self.policies.prefetch([commit.parent for _, commit, _ in relevant])
        blobs = {b for _, _, changes in relevant for _, old, new in changes for b in (old, new)}
        self.cards = cards_by_blob(self.project, blobs - {NULL_BLOB})
        for index, commit, changes in relevant:
            for path, old, new in changes:
                self._judge_change(index, commit, path, self.cards.get(old),
                                   self.cards.get(new), new)  # fmt: skip
        return self.found

    def _judge_change(self, index: int, commit: gitlog.MainlineCommit, path: str,
                      old: dict[str, Any] | None, new: dict[str, Any] | None, blob: str) -> None:  # fmt: skip
        if new is None:
            return  # unreadable card: the hook refuses it; it holds no stage
        before = _entries(old)
        after = _entries(new)
        start = len(before) if after[: len(before)] == before else 0
        policy = self.policies.at(commit.parent)
        for entry in after[start:]:
            if not isinstance(entry, Mapping):
                continue
            judgement = verify.judge(entry, new, path, policy, self._holder_card, self._promoted)
            reason = judgement.reason
            status = judgement.status
            if start == 0 and before:
                status, reason = verify.INVALID, "earlier decisions on this card were rewritten"
            stage = entry.get("stage")
            stage = stage if stage is None or isinstance(stage, str) else str(stage)
            decision = Decision(str(new.get("model")), str(new.get("name")), path,
                                str(entry.get("verdict")), stage, dict(entry),
                                commit.sha, index, blob, status, reason, judgement.principal,
                                judgement.binding)  # fmt: skip
            self.found.append(decision)
            if decision.counts:
                self._apply(decision)

    def _apply(self, decision: Decision) -> None:
        apply(self.holders, decision)
        if decision.verdict == "promoted" and decision.stage:
            self.promoted.add((decision.name, decision.stage))

    def _holder_card(self, model: str, stage: str) -> Mapping[str, Any] | None:
        holder = self.holders.get((model, stage))
        return self.cards.get(holder.blob) if holder else None

    def _promoted(self, name: str, stage: str) -> bool:
        return (name, stage) in self.promoted


def cards_by_blob(project: Project, blobs: set[str]) -> dict[str, dict[str, Any]]:
    """Parsed cards of blob ids: from the catalog, else from git (a blob only a merge made).

    A blob the catalog could not index stays unread: every reader sees it the same way.
    """
    cards = project.catalog.cards_by_blob(blobs)
    missing = sorted(blobs - project.catalog.known_blobs())
    for blob, content in git.read_blobs(project.root, missing).items():
        card = _parse(content, blob)
        if card is not None:
            cards[blob] = card
    return cards


def _entries(card: Mapping[str, Any] | None) -> list[Any]:
    value = (card or {}).get("decisions")
    return list(value) if isinstance(value, list) else []


def _parse(content: bytes | None, blob: str) -> dict[str, Any] | None:
    return read_card(blob, content)  # the catalog's reading, so both agree on every blob


def holders(history: list[Decision]) -> dict[tuple[str, str], Decision]:
    """(model, stage) -> the counted decision that made its current holder."""
    current: dict[tuple[str, str], Decision] = {}
    for decision in history:
        if decision.counts:
            apply(current, decision)
    return current


def apply(current: dict[tuple[str, str], Decision], decision: Decision) -> None:
    """Update stage holders with one counted decision (archiving or demoting vacates)."""
    if decision.verdict == "promoted" and decision.stage:
        current[(decision.model, decision.stage)] = decision
    elif decision.verdict in ("demoted", "archived"):
        for key, holder in list(current.items()):
            if holder.name == decision.name and decision.stage in (None, key[1]):
                del current[key]


def holder_version_card(
    project: Project, branch: str, model: str, stage: str
) -> dict[str, Any] | None:
    """The current holder's card as of the branch tip, or None when the stage is empty.

    Resolved through the decision's binding (path, sha256, md5, immutable digest),
    never by name: a card that no longer matches the binding is an error.
    """
    holder = holders(decisions(project, branch)).get((model, stage))
    if holder is None:
        return None
    return bound_card(project, holder, branch)


def bound_card(project: Project, decision: Decision, branch: str) -> dict[str, Any]:
    catalog = project.catalog
    in_branch = catalog.reachable([branch])
    versions = [v for v in catalog.versions(path=decision.path, commits=in_branch)]
    latest = versions[-1] if versions else None
    card = latest.card if latest and latest.status != "D" else None
    if card is None or decision_format.binding(card, decision.path) != decision.binding:
        raise StateError(
            f"the card bound to {decision.model}@{decision.stage} ({decision.path}) "
            f"no longer matches the decision that promoted it",
            hint="the card's hashes or immutable fields changed after promotion: "
            "run `dvcckpt audit --verify` and restore the card",
        )
    return card


def holder_card(project: Project, model_or_name: str, stage: str) -> Card:
    """`MODEL@STAGE` (or a checkpoint name's model) -> the card holding that stage."""
    if stage not in project.config.stages:
        raise UsageError(
            f"unknown stage {stage!r}", hint=f"stages: {', '.join(project.config.stages)}"
        )
    model = _model_of(project.catalog, model_or_name)
    card = holder_version_card(project, main_branch(project), model, stage)
    if card is None:
        raise StateError(f"no checkpoint of {model} holds {stage}",
                         hint=f"promote one: dvcckpt promote NAME --to {stage} --rationale TEXT")  # fmt: skip
    return Card(path=None, document=card)


def _model_of(catalog: Catalog, model_or_name: str) -> str:
    return catalog.model_of(model_or_name) or model_or_name
