"""`dvcckpt report`: what a reviewer reads on a pull request.

Checkpoints added or changed on the branch against its base, the current
production holder to compare with, gate results, decisions and lineage,
gathered as plain data; `present.report` renders it as Markdown or HTML.

Two things a reviewer must not miss are gathered here too:
- the policy files the change edits (gates, config, allowed signers, DVC config,
  CODEOWNERS, workflows), from one `git diff BASE...HEAD` against the merge base;
- whether each decision the branch adds will count when it merges, judged the way
  `check --base` judges it: the card rules of the hook that need no files on disk
  (schema, location, naming, required fields, tombstone, immutability against the
  base's version) and `review.decision_findings` under the base's policy. Anything
  that cannot be judged is reported invalid, never verified.
"""

from __future__ import annotations

import posixpath
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dvcckpt.adapters import git
from dvcckpt.catalog import Catalog, Version
from dvcckpt.core import gates, policy
from dvcckpt.core.config import CONFIG_FILE
from dvcckpt.core.gates import GATES_FILE
from dvcckpt.core.policy import Finding
from dvcckpt.errors import ConfigError, DvcckptError
from dvcckpt.project import Project, load_gates
from dvcckpt.promotion import review, stages
from dvcckpt.promotion.policy import PolicyReader

VERIFIED, UNSIGNED, INVALID = "verified", "unsigned", "invalid"
CODEOWNERS = ("CODEOWNERS", ".github/CODEOWNERS", "docs/CODEOWNERS")
POLICY_FOLDERS = (".github/workflows/", ".github/actions/")


@dataclass(frozen=True)
class DecisionStatus:
    status: str  # verified | unsigned | invalid
    reason: str | None = None  # why it is invalid
    principal: str | None = None  # who signed it (verified only)


@dataclass
class Entry:
    name: str
    model: str
    path: str
    status: str  # added | changed
    card: dict[str, Any]
    holder: dict[str, Any] | None
    new_decisions: list[Any]
    gate_stage: str | None
    gate_results: list[dict[str, Any]] = field(default_factory=list)
    # index in new_decisions of the promotion whose recorded results these are (else evaluated)
    gate_decision: int | None = None
    # (child, relation, parent) names, followed through the catalog
    lineage: list[tuple[str, str, str]] = field(default_factory=list)
    # one per new decision, in order: will it count once the change merges?
    verification: list[DecisionStatus] = field(default_factory=list)
    base_card: dict[str, Any] | None = None


@dataclass
class Report:
    base: str
    head: str
    reference_stage: str
    entries: list[Entry]
    # policy files the change edits (against the merge base with `base`)
    policy_changes: list[str] = field(default_factory=list)
    policy_problem: str | None = None  # why the policy changes could not be listed
    # cards on the branch that cannot be read, (path, why): a finding, never skipped
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def build(project: Project, base: str | None = None) -> Report:
    catalog = project.catalog
    base = base or stages.main_branch(project)
    on_branch = catalog.reachable([f"{base}..HEAD"])
    in_base = catalog.reachable([base])
    reference_stage = project.config.stages[-1]
    holders = stages.holders(stages.decisions(project, base))
    find = newest_card(catalog)  # lineage lookups, shared by every changed card
    latest: dict[str, Version] = {}
    for version in catalog.versions(commits=on_branch):
        latest[version.path] = version
    entries = []
    unreadable = []
    for path, version in sorted(latest.items()):
        if version.status == "D":
            continue
        if version.card is None:
            unreadable.append((path, _problem(catalog, version)))
            continue
        before = [v for v in catalog.versions(path=path, commits=in_base) if v.card is not None]
        base_card = before[-1].card if before else None
        old_decisions = _decisions(base_card)
        holder_decision = holders.get((version.model or "", reference_stage))
        holder = catalog.get(holder_decision.name, base).card if holder_decision else None
        entry = Entry(
            version.name or "?",
            version.model or "?",
            path,
            "changed" if before else "added",
            version.card,
            holder if holder and holder.get("name") != version.name else None,
            _decisions(version.card)[len(old_decisions) :],
            None,
            base_card=base_card,
        )
        _attach_gates(project, entry)
        entry.lineage = lineage(version.card, find)[0]
        entries.append(entry)
    _verify(project, base, entries)
    head = git.run_git(project.root, "rev-parse", "--short", "HEAD").strip()
    report = Report(base, head, reference_stage, entries, unreadable=unreadable)
    try:
        report.policy_changes = policy_changes(project, base)
    except DvcckptError as exc:
        report.policy_problem = exc.message
    return report


