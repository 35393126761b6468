"""`dvcckpt org log` and `dvcckpt org stages`: performance and stage history of every
published repository.

`log` reads what `dvcckpt log` reads in each repository: every live card
version of a model (or of one checkpoint name) in its repository's history
order, the metrics' point values and interval bounds extracted in DuckDB,
each Δ against the previous checkpoint of the same run in the same
repository. `stages` reads `stage_events` as the stage replay wrote it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from dvcckpt.adapters import duckdbscan
from dvcckpt.catalog.log import metric_path
from dvcckpt.catalog.where import Field
from dvcckpt.errors import StateError
from dvcckpt.publish.org import EVENTS, Scope
from dvcckpt.publish.orgfields import require
from dvcckpt.publish.orgsql import Compiler, card_object

HISTORY = ("repo_id", "commit", "path", "generation", "committed_at", "status", "error", "author",
           "name", "model", "step", "run_id", "run_name")  # fmt: skip
Interval = tuple[float, float]


@dataclass
class HistoryRow:
    """One card version in `org log` (the fields of `log`'s rows, and its repository)."""

    repository: str
    repo_id: str
    commit: str
    date: str
    author: str | None
    name: str
    run: str | None
    run_id: str | None
    step: int | None
    path: str
    values: dict[str, float | None]
    intervals: dict[str, Interval | None]
    deltas: dict[str, float | None] = field(default_factory=dict)
    committed_at: Any = None

    def as_dict(self) -> dict[str, Any]:
        found = dict(self.__dict__)
        found.pop("committed_at")
        return found


def log(
    scope: Scope, target: str, metrics: list[str], limit: int | None = None
) -> list[HistoryRow]:
    """Rows newest first (by commit time across repositories; history order within one)."""
    fields = [Field(spec) for spec in metrics if metric_path(spec)]
    sql = Compiler()
    picked = f"(model = {sql.param(target)} OR name = {sql.param(target)})"
    values = []
    for metric in fields:
        bounds = (Field(f"{metric.path}.ci_low"), Field(f"{metric.path}.ci_high"))
        values += [f"f{sql.value(f)}_n" for f in (metric, *bounds)]
    sql.source = "hot" if sql.slim() else "card"
    extraction = sql.extraction()
    computed = "".join(f", {column}" for column in sql.columns)
    scope.versions(HISTORY, sql.source)
    statement = f"""
        SELECT repo_id, "commit", committed_at, author, name, model, step, run_name, run_id,
               path {"".join(f", {v}" for v in values)}
        FROM (SELECT * {computed} FROM (
            SELECT * {extraction} FROM card_versions
            WHERE status != 'D' AND error IS NULL AND {card_object(sql.source)} AND {picked}))
        ORDER BY repo_id, generation, committed_at NULLS FIRST, "commit", step IS NULL, step,
                 path"""
    found = duckdbscan.rows(scope.db, statement, sql.params)
    if not found:
        raise _unknown_target(scope, target)
    require(scope, [("--metric", f) for f in fields])
    rows = [_row(scope, record, metrics) for record in found]
    _with_deltas(rows, [(r[0], r[5], r[8], r[7]) for r in found])
    rows.reverse()  # newest first: within one commit time, the history order reversed
    rows.sort(key=_moment, reverse=True)
    return rows[:limit] if limit else rows


def _moment(row: HistoryRow) -> dt.datetime:
    return row.committed_at or dt.datetime.min.replace(tzinfo=dt.timezone.utc)


def _row(scope: Scope, record: tuple[Any, ...], metrics: list[str]) -> HistoryRow:
    repo_id, commit, committed, author, name, _, step, run_name, run_id, path = record[:10]
    row = HistoryRow(scope.names.get(repo_id, repo_id[:12]), repo_id, commit, _date(committed),
                     author, name or "?", run_name, run_id, step, path, {}, {},
                     committed_at=committed)  # fmt: skip
    for index, spec in enumerate(metrics):
        point, low, high = record[10 + 3 * index : 13 + 3 * index]
        row.values[spec] = point
        row.intervals[spec] = None if low is None or high is None else (low, high)
    return row


def _with_deltas(rows: list[HistoryRow], runs: list[tuple[Any, ...]]) -> None:
    """Each row's Δ against the previous row (in history order) of the same run."""
    last: dict[tuple[Any, ...], dict[str, float | None]] = {}
    for row, run in zip(rows, runs, strict=True):
        previous = last.get(run, {})
        last[run] = row.values
        row.deltas = {
            k: None if v is None or previous.get(k) is None else v - previous[k]  # type: ignore[operator]
            for k, v in row.values.items()
        }


def _date(moment: Any) -> str:
    if isinstance(moment, dt.datetime):
        return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    return ""


def _unknown_target(scope: Scope, target: str) -> StateError:
    statement = "SELECT DISTINCT model FROM card_versions WHERE model IS NOT NULL ORDER BY 1"
    models = [m for (m,) in duckdbscan.rows(scope.db, statement)]
    return StateError(
        f"no model or checkpoint named {target!r} in the published repositories",
        hint=f"known models: {', '.join(models[:20])}" if models else "nothing is published yet",
    )


# -- stages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One row of `stage_events`, with the repository's name."""

    repository: str
    repo_id: str
    commit: str
    generation: int
    seq: int
    model: str | None
    stage: str | None
    name: str | None
    action: str | None
    by: str | None
    at: str | None
    reason: str | None
    counts: bool
    verified: str | None
    problem: str | None
    holder: str | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def stage_history(scope: Scope, model: str | None = None) -> list[Event]:
    """Every stage event of the repositories in scope (of `model` or of a checkpoint of that
    name), each repository's in replay order."""
    scope.register("stage_events", EVENTS)
    sql = Compiler()
    picked = (
        "true" if model is None else f"(model = {sql.param(model)} OR name = {sql.param(model)})"
    )
    statement = f"""SELECT {", ".join(f'"{c}"' for c in EVENTS)} FROM stage_events
        WHERE {picked} ORDER BY repo_id, generation, seq, stage"""
    events = []
    for row in duckdbscan.rows(scope.db, statement, sql.params):
        values: dict[str, Any] = dict(zip(EVENTS, row, strict=True))
        values["counts"] = bool(values["counts"])
        events.append(Event(scope.names.get(row[0], row[0][:12]), **values))
    return events


def holders(history: list[Event]) -> list[Event]:
    """The event that leaves each (repository, model, stage) with its current holder (the last
    counted one), for the stages held now, by repository, model and stage."""
    last: dict[tuple[str, str | None, str], Event] = {}
    for event in history:
        if event.counts and event.stage is not None:
            last[(event.repo_id, event.model, event.stage)] = event
    held = [e for e in last.values() if e.holder is not None]
    return sorted(held, key=lambda e: (e.repository, e.model or "", e.stage or ""))
