"""`dvcckpt site`: what the static catalog site shows, gathered from the services.

One pass over the catalog: the latest version of every card in scope (`find`'s
default scope, or every ref with `all_refs`), each model's performance history
(`log`, one query per model), the stage history replayed from the main branch
(`promotion.stages`, cached per branch tip), gate results for every stage the way
`dvcckpt gate` evaluates them (the current holder is the regression baseline),
lineage (`promotion.report.lineage`) and the model card text.

The result is plain data (`Site`); `present.site` turns it into pages and
`publish.sitefiles` writes them; model cards come from `publish.sitecards`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dvcckpt.adapters import git
from dvcckpt.core import gates
from dvcckpt.core.fields import leaves
from dvcckpt.core.fields import number as metric_number
from dvcckpt.errors import ConfigError, StateError
from dvcckpt.project import Project, load_gates
from dvcckpt.promotion import report, stages
from dvcckpt.publish.sitecards import ModelCard, ModelCards

if TYPE_CHECKING:
    from dvcckpt.catalog import Version
    from dvcckpt.catalog.rows import Row

Progress = Callable[[str, int, int], None]  # (what, done, total)
PLOTTED_METRICS = 12  # metrics whose history is read per model (the primary metric first)
NO_MODEL = "(no model)"  # the group of cards whose `model` is not a name
# Lineage edges kept per checkpoint: as many as its diagram draws (`present.lineage.MAX_EDGES`),
# so 60 cards that each list the 59 others stay 60 small pages.
MAX_LINEAGE_EDGES = report.MAX_LINEAGE_EDGES
LINEAGE_DEPTH = 5  # generations followed, as `dvcckpt report` does
Edge = report.Edge


@dataclass
class Checkpoint:
    version: Version
    card: dict[str, Any]
    # stage -> gate results (`GateResult.as_dict()`), evaluated against that stage's holder
    gates: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    baselines: dict[str, str | None] = field(default_factory=dict)  # stage -> holder compared
    lineage: list[Edge] = field(default_factory=list)
    lineage_left_out: int = 0  # parent links beyond MAX_LINEAGE_EDGES, not listed
    model_card: str | None = None
    model_card_problem: str | None = None
    holds: list[str] = field(default_factory=list)  # stages it holds now


@dataclass
class Model:
    name: str
    checkpoints: list[Checkpoint]  # newest first
    metrics: list[str]  # SPLIT.METRIC, the primary metric first, then the most common
    history: list[Row]  # performance history, newest first (`catalog.log`)
    holders: dict[str, stages.Decision]  # stage -> the decision that made its holder
    decisions: list[stages.Decision]  # the model's stage history, in order
    last_activity: int  # commit time of the newest card version


@dataclass
class Site:
    title: str
    scope: str  # "HEAD" or "all refs"
    branch: str  # the branch whose reviewed history decides stages
    head: str | None
    generated_at: str
    stages: tuple[str, ...]
    models: list[Model]
    gates_problem: str | None  # why gates.yaml could not be read (None: read, or absent)
    has_gates: bool
    unreadable: list[tuple[str, str]]  # (path, why) of card versions the catalog skipped
    stage_problem: str | None = None


def gather(
    project: Project,
    model_card: ModelCard,
    renderer_version: str,
    *,
    all_refs: bool = False,
    progress: Progress | None = None,
) -> Site:
    """Everything the site shows, in one pass over the catalog. `model_card` renders a
    card's model card; `renderer_version` names that renderer, so cached texts of
    another version are never shown."""
    report = progress or (lambda what, done, total: None)
    catalog = project.catalog
    versions = [v for v in catalog.find(all_refs=all_refs) if v.card is not None]
    branch = stages.main_branch(project)
    history, stage_problem = _stage_history(project, branch)
    holders = stages.holders(history)
    document, gates_problem, has_gates = _gates(project)
    cards = ModelCards(project, model_card, renderer_version)
    cards.prepare([(v.blob, v.card or {}) for v in versions], progress=report)
    named: dict[str, dict[str, Any]] = {}  # the newest card in scope of each name
    for version in sorted(versions, key=_newest_first, reverse=True):
        named[str(version.name)] = version.card or {}
    by_model: dict[str, list[Version]] = {}
    for version in versions:
        by_model.setdefault(model_of(version), []).append(version)
    models = []
    for model in sorted(set(by_model) | {m for m, _ in holders}):
        members = sorted(by_model.get(model, []), key=_newest_first)
        baselines = _holder_cards(project, branch, model, project.config.stages, holders)
        checkpoints = [
            _checkpoint(project, version, document, baselines, holders, cards, named)
            for version in members
        ]
        models.append(_model(project, model, checkpoints, history, holders, all_refs))
        report("checkpoints", sum(len(m.checkpoints) for m in models), len(versions))
    cards.save()
    return Site(
        title=project.config.project,
        scope="all refs" if all_refs else "HEAD",
        branch=branch,
        head=git.head_commit(project.root),
        generated_at=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        stages=project.config.stages,
        models=models,
        gates_problem=gates_problem,
        has_gates=has_gates,
        unreadable=_unreadable(project, all_refs),
        stage_problem=stage_problem,
    )


def model_of(version: Version) -> str:
    """The card's model name, or `NO_MODEL` when its `model` is missing or not a string
    (the catalog keeps every card that parses, valid or not)."""
    model = (version.card or {}).get("model")
    return model if isinstance(model, str) and model and version.model == model else NO_MODEL


def _unreadable(project: Project, all_refs: bool) -> list[tuple[str, str]]:
    """(path, why) of the card files in scope the catalog could not read: at HEAD, those
    HEAD holds as they are (a card fixed since is no problem); with --all, each once."""
    problems = {(p.path, p.blob): p.message for p in project.catalog.index_problems()}
    if not all_refs and problems:
        paths = sorted({path for path, _ in problems})
        listing = git.run_git(project.root, "ls-tree", "-z", "HEAD", "--", *paths, check=False)
        at_head = set()
        for entry in listing.split("\0"):
            meta, _, path = entry.partition("\t")
            if meta:
                at_head.add((path, meta.split()[-1]))
        problems = {key: why for key, why in problems.items() if key in at_head}
    return [(path, why) for (path, _), why in problems.items()]


def _stage_history(project: Project, branch: str) -> tuple[list[stages.Decision], str | None]:
    """The main branch's decisions, or none and why (a site is still worth writing)."""
    try:
        return stages.decisions(project, branch), None
    except StateError as exc:
        return [], exc.message


