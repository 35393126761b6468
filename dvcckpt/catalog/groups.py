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

from dvcckpt.catalog import numbers
from dvcckpt.catalog.index import Index
from dvcckpt.catalog.known import column
from dvcckpt.catalog.where import Field
from dvcckpt.core.fields import card_path, number

PER_RUN = ("best", "last")


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


def summarise(
    catalog: Index,
    group_by: str,
    metric: str,
    *,
    higher_is_better: bool = True,
    per_run: str = "best",
    **options: Any,
) -> Grouping:
    """Groups of what `find` with `options` matches, best group first.

    A group-by reads every match, so each is a narrow row already in history order:
    its run from the card's run columns, its metric's number from the value index, and
    its group field as JSON text (decoded once per distinct value). No card document is
    parsed per checkpoint; only the few checkpoints a result shows are read for the
    value as recorded (an estimate with its CI) and the seed."""
    from dvcckpt.catalog import find

    _check_per_run(per_run)
    key_sql, key_params = _key_sql(group_by)
    point_sql, point_params = _point_sql(metric)
    select = (f"k.id, {key_sql}, {point_sql}, k.run_name, k.run_id,"
              " coalesce(k.name, p.path), c.sha, k.step, p.path")  # fmt: skip
    joins = "JOIN commits c ON c.id = v.commit_id JOIN paths p ON p.id = v.path_id"
    order = "v.generation, v.committed, c.sha, k.step IS NULL, k.step, p.path"
    statement, params = find.plan(catalog, **options).statement(select, joins, order)
    require_field(catalog, group_by, all_refs=bool(options.get("all_refs")))
    found = catalog.sql(statement, key_params + point_params + params)
    # Tens of thousands of small objects, none of them garbage: the collector's passes
    # over them would cost a tenth of the aggregation and free nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        groups = _grouping(found, group_by, higher_is_better)
    finally:
        if collecting:
            gc.enable()
    recorded = _recorded(catalog, metric, _shown_cards(groups))
    summaries = [_group(group, higher_is_better, per_run, recorded) for group in groups]
    summaries.sort(key=lambda g: (*_rank(g.mean, higher_is_better), json.dumps(g.key, default=str)))
    return Grouping(card_path(group_by), card_path(metric), higher_is_better, per_run, summaries)


def _key_sql(group_by: str) -> tuple[str, list[Any]]:
    """The group field as JSON text (NULL when absent); `run` groups by the run columns."""
    if group_by.strip() == "run":
        return "NULL", []
    return f"{column(Field(group_by))} -> ?", [Field(group_by).json_path()]


def _point_sql(metric: str) -> tuple[str, list[Any]]:
    """The metric's number: from the value index (an estimate's point value), or for a
    field the index does not hold, its JSON text, made a number in Python."""
    resolved = card_path(metric)
    if numbers.indexes(resolved):
        return numbers.value_sql(resolved)
    return f"{column(Field(metric))} -> ?", [Field(metric).json_path()]


def _recorded(catalog: Index, metric: str, cards: set[int]) -> _Recorded:
    """{card id: (the metric as recorded, the seed)} of the cards a result shows."""
    value, seed = Field(metric), Field("seeds.seed")
    body = "JOIN bodies b ON b.id = k.id" if column(value) == "b.card" else ""
    statement = (
        f"SELECT k.id, json_array(json_extract({column(value)}, ?),"
        f" json_extract({column(seed)}, ?)) FROM cards k {body}"
        " WHERE k.id IN (SELECT value FROM json_each(?))"
    )
    params = [value.json_path(), seed.json_path(), json.dumps(sorted(cards))]
    return {card: tuple(json.loads(values)) for card, values in catalog.sql(statement, params)}


def _check_per_run(per_run: str) -> None:
    if per_run not in PER_RUN:
        raise ValueError(f"per_run must be one of {PER_RUN}, not {per_run!r}")


