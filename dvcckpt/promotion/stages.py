"""Stages from history: who holds `dev`, `staging`, `production`, and since when.

A decision takes effect when it reaches the main branch, so decisions are
ordered by the first-parent commit of main that brought them in (a merged
pull request counts at its merge), never by their timestamps. The holder of
a stage is the checkpoint of the latest `promoted` decision for it; archiving
or demoting the holder leaves the stage empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dvcckpt.adapters import git
from dvcckpt.cards.card import Card
from dvcckpt.catalog import Catalog
from dvcckpt.errors import StateError, UsageError
from dvcckpt.project import Project


@dataclass(frozen=True)
class Decision:
    model: str
    name: str
    path: str
    verdict: str
    stage: str | None
    entry: Mapping[str, Any]  # the decision as recorded on the card
    commit: str  # the first-parent commit of main that brought it in
    order: int  # position of that commit on main

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "name": self.name, "path": self.path, "verdict": self.verdict,
                "stage": self.stage, "commit": self.commit, **dict(self.entry)}  # fmt: skip


def main_branch(project: Project) -> str:
    """The branch whose first-parent history decides stages."""
    if project.config.main_branch:
        return project.config.main_branch
    for candidate in ("main", "master"):
        if git.commit_of(project.root, f"refs/heads/{candidate}"):
            return candidate
    return "HEAD"


def decisions(catalog: Catalog, branch: str) -> list[Decision]:
    """Every decision on `branch`, in the order it reached the branch."""
    mainline = git.run_git(
        catalog.root, "rev-list", "--first-parent", "--reverse", branch, "--", check=False
    ).split()
    order = _arrival(catalog, mainline)
    versions = [v for v in catalog.versions(commits=set(order), with_decisions=True) if v.card]
    versions.sort(key=lambda v: (order[v.sha], v.generation))
    seen: dict[str, int] = {}
    found = []
    for version in versions:
        entries = (version.card or {}).get("decisions") or []
        for entry in entries[seen.get(version.path, 0) :]:
            if isinstance(entry, Mapping):
                index = order[version.sha]
                found.append(Decision(version.model or "?", version.name or "?", version.path,
                                      str(entry.get("verdict")), entry.get("stage"), entry,
                                      mainline[index], index))  # fmt: skip
        seen[version.path] = len(entries)
    return found


def _arrival(catalog: Catalog, mainline: list[str]) -> dict[str, int]:
    """Commit -> index of the first-parent commit of main that made it reachable."""
    parents = catalog.parent_links()
    arrival: dict[str, int] = {}
    for index, tip in enumerate(mainline):
        stack = [tip]
        while stack:
            sha = stack.pop()
            if sha in arrival:
                continue
            arrival[sha] = index
            stack.extend(p for p in parents.get(sha, ()) if p not in arrival)
    return arrival


def holders(history: list[Decision]) -> dict[tuple[str, str], Decision]:
    """(model, stage) -> the decision that made its current holder."""
    current: dict[tuple[str, str], Decision] = {}
    for decision in history:
        if decision.verdict == "promoted" and decision.stage:
            current[(decision.model, decision.stage)] = decision
        elif decision.verdict in ("demoted", "archived"):
            for key, holder in list(current.items()):
                if holder.name == decision.name and decision.stage in (None, key[1]):
                    del current[key]
    return current


def holder_version_card(
    catalog: Catalog, branch: str, model: str, stage: str
) -> dict[str, Any] | None:
    """The current holder's card as of the branch tip, or None when the stage is empty."""
    holder = holders(decisions(catalog, branch)).get((model, stage))
    if holder is None:
        return None
    version = catalog.get(holder.name, branch)
    return version.card


def holder_card(project: Project, model_or_name: str, stage: str) -> Card:
    """`MODEL@STAGE` (or a checkpoint name's model) -> the card holding that stage."""
    if stage not in project.config.stages:
        raise UsageError(
            f"unknown stage {stage!r}", hint=f"stages: {', '.join(project.config.stages)}"
        )
    catalog = project.catalog
    model = _model_of(catalog, model_or_name)
    card = holder_version_card(catalog, main_branch(project), model, stage)
    if card is None:
        raise StateError(f"no checkpoint of {model} holds {stage}",
                         hint=f"promote one: dvcckpt promote NAME --to {stage} --rationale TEXT")  # fmt: skip
    return Card(path=None, document=card)


def _model_of(catalog: Catalog, model_or_name: str) -> str:
    if catalog.versions(model=model_or_name):
        return model_or_name
    named = catalog.versions(name=model_or_name)
    if named and named[-1].model:
        return named[-1].model
    return model_or_name
