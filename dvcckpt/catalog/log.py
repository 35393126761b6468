"""`dvcckpt log`: performance history across commits, like `git log` for metrics."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from dvcckpt.catalog.index import Index
from dvcckpt.catalog.rows import Version
from dvcckpt.core.fields import card_path, number
from dvcckpt.core.fields import field as card_field
from dvcckpt.errors import StateError, UsageError


@dataclass
class Row:
    commit: str
    date: str
    author: str
    name: str
    run: str | None
    step: int | None
    path: str
    values: dict[str, float | None]
    deltas: dict[str, float | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def metric_path(spec: str) -> str:
    """`dev.macro_f1` -> `metrics.dev.macro_f1`: the one field language of every command."""
    path = card_path(spec)
    if "." not in path:
        raise UsageError(
            f"--metric {spec!r}: name the split, as SPLIT.METRIC",
            hint="for example --metric dev.macro_f1",
        )
    return path


def metric_value(card: dict[str, Any], path: str) -> float | None:
    return number(card_field(card, path))


def history(
    catalog: Index,
    target: str | None = None,
    *,
    metrics: list[str] | None = None,
    rev: str | None = None,
    all_refs: bool = False,
    limit: int | None = None,
) -> list[Row]:
    """Rows newest first: one per commit that added or changed a matching card.

    The order is total (commit generation, then step with a stepless final model last,
    then card path), so checkpoints committed together list the same way every time;
    each Δ compares with the previous checkpoint of the same run in that order.
    """
    commits = None if all_refs else catalog.reachable([rev] if rev else ["HEAD"])
    versions = [v for v in _matching(catalog, target) if commits is None or v.sha in commits]
    paths = [metric_path(m) for m in metrics or []]
    rows: list[Row] = []
    last_of_run: dict[tuple[str | None, ...], dict[str, float | None]] = {}
    for version in sorted(versions, key=_position):
        card = version.card or {}
        values = {
            spec: metric_value(card, path) for spec, path in zip(metrics or [], paths, strict=True)
        }
        run = _section(card, "run")
        identity = (version.model, _text(run.get("id")), _text(run.get("name")))
        previous = last_of_run.get(identity, {})
        last_of_run[identity] = values
        deltas = {k: _delta(v, previous.get(k)) for k, v in values.items()}
        rows.append(
            Row(
                commit=version.sha,
                date=_date(version.authored),
                author=version.author,
                name=version.name or "?",
                run=_text(run.get("name")),
                step=_step(_section(card, "checkpoint").get("step")),
                path=version.path,
                values=values,
                deltas=deltas,
            )
        )
    rows.reverse()
    return rows[:limit] if limit else rows


def _matching(catalog: Index, target: str | None) -> list[Version]:
    live = [v for v in catalog.versions(model=target) if v.status != "D" and v.card is not None]
    if target is None or live:
        return live
    by_name = [v for v in catalog.versions(name=target) if v.status != "D" and v.card is not None]
    if by_name:
        return by_name
    models = sorted({row[0] for row in catalog.sql("SELECT DISTINCT model FROM cards") if row[0]})
    raise StateError(
        f"no model or checkpoint named {target!r} in the catalog",
        hint=f"known models: {', '.join(models)}" if models else "no cards committed yet",
    )


def _position(version: Version) -> tuple[int, int, str, bool, int, str]:
    """Where a version sits in history: the catalog's commit order (generation, commit
    time, sha: `versions()` lists that way), then step (none last), then path."""
    step = _step(_section(version.card or {}, "checkpoint").get("step"))
    return (
        version.generation,
        version.committed,
        version.sha,
        step is None,
        step or 0,
        version.path,
    )


def _delta(value: float | None, previous: float | None) -> float | None:
    return None if value is None or previous is None else value - previous


def _date(timestamp: int) -> str:
    try:
        return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, ValueError, OSError):  # beyond year 9999 (a forged or absurd date)
        return f"@{timestamp}"


def _section(card: dict[str, Any], name: str) -> dict[str, Any]:
    value = card.get(name)
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _step(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
