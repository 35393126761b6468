"""`find --group-by`: checkpoints aggregated per run, or per any field (`run.group`).

Pure aggregation over the versions `find` returns, so grouping filters, scopes and
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

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dvcckpt.catalog.index import Index
from dvcckpt.catalog.rows import Version
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
    """The extra columns to ask `find` for; `aggregate` reads `Version.values` in this order."""
    return [card_path(group_by), card_path(metric), *RUN_FIELDS]


def aggregate(
    versions: Sequence[Version],
    group_by: str,
    metric: str,
    *,
    higher_is_better: bool = True,
    per_run: str = "best",
) -> Grouping:
    """Groups of `versions` (found with `columns(group_by, metric)`), best group first."""
    if per_run not in PER_RUN:
        raise ValueError(f"per_run must be one of {PER_RUN}, not {per_run!r}")
    by_key: dict[Any, tuple[Any, list[_Entry]]] = {}
    run_identity = group_by.strip() == "run"
    entries = (_entry(version, run_identity) for version in versions)
    for entry in sorted(entries, key=lambda e: e.position):
        # A run is its (name, id): two runs sharing a name are two groups.
        grouped = ("run", *map(_text, entry.version.values[2:4])) if run_identity else None
        by_key.setdefault(grouped or _as_key(entry.key), (entry.key, []))[1].append(entry)
    groups = [_group(key, members, higher_is_better, per_run) for key, members in by_key.values()]
    groups.sort(key=lambda g: (*_rank(g.mean, higher_is_better), json.dumps(g.key, default=str)))
    return Grouping(card_path(group_by), card_path(metric), higher_is_better, per_run, groups)


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs 3x, per version
class _Entry:
    """A found version with its columns decoded once (aggregation reads them often)."""

    position: tuple[int, int, str, bool, int, str]
    version: Version
    key: Any
    value: Any
    point: float | None


def _entry(version: Version, run_identity: bool = False) -> _Entry:
    key, value = version.values[0], version.values[1]  # decoded: an estimate is a dict
    if run_identity:  # `--group-by run`: shown by the run's name, else its id
        key = version.values[2] if version.values[2] is not None else version.values[3]
    point = float(value) if type(value) in (float, int) else number(value)
    if point is not None and not math.isfinite(point):
        point = None
    step = version.step
    position = (version.generation, version.committed, version.sha, step is None, step or 0,
                version.path)  # fmt: skip
    return _Entry(position, version, key, value, point)


def _group(key: Any, entries: list[_Entry], higher: bool, per_run: str) -> Group:
    by_run: dict[tuple[Any, ...], list[_Entry]] = {}
    for entry in entries:
        name, run_id = map(_text, entry.version.values[2:4])
        identity = (name, run_id) if name or run_id else (None, None, entry.version.path)
        by_run.setdefault(identity, []).append(entry)
    runs = [_run(members, higher, per_run) for members in by_run.values()]
    values = [run.contributed for run in runs if run.contributed is not None]
    bests = [run.best for run in runs if run.best is not None]
    return Group(
        key=key,
        checkpoints=len(entries),
        runs=runs,
        best=_best(bests, higher),
        last=_member(entries[-1]),
        mean=statistics.fmean(values) if values else None,
        std=statistics.stdev(values) if len(values) > 1 else None,
    )


def _run(entries: list[_Entry], higher: bool, per_run: str) -> RunSummary:
    scored = [e for e in entries if e.point is not None]
    pick = max if higher else min  # the first to reach the best value on a tie
    best = pick(scored, key=lambda e: e.point or 0.0) if scored else None
    # A run's last checkpoint is its highest step (a final model after all), not the
    # one whose card changed last: appending an evaluation does not make it "last".
    last = max(entries, key=lambda e: (e.position[3], e.position[4], e.position))
    chosen = best if per_run == "best" else last
    name, run_id, seed = (chosen or last).version.values[2:5]
    return RunSummary(
        run=_text(name),
        run_id=_text(run_id),
        seed=seed,
        checkpoints=len(entries),
        best=_member(best) if best else None,
        last=_member(last),
        contributed=chosen.point if chosen else None,
    )


def _member(entry: _Entry) -> Member:
    version = entry.version
    return Member(version.name or version.path, version.sha, version.step, entry.value, entry.point)


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
