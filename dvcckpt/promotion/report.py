"""`dvcckpt report`: what a reviewer reads on a pull request.

Checkpoints added or changed on the branch against its base, the current
production holder to compare with, gate results, decisions and lineage,
gathered as plain data; `present.report` renders it as Markdown or HTML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dvcckpt.adapters import git
from dvcckpt.catalog import Catalog, Version
from dvcckpt.core import gates
from dvcckpt.errors import ConfigError
from dvcckpt.project import Project, load_gates
from dvcckpt.promotion import stages


@dataclass
class Entry:
    name: str
    model: str
    path: str
    status: str  # added | changed
    card: dict[str, Any]
    holder: dict[str, Any] | None
    new_decisions: list[dict[str, Any]]
    gate_stage: str | None
    gate_results: list[dict[str, Any]] = field(default_factory=list)
    # (child, relation, parent) names, followed through the catalog
    lineage: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class Report:
    base: str
    head: str
    reference_stage: str
    entries: list[Entry]


def build(project: Project, base: str | None = None) -> Report:
    catalog = project.catalog
    base = base or stages.main_branch(project)
    on_branch = catalog.reachable([f"{base}..HEAD"])
    in_base = catalog.reachable([base])
    reference_stage = project.config.stages[-1]
    holders = stages.holders(stages.decisions(project, base))
    latest: dict[str, Version] = {}
    for version in catalog.versions(commits=on_branch):
        latest[version.path] = version
    entries = []
    for path, version in sorted(latest.items()):
        if version.status == "D" or version.card is None:
            continue
        before = [v for v in catalog.versions(path=path, commits=in_base) if v.card is not None]
        old_decisions = len((before[-1].card or {}).get("decisions") or []) if before else 0
        holder_decision = holders.get((version.model or "", reference_stage))
        holder = catalog.get(holder_decision.name, base).card if holder_decision else None
        entry = Entry(
            version.name or "?",
            version.model or "?",
            path,
            "changed" if before else "added",
            version.card,
            holder if holder and holder.get("name") != version.name else None,
            list((version.card.get("decisions") or [])[old_decisions:]),
            None,
        )
        _attach_gates(project, entry)
        entry.lineage = lineage(version.card, catalog)
        entries.append(entry)
    head = git.run_git(project.root, "rev-parse", "--short", "HEAD").strip()
    return Report(base, head, reference_stage, entries)


def _attach_gates(project: Project, entry: Entry) -> None:
    """Recorded gate results of a promotion on the branch; otherwise a fresh evaluation."""
    promotions = [d for d in entry.new_decisions if d.get("verdict") == "promoted"]
    if promotions:
        entry.gate_stage = promotions[-1].get("stage")
        entry.gate_results = list(promotions[-1].get("gates") or [])
        return
    try:
        document = load_gates(project.root)
    except ConfigError:
        return
    entry.gate_stage = project.config.stages[-1]
    rules = gates.rules_for(document, entry.model, entry.gate_stage)
    entry.gate_results = [r.as_dict() for r in gates.evaluate(entry.card, rules, entry.holder)]


def lineage(
    card: Mapping[str, Any], catalog: Catalog, depth: int = 5
) -> list[tuple[str, str, str]]:
    """A checkpoint's ancestry as (child, relation, parent) edges, up to `depth` generations."""
    edges: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    frontier = [(card, 0)]
    while frontier:
        node, level = frontier.pop()
        name = str(node.get("name"))
        if name in seen or level > depth:
            continue
        seen.add(name)
        for parent in node.get("parents") or []:
            edges.append((name, str(parent.get("relation", "")), str(parent.get("name"))))
            found = [v for v in catalog.versions(name=str(parent.get("name"))) if v.card]
            if found:
                frontier.append((found[-1].card or {}, level + 1))
    return edges