def _problem(catalog: Catalog, version: Version) -> str:
    for problem in catalog.index_problems():
        if problem.blob == version.blob:
            return problem.message
    return "the card cannot be read"


def _decisions(card: Mapping[str, Any] | None) -> list[Any]:
    found = (card or {}).get("decisions")
    return list(found) if isinstance(found, list) else []


def _attach_gates(project: Project, entry: Entry) -> None:
    """Recorded gate results of a promotion on the branch; otherwise a fresh evaluation."""
    promotions = [
        i
        for i, d in enumerate(entry.new_decisions)
        if isinstance(d, Mapping) and d.get("verdict") == "promoted"
    ]
    if promotions:
        entry.gate_decision = promotions[-1]
        promotion = entry.new_decisions[promotions[-1]]
        entry.gate_stage = promotion.get("stage")
        recorded = promotion.get("gates")
        entry.gate_results = [
            dict(g)
            for g in (recorded if isinstance(recorded, list) else [])
            if isinstance(g, Mapping)
        ]
        return
    try:
        document = load_gates(project.root)
    except ConfigError:
        return
    entry.gate_stage = project.config.stages[-1]
    rules = gates.rules_for(document, entry.model, entry.gate_stage)
    entry.gate_results = [r.as_dict() for r in gates.evaluate(entry.card, rules, entry.holder)]


# -- will the decisions count? -----------------------------------------------------------


def _verify(project: Project, base: str, entries: list[Entry]) -> None:
    """Fill each entry's `verification`: invalid unless every rule `check --base` applies passes."""
    deciding = [e for e in entries if e.new_decisions]
    if not deciding:
        return
    card_level = {e.path: _card_findings(project, e) for e in deciding}
    judged = [e for e in deciding if not card_level[e.path]]
    try:
        findings = review.decision_findings(
            project, base, [(e.path, e.card, e.base_card) for e in judged]
        )
    except DvcckptError as exc:
        card_level.update({e.path: [Finding(e.path, "", exc.message)] for e in judged})
        findings = []
    per_decision: dict[tuple[str, str], list[str]] = {}
    for finding in findings:
        per_decision.setdefault((finding.file, finding.field), []).append(finding.message)
    for entry in deciding:
        offset = len(_decisions(entry.card)) - len(entry.new_decisions)
        entry.verification = []
        for index, decision in enumerate(entry.new_decisions, start=offset):
            if card_level[entry.path]:
                reason = "the card fails check: " + "; ".join(
                    str(f) for f in card_level[entry.path][:3]
                )
                entry.verification.append(DecisionStatus(INVALID, reason))
            elif not isinstance(decision, Mapping):
                entry.verification.append(DecisionStatus(INVALID, "not a mapping"))
            elif problems := per_decision.get((entry.path, f"decisions[{index}]")):
                entry.verification.append(DecisionStatus(INVALID, "; ".join(problems)))
            else:
                signature = decision.get("signature")
                principal = signature.get("principal") if isinstance(signature, Mapping) else None
                if principal:
                    entry.verification.append(DecisionStatus(VERIFIED, principal=str(principal)))
                else:
                    entry.verification.append(DecisionStatus(UNSIGNED))


