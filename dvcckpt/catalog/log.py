"""`dvcckpt log`: performance history across commits, like `git log` for metrics.

Rows are read with the few values they show extracted inside SQLite (run, step and
the chosen metrics from the slim `hot` copy), never by decoding whole cards, and
HEAD's history is the catalog's maintained `head_commits` scope: the cost follows
the rows shown, not the length of history. `evaluations=True` lists evaluations
instead (`catalog.evaluations`).
"""

from __future__ import annotations

from typing import Any

from dvcckpt.catalog import known, latest, newest
from dvcckpt.catalog.find import field_sql
from dvcckpt.catalog.index import Index
from dvcckpt.catalog.rows import Row, Run
from dvcckpt.catalog.where import Field
from dvcckpt.core.fields import card_path, number
from dvcckpt.core.fields import field as card_field
from dvcckpt.errors import StateError, UsageError

__all__ = ["Row", "history", "metric_path", "metric_value"]


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
    evaluations: bool = False,
    check_metrics: bool = True,
) -> list[Row]:
    """Rows newest first: one per commit that added or changed a matching card, or
    (`evaluations`) one per evaluation of a matching card, newest `at` first.

    The order is total (commit generation, then step with a stepless final model last,
    then card path), so checkpoints committed together list the same way every time;
    each Δ compares with the previous checkpoint of the same run in that order.
    A metric no card of the target in scope has is a usage error naming the closest
    ones (`check_metrics=False`: an empty column instead).
    """
    specs = list(metrics or [])
    restrict = _target(catalog, target)
    source = _source(catalog, rev, all_refs)
    if evaluations:
        from dvcckpt.catalog import evaluations as evaluated

        fields = [evaluated.metric_field(spec) for spec in specs]
        if check_metrics:
            known.require(catalog, source, [("--metric", f) for f in fields], restrict)
        rows, runs = evaluated.rows(catalog, source, restrict, specs)
    else:
        fields = [Field(spec) for spec in specs if metric_path(spec)]
        if check_metrics:
            known.require(catalog, source, [("--metric", f) for f in fields], restrict)
        if limit:  # the newest rows only, their Δ computed inside SQLite
            return _newest_rows(catalog, source, restrict, specs, fields, limit)
        rows, runs = _version_rows(catalog, source, restrict, specs, fields)
    with_deltas(rows, runs)
    rows.reverse()
    return rows[:limit] if limit else rows


def _target(catalog: Index, target: str | None) -> known.Restriction | None:
    """The cards a target names: a model's, else one checkpoint's (by name)."""
    if target is None:
        return None
    for column in ("model", "name"):
        statement = f"SELECT 1 FROM cards WHERE {column} = ? AND error IS NULL LIMIT 1"
        if catalog.sql(statement, [target]):
            return f"k.{column} = ?", [target]
    models = sorted({row[0] for row in catalog.sql("SELECT DISTINCT model FROM cards") if row[0]})
    raise StateError(
        f"no model or checkpoint named {target!r} in the catalog",
        hint=f"known models: {', '.join(models)}" if models else "no cards committed yet",
    )


def _source(catalog: Index, rev: str | None, all_refs: bool) -> tuple[str, str]:
    """Every card version in scope: all refs, HEAD (kept ready), or one revision."""
    if all_refs or rev is None:
        return latest.source(all_refs=all_refs, latest=False)
    return f"versions v {catalog.scope(catalog.reachable([rev]))}", "1"


# One row per live card version in scope, in history order: generation, commit time
# and sha (the catalog's commit order), then step (none last), then path. Values are
# extracted in SQLite (point value and interval bounds of each metric), so no card
# is decoded in Python.
COLUMNS = """c.sha, c.author, {date} AS date, p.path, k.name, k.model, k.step,
       k.run_name, k.run_id, v.generation, v.committed {values}"""
VERSIONS = """
SELECT {columns}
FROM {versions} JOIN commits c ON c.id = v.commit_id JOIN paths p ON p.id = v.path_id
JOIN cards k ON k.id = v.card_id {bodies}
WHERE {in_scope} AND v.status != 'D' AND k.error IS NULL AND ({restrict})
"""
# History order (total: one version per path and commit), on VERSIONS' columns.
_ORDER = ("generation", "committed", "sha", "step IS NULL", "step", "path")
# The author date as `log` prints it (UTC); `@SECONDS` beyond what a date can show.
DATE = "coalesce(strftime('%Y-%m-%d %H:%M', c.authored, 'unixepoch'), '@' || c.authored)"