# One found checkpoint as aggregation keeps it (a plain tuple, the cheapest object
# to make once per checkpoint), indexed by the names below: its card id, its point
# value (float or None), its name (else its path), commit, step, run name and run id.
_Checkpoint = tuple[Any, ...]
_CARD, _POINT, _LABEL, _SHA, _STEP, _NAME, _RUN_ID = range(7)
# {card id: (the metric as recorded, the seed)} of the checkpoints a result shows.
_Recorded = dict[int, tuple[Any, Any]]


def _member(row: _Checkpoint, recorded: _Recorded) -> Member:
    value = recorded[row[_CARD]][0]
    return Member(row[_LABEL], row[_SHA], row[_STEP], value, row[_POINT])


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


def _grouping(rows: Iterable[Sequence[Any]], group_by: str, higher: bool) -> list[_GroupSoFar]:
    """One pass over checkpoints in history order (each its card id, group field as
    JSON text, metric number, run name and id, name else path, commit, step and path):
    a run's best is the first to reach the best value, its last the highest step (a
    final model after all; on a tie the later one), a group's last the last in history."""
    by_key: dict[Any, _GroupSoFar] = {}
    keys: dict[str | None, tuple[Any, Any]] = {}  # JSON text: (hashable key, value shown)
    run_identity = group_by.strip() == "run"
    isfinite = math.isfinite
    for card, text, point, name, run_id, label, sha, step, path in rows:
        if type(point) is str:  # a field the value index does not hold: its JSON text
            point = number(json.loads(point))
        if point is not None and not isfinite(point):
            point = None
        row = (card, point, label, sha, step, name, run_id)
        if run_identity:  # a run is its (name, id): two runs sharing a name are two groups
            grouped: Any = ("run", name, run_id)
            shown = name if name is not None else run_id
        else:
            if text not in keys:
                value = None if text is None else json.loads(text)
                keys[text] = (_as_key(value), value)
            grouped, shown = keys[text]
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
    return list(by_key.values())


def _shown_cards(groups: list[_GroupSoFar]) -> set[int]:
    """The cards of every checkpoint a result shows: each run's best and last, each
    group's last (a group's best is one of its runs' bests)."""
    cards = set()
    for group in groups:
        assert group.last is not None  # a group exists because a checkpoint is in it
        cards.add(group.last[_CARD])
        for run in group.runs.values():
            cards.update(row[_CARD] for row in (run.best, run.last) if row is not None)
    return cards


def _group(group: _GroupSoFar, higher: bool, per_run: str, recorded: _Recorded) -> Group:
    runs = [_run(run, per_run, recorded) for run in group.runs.values()]
    values = [run.contributed for run in runs if run.contributed is not None]
    bests = [run.best for run in runs if run.best is not None]
    assert group.last is not None
    return Group(
        key=group.key,
        checkpoints=group.checkpoints,
        runs=runs,
        best=_best(bests, higher),
        last=_member(group.last, recorded),
        mean=statistics.fmean(values) if values else None,
        std=statistics.stdev(values) if len(values) > 1 else None,
    )


def _run(run: _RunSoFar, per_run: str, recorded: _Recorded) -> RunSummary:
    assert run.last is not None
    chosen = run.best if per_run == "best" else run.last
    shown = chosen or run.last
    return RunSummary(
        run=shown[_NAME],
        run_id=shown[_RUN_ID],
        seed=recorded[shown[_CARD]][1],
        checkpoints=run.checkpoints,
        best=_member(run.best, recorded) if run.best else None,
        last=_member(run.last, recorded),
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


def require_field(catalog: Index, spec: str, all_refs: bool = False) -> None:
    """Refuse a group field that no checkpoint in scope has, as `find` refuses a field
    (a misspelling would put every checkpoint in one empty-keyed group)."""
    from dvcckpt.catalog import known, latest

    source = latest.source(all_refs=all_refs, latest=False)
    known.require(catalog, source, [("--group-by", Field(spec))])