def _card_findings(project: Project, entry: Entry) -> list[Finding]:
    """The hook's card rules that need no files on disk (pointer and symlink checks do)."""
    path, card = entry.path, entry.card
    findings = policy.schema_findings(path, card)
    if findings:
        return findings  # later rules assume a schema-valid card
    findings += policy.location_findings(path, card)
    findings += policy.naming_findings(path, card, project.config)
    findings += policy.required_findings(path, card, project.config)
    findings += policy.tombstone_findings(path, card)
    if entry.base_card is not None:
        findings += policy.immutability_findings(path, entry.base_card, card)
    return findings


# -- policy files the change edits -------------------------------------------------------


def policy_changes(project: Project, base: str) -> list[str]:
    """Changed paths (against the merge base of `base` and HEAD) that are policy."""
    out = git.run_git(project.root, "diff", "--name-only", "--no-renames", "-z", f"{base}...HEAD")
    changed = [p for p in out.split("\0") if p]
    commit = git.run_git(project.root, "rev-parse", "--verify", f"{base}^{{commit}}").strip()
    watched = {CONFIG_FILE, GATES_FILE, *CODEOWNERS}
    for config in (PolicyReader(project).at(commit).config, project.config):
        if config.allowed_signers:
            watched.add(posixpath.normpath(config.allowed_signers))
    return [p for p in changed if _is_policy(p, watched)]


def _is_policy(path: str, watched: set[str]) -> bool:
    return (
        path in watched
        or path == ".dvc/config"
        or path.endswith("/.dvc/config")
        or path.startswith(POLICY_FOLDERS)
    )


# -- lineage -----------------------------------------------------------------------------


Edge = tuple[str, str, str]  # (child, relation, parent)
MAX_LINEAGE_EDGES = 120  # as many as the diagram draws (`present.lineage.MAX_EDGES`)


def lineage(
    card: Mapping[str, Any],
    find: Callable[[str], Mapping[str, Any] | None],
    depth: int = 5,
    max_edges: int = MAX_LINEAGE_EDGES,
) -> tuple[list[Edge], int]:
    """A checkpoint's ancestry as (child, relation, parent) edges: breadth first (the
    nearest generations first), up to `depth` generations and `max_edges` edges, each
    parent's card from `find(name)`. Returns the edges and how many parent links of the
    cards reached were left out (a card listing thousands of parents stays bounded)."""
    edges: list[Edge] = []
    left_out = 0
    seen: set[str] = set()
    frontier: deque[tuple[Mapping[str, Any], int]] = deque([(card, 0)])
    while frontier and len(edges) < max_edges:
        node, level = frontier.popleft()
        name = str(node.get("name"))
        if name in seen or level > depth:
            continue
        seen.add(name)
        listed = _parents(node)
        room = max_edges - len(edges)
        left_out += max(len(listed) - room, 0)
        for parent in listed[:room]:
            parent_name = str(parent.get("name"))
            edges.append((name, str(parent.get("relation", "")), parent_name))
            found = find(parent_name)
            if found is not None:
                frontier.append((found, level + 1))
    for node, level in frontier:  # read, not followed: their parents are left out
        name = str(node.get("name"))
        if name not in seen and level <= depth:
            seen.add(name)
            left_out += len(_parents(node))
    return edges, left_out


def _parents(card: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    parents = card.get("parents")
    return [p for p in parents if isinstance(p, Mapping)] if isinstance(parents, list) else []


def newest_card(catalog: Catalog) -> Callable[[str], Mapping[str, Any] | None]:
    """`find` for `lineage`: a name's newest card in the catalog, each name read once."""
    cache: dict[str, Mapping[str, Any] | None] = {}

    def find(name: str) -> Mapping[str, Any] | None:
        if name not in cache:
            found = [v for v in catalog.versions(name=name) if v.card]
            cache[name] = found[-1].card if found else None
        return cache[name]

    return find