# The newest `limit` rows of VERSIONS, each with its metrics' values in the previous
# row of the same run (Δ): the window reads the narrow rows of the whole history, and
# only the rows shown are handed to Python.
NEWEST = """
SELECT * FROM (SELECT q.*, {previous} FROM ({versions}) q
               WINDOW run AS (PARTITION BY model, run_id, run_name ORDER BY {order}))
ORDER BY {newest} LIMIT ?
"""


def _newest_rows(
    catalog: Index,
    source: tuple[str, str],
    restrict: known.Restriction | None,
    specs: list[str],
    fields: list[Field],
    limit: int,
) -> list[Row]:
    join = newest.scope_join(source)
    if restrict is not None and restrict[0] == "k.model = ?" and join is not None:
        values, params = _values_sql(fields)
        select = COLUMNS.format(date=DATE, values=values)
        if "b.card" not in select:  # the card is never read: one index walk
            found = newest.rows(catalog, join, restrict[1][0], select, params, limit)
            return [_with_deltas(record, specs) for record in found]
    statement, params = _versions_statement(source, restrict, fields)
    previous = ", ".join(f"LAG(m_{i}) OVER run AS p_{i}" for i in range(len(fields)))
    statement = NEWEST.format(
        previous=previous or "NULL AS p_",
        versions=statement,
        order=", ".join(_ORDER),
        newest=", ".join(f"{column} DESC" for column in _ORDER),
    )
    return [_with_deltas(record, specs) for record in catalog.sql(statement, [*params, limit])]


def _with_deltas(record: Any, specs: list[str]) -> Row:
    """A row whose record has each metric's value in the run's previous row (`p_I`)."""
    row = _row(record, specs)
    row.deltas = {
        spec: _delta(row.values[spec], number(record[f"p_{i}"])) for i, spec in enumerate(specs)
    }
    return row


def _values_sql(fields: list[Field]) -> tuple[str, list[Any]]:
    """Each metric's point value and interval bounds, as `m_I`, `lo_I`, `hi_I`."""
    values, params = "", []
    for index, metric in enumerate(fields):
        point, point_params = field_sql(metric)
        low, high = Field(f"{metric.path}.ci_low"), Field(f"{metric.path}.ci_high")
        values += (
            f", {point} AS m_{index}, json_extract({known.column(low)}, ?) AS lo_{index}"
            f", json_extract({known.column(high)}, ?) AS hi_{index}"
        )
        params += [*point_params, low.json_path(), high.json_path()]
    return values, params


def _versions_statement(
    source: tuple[str, str], restrict: known.Restriction | None, fields: list[Field]
) -> tuple[str, list[Any]]:
    values, params = _values_sql(fields)
    condition, restrict_params = restrict or ("1", [])
    return VERSIONS.format(
        columns=COLUMNS.format(date=DATE, values=values),
        versions=source[0],
        in_scope=source[1],
        bodies="JOIN bodies b ON b.id = k.id" if "b.card" in values else "",
        restrict=condition,
    ), params + restrict_params


def _version_rows(
    catalog: Index,
    source: tuple[str, str],
    restrict: known.Restriction | None,
    specs: list[str],
    fields: list[Field],
) -> tuple[list[Row], list[Run]]:
    """The rows, and the run of each (for its Δ)."""
    statement, params = _versions_statement(source, restrict, fields)
    rows: list[Row] = []
    runs: list[Run] = []
    order = "v.generation, v.committed, c.sha, k.step IS NULL, k.step, p.path"  # `_ORDER`
    for record in catalog.sql(f"{statement} ORDER BY {order}", params):
        row = _row(record, specs)
        rows.append(row)
        runs.append((record["model"], row.run_id, row.run, None))
    return rows, runs


def _row(record: Any, specs: list[str]) -> Row:
    row = Row(
        commit=record["sha"],
        date=record["date"],
        author=record["author"],
        name=record["name"] or "?",
        run=record["run_name"],
        run_id=record["run_id"],
        step=record["step"],
        path=record["path"],
        values={},
    )
    for index, spec in enumerate(specs):
        row.values[spec] = number(record[f"m_{index}"])
        bounds = number(record[f"lo_{index}"]), number(record[f"hi_{index}"])
        row.intervals[spec] = None if None in bounds else bounds  # type: ignore[assignment]
    return row


def with_deltas(rows: list[Row], runs: list[Run]) -> None:
    """Each row's Δ against the previous row (in `rows`' order) of the same run."""
    last: dict[Run, dict[str, float | None]] = {}
    for row, run in zip(rows, runs, strict=True):
        previous = last.get(run, {})
        last[run] = row.values
        row.deltas = {k: _delta(v, previous.get(k)) for k, v in row.values.items()}


def _delta(value: float | None, previous: float | None) -> float | None:
    return None if value is None or previous is None else value - previous


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
