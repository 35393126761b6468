"""`find --group-by`: checkpoints aggregated per run, or per any field (`run.group`).

Aggregation over what `find`'s compiled plan matches, so grouping filters, scopes and
field spellings exactly as `find` does. For one metric each group reports how many
checkpoints it has, its best checkpoint, its last one, and, over its runs, mean ±
standard deviation: every run contributes one value, its best checkpoint's (or its
last one's, `per_run="last"`), so a run with many checkpoints weighs as much as a run
with few. That is the answer to "which configuration is robust across seeds".

A run is a distinct (`run.name`, `run.id`); a checkpoint with neither is a run of its
own; `--group-by run` makes one group per run (shown by its name, else its id), so
two runs that share a name stay apart. A run's "last" is its highest step (a final
model without a step after all); a group's follows the order of `log`.
"""

from __future__ import annotations

import gc
import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dvcckpt.catalog.index import Index
from dvcckpt.catalog.where import Field
from dvcckpt.core.fields import card_path, number

PER_RUN = ("best", "last")
# The columns `find` is asked for, in this order, behind the group field and the metric.
RUN_FIELDS = ("run.name", "run.id", "seeds.seed")


@dataclass(frozen=True)
class Member:
    """A checkpoint standing for a run or a group: its name and its metric value."""

    name: str
    commit: str
    step: int | None
    value: Any  # as recorded: a number, or an estimate {value, ci, method}
    point: float | None  # the point value compared

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass(frozen=True)
class RunSummary:
    run: str | None
    run_id: str | None
    seed: Any
    checkpoints: int
    best: Member | None
    last: Member | None
    contributed: float | None  # the value this run adds to its group's mean

    def as_dict(self) -> dict[str, Any]:
        data = self.__dict__.copy()
        data["best"] = self.best.as_dict() if self.best else None
        data["last"] = self.last.as_dict() if self.last else None
        return data


@dataclass(frozen=True)
class Group:
    key: Any  # the group field's value (None: cards without it)
    checkpoints: int
    runs: list[RunSummary]
    best: Member | None
    last: Member | None
    mean: float | None
    std: float | None  # sample standard deviation over the runs; None for fewer than two

    @property
    def seeds(self) -> list[Any]:
        return [run.seed for run in self.runs]

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "checkpoints": self.checkpoints,
            "n": sum(1 for run in self.runs if run.contributed is not None),
            "mean": self.mean,
            "std": self.std,
            "seeds": self.seeds,
            "best": self.best.as_dict() if self.best else None,
            "last": self.last.as_dict() if self.last else None,
            "runs": [run.as_dict() for run in self.runs],
        }


@dataclass(frozen=True)
class Grouping:
    field: str  # the card path grouped by
    metric: str  # the card path of the metric
    higher_is_better: bool
    per_run: str
    groups: list[Group]

    @property
    def by_run(self) -> bool:
        """Each group is one run (grouped by the run's own name or id)."""
        return self.field in ("run.name", "run.id")

    def as_dict(self) -> dict[str, Any]:
        return {
            "group_by": self.field,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "per_run": self.per_run,
            "groups": [group.as_dict() for group in self.groups],
        }


def columns(group_by: str, metric: str) -> list[str]:
    """The columns `summarise` reads for each checkpoint, in this order."""
    return [card_path(group_by), card_path(metric), *RUN_FIELDS]


def summarise(
    catalog: Index,
    group_by: str,
    metric: str,
    *,
    higher_is_better: bool = True,
    per_run: str = "best",
    **options: Any,
) -> Grouping:
    """Groups of what `find` with `options` matches, best group first, read as narrow
    rows already in history order (no card, no `Version` per checkpoint: a group-by
    reads every match)."""
    from dvcckpt.catalog import find

    _check_per_run(per_run)
    extra, paths = find.columns_sql([Field(c) for c in columns(group_by, metric)])
    select = f"{extra} AS x, coalesce(k.name, p.path), c.sha, k.step, p.path"
    joins = "JOIN commits c ON c.id = v.commit_id JOIN paths p ON p.id = v.path_id"
    order = "v.generation, v.committed, c.sha, k.step IS NULL, k.step, p.path"
    statement, params = find.plan(catalog, **options).statement(select, joins, order)
    require_field(catalog, group_by, all_refs=bool(options.get("all_refs")))
    found = catalog.sql(statement, paths + params)
    # Each row's columns are one JSON array written by SQLite: all decoded in one call.
    decoded = json.loads(f"[{','.join([row[0] for row in found])}]")
    # Tens of thousands of small objects, none of them garbage: the collector's passes
    # over them would cost a tenth of the aggregation and free nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _grouping(
            zip(decoded, found, strict=True), group_by, metric, higher_is_better, per_run
        )
    finally:
        if collecting:
            gc.enable()


def _check_per_run(per_run: str) -> None:
    if per_run not in PER_RUN:
        raise ValueError(f"per_run must be one of {PER_RUN}, not {per_run!r}")


# One found checkpoint as aggregation keeps it (a plain tuple, the cheapest object
# to make once per checkpoint), indexed by the names below: its value as recorded (a
# number, or an estimate {value, ci, method}), its point value (float or None), its
# name (else its path), commit, step, run name, run id and seed.
_Checkpoint = tuple[Any, ...]
_VALUE, _POINT, _LABEL, _SHA, _STEP, _NAME, _RUN_ID, _SEED = range(8)