def _newest_first(version: Version) -> tuple[int, int, str]:
    return (-version.generation, -(version.step or 0), version.path)


def _gates(project: Project) -> tuple[Mapping[str, Any] | None, str | None, bool]:
    """The gates document, why it cannot be read, and whether the repository has one."""
    if not (project.root / gates.GATES_FILE).exists():
        return None, None, False
    try:
        return load_gates(project.root), None, True
    except ConfigError as exc:
        return None, exc.message, True


def _holder_cards(
    project: Project,
    branch: str,
    model: str,
    stage_names: tuple[str, ...],
    holders: Mapping[tuple[str, str], stages.Decision],
) -> dict[str, dict[str, Any] | None]:
    """Each stage's holder card: the baseline regression rules compare with."""
    out: dict[str, dict[str, Any] | None] = {}
    for stage in stage_names:
        decision = holders.get((model, stage))
        try:
            out[stage] = stages.bound_card(project, decision, branch) if decision else None
        except StateError:
            out[stage] = None  # a broken binding: `audit` reports it; gates run without it
    return out


def _checkpoint(
    project: Project,
    version: Version,
    document: Mapping[str, Any] | None,
    baselines: Mapping[str, dict[str, Any] | None],
    holders: Mapping[tuple[str, str], stages.Decision],
    cards: ModelCards,
    named: Mapping[str, Mapping[str, Any]],
) -> Checkpoint:
    card = version.card or {}
    entry = Checkpoint(version, card)
    entry.holds = [
        stage
        for (model, stage), decision in holders.items()
        if model == version.model and is_holder(decision, version)
    ]
    if document is not None:
        for stage in project.config.stages:
            rules = gates.rules_for(document, version.model or "", stage)
            holder = baselines.get(stage)
            if holder is not None and holder.get("name") == version.name:
                holder = None  # the holder itself: nothing to regress against, as `gate` says
            entry.gates[stage] = [r.as_dict() for r in gates.evaluate(card, rules, holder)]
            entry.baselines[stage] = str(holder.get("name")) if holder else None
    entry.lineage, entry.lineage_left_out = lineage(card, named)
    entry.model_card, entry.model_card_problem = cards.get(version.blob, card)
    return entry


def lineage(
    card: Mapping[str, Any], named: Mapping[str, Mapping[str, Any]]
) -> tuple[list[Edge], int]:
    """A checkpoint's ancestry among the site's cards (`named`: its scope, HEAD or all
    refs), bounded as the diagram is (`promotion.report.lineage`)."""
    return report.lineage(card, named.get, LINEAGE_DEPTH, MAX_LINEAGE_EDGES)


def is_holder(decision: stages.Decision, version: Version) -> bool:
    """Whether `version` is the card `decision` promoted: the same name and, when the
    decision bound one, the same checkpoint sha256. Never by path: a re-run may write
    a new card where the holder's was."""
    if version.name != decision.name:
        return False
    bound = decision.binding.get("sha256") if isinstance(decision.binding, Mapping) else None
    if not bound or bound == "None":
        return True
    meta = (version.card or {}).get("checkpoint")
    return isinstance(meta, Mapping) and str(meta.get("sha256")) == str(bound)


def _model(
    project: Project,
    model: str,
    checkpoints: list[Checkpoint],
    history: list[stages.Decision],
    holders: Mapping[tuple[str, str], stages.Decision],
    all_refs: bool,
) -> Model:
    metrics = metric_names([c.card for c in checkpoints], project.config.primary_metric)
    rows: list[Row] = []
    if checkpoints and model != NO_MODEL:  # the catalog has no history of "no model"
        plotted = metrics[:PLOTTED_METRICS]
        rows = project.catalog.log(model, metrics=plotted, all_refs=all_refs, check_metrics=False)
    return Model(
        name=model,
        checkpoints=checkpoints,
        metrics=metrics,
        history=rows,
        holders={stage: d for (m, stage), d in holders.items() if m == model},
        decisions=[d for d in history if d.model == model],
        last_activity=max((c.version.committed for c in checkpoints), default=0),
    )


def metric_names(cards: list[dict[str, Any]], primary: str | None = None) -> list[str]:
    """SPLIT.METRIC names the cards record a number for: the primary metric first, then
    the most common, then by name."""
    counts: Counter[str] = Counter()
    for card in cards:
        metrics = card.get("metrics")
        if not isinstance(metrics, Mapping):
            continue
        for split, section in metrics.items():
            if not isinstance(section, Mapping):
                continue
            for name, value in leaves(section):
                if metric_number(value) is not None:
                    counts[f"{split}.{name}"] += 1
    primary = (primary or "").removeprefix("metrics.")
    return sorted(counts, key=lambda m: (m != primary, -counts[m], m))