def _member(row: _Checkpoint) -> Member:
    return Member(row[_LABEL], row[_SHA], row[_STEP], row[_VALUE], row[_POINT])


@dataclass(slots=True)
class _RunSoFar:
    """A run while its checkpoints stream by in history order."""

    checkpoints: int = 0
    best: _Checkpoint | None = None
    last: _Checkpoint | None = None
    last_key: tuple[bool, int] = (False, 0)


@dataclass(slots=True)
class _GroupSoFar:
    key: Any
    checkpoints: int = 0
    last: _Checkpoint | None = None
    runs: dict[tuple[Any, ...], _RunSoFar] = field(default_factory=dict)


def _grouping(
    rows: Iterable[tuple[Sequence[Any], Sequence[Any]]],
    group_by: str,
    metric: str,
    higher: bool,
    per_run: str,
) -> Grouping:
    """One pass over checkpoints in history order (each its `columns` values and its
    name, else path, commit, step and path): a run's best is the first to reach the
    best value, its last the highest step (a final model after all; on a tie the later
    one), a group's last the last in history."""
    by_key: dict[Any, _GroupSoFar] = {}
    run_identity = group_by.strip() == "run"
    isfinite = math.isfinite
    for values, (_, label, sha, step, path, *_) in rows:
        key, value, name, run_id, seed = values[:5]  # decoded: an estimate is a dict
        point = float(value) if type(value) in (float, int) else number(value)
        if point is not None and not isfinite(point):
            point = None
        row = (value, point, label, sha, step, name, run_id, seed)
        name, run_id = _text(name), _text(run_id)
        if run_identity:  # a run is its (name, id): two runs sharing a name are two groups
            grouped: Any = ("run", name, run_id)
            shown = row[_NAME] if row[_NAME] is not None else row[_RUN_ID]
        else:
            grouped, shown = _as_key(key), key
        group = by_key.get(grouped)
        if group is None:
            group = by_key[grouped] = _GroupSoFar(shown)
        group.checkpoints += 1
        group.last = row
        identity = (name, run_id) if name or run_id else (None, None, path)
        run = group.runs.get(identity)
        if run is None:
            run = group.runs[identity] = _RunSoFar()
        run.checkpoints += 1
        best = run.best
        if point is not None and (
            best is None or (point > best[_POINT] if higher else point < best[_POINT])
        ):
            run.best = row
        last_key = (step is None, step or 0)
        if run.last is None or last_key >= run.last_key:
            run.last, run.last_key = row, last_key
    groups = [_group(group, higher, per_run) for group in by_key.values()]
    groups.sort(key=lambda g: (*_rank(g.mean, higher), json.dumps(g.key, default=str)))
    return Grouping(card_path(group_by), card_path(metric), higher, per_run, groups)


def _group(group: _GroupSoFar, higher: bool, per_run: str) -> Group:
    runs = [_run(run, per_run) for run in group.runs.values()]
    values = [run.contributed for run in runs if run.contributed is not None]
    bests = [run.best for run in runs if run.best is not None]
    assert group.last is not None  # a group exists because a checkpoint is in it
    return Group(
        key=group.key,
        checkpoints=group.checkpoints,
        runs=runs,
        best=_best(bests, higher),
        last=_member(group.last),
        mean=statistics.fmean(values) if values else None,
        std=statistics.stdev(values) if len(values) > 1 else None,
    )


def _run(run: _RunSoFar, per_run: str) -> RunSummary:
    assert run.last is not None
    chosen = run.best if per_run == "best" else run.last
    shown = chosen or run.last
    return RunSummary(
        run=_text(shown[_NAME]),
        run_id=_text(shown[_RUN_ID]),
        seed=shown[_SEED],
        checkpoints=run.checkpoints,
        best=_member(run.best) if run.best else None,
        last=_member(run.last),
        contributed=chosen[_POINT] if chosen else None,
    )


def _best(members: list[Member], higher: bool) -> Member | None:
    """The member with the best point value (the first to reach it on a tie)."""
    scored = [m for m in members if m.point is not None]
    if not scored:
        return None
    pick = max if higher else min
    return pick(scored, key=lambda m: m.point or 0.0)


def _rank(value: float | None, higher: bool) -> tuple[bool, float]:
    """Sort key: best value first, groups without a value last."""
    if value is None:
        return (True, 0.0)
    return (False, -value if higher else value)


def _as_key(value: Any) -> Any:
    """A hashable stand-in for a group value (lists and mappings as JSON text; `1` and
    `True` and `1.0` stay apart)."""
    if isinstance(value, dict | list):
        return ("json", json.dumps(value, sort_keys=True, default=str))
    return (type(value).__name__, value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def require_field(catalog: Index, spec: str, all_refs: bool = False) -> None:
    """Refuse a group field that no checkpoint in scope has, as `find` refuses a field
    (a misspelling would put every checkpoint in one empty-keyed group)."""
    from dvcckpt.catalog import known, latest

    source = latest.source(all_refs=all_refs, latest=False)
    known.require(catalog, source, [("--group-by", Field(spec))])
