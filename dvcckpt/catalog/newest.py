"""`log MODEL`'s table: the newest rows of a model, read through an index.

Each version carries its card's model and run (`rows.SCHEMA`), so the newest rows of
a model come from `versions_model` newest first, and the query stops after the rows
shown: its cost follows the rows shown, not the length of history. A row's Δ
compares with the previous row of its run in history order; within the rows shown,
a run's rows are the newest of that run (any later row of it is newer still), so
only the oldest shown row of each run needs one more row: the run's previous one,
found through `versions_run`.

The answer is the one the window over every version gives (`log._newest_rows`, used
for a checkpoint name and for every card): same rows, same order, same Δ.
"""

from __future__ import annotations

from typing import Any

from dvcckpt.catalog.index import Index

# History order, newest first (`log._ORDER` turned around), on `v`, `c`, `k` and `p`.
NEWEST_FIRST = (
    "v.generation DESC, v.committed DESC, c.sha DESC, k.step IS NULL DESC, k.step DESC, p.path DESC"
)
# The same order as one row value, for "older than this row".
_KEY = "(v.generation, v.committed, c.sha, k.step IS NULL, coalesce(k.step, 0), p.path)"


def scope_join(source: tuple[str, str]) -> str | None:
    """The join restricting `versions v` to `log`'s scope (HEAD, all refs, a revision
    range), or None for another kind of source."""
    versions, in_scope = source
    if in_scope != "1" or not versions.startswith("versions v"):
        return None
    return versions.removeprefix("versions v")


def rows(
    catalog: Index, join: str, model: str, select: str, params: list[Any], limit: int
) -> list[Any]:
    """The newest `limit` live rows of `model` in scope, newest first, each with `p_I`: the
    value `m_I` had in the previous row of its run (NULL for a run's first row).

    `select` names the columns (over `v`, `c`, `p`, `k`; the metrics as `m_0`, `m_1`...)
    with its `params`; it must include `k.run_name`, `k.run_id` (as `run_name`, `run_id`)
    and the order columns `generation`, `committed`, `sha`, `step`, `path`.
    """
    statement = _statement(select, join, "v.model = ?", "versions_model")
    found = catalog.sql(f"{statement} LIMIT ?", [*params, model, limit])
    oldest: dict[tuple[Any, Any], Any] = {}
    for record in found:  # newest first: the last row seen of a run is its oldest shown
        oldest[record["run_id"], record["run_name"]] = record
    previous_of: dict[tuple[Any, Any], Any] = {}
    older = (
        f"v.model = ? AND v.run_id IS ? AND v.run_name IS ? AND v.generation <= ?"
        f" AND {_KEY} < (?, ?, ?, ?, ?, ?)"
    )
    before = _statement(select, join, older, "versions_run")
    for run, record in oldest.items():
        step = record["step"]
        key = [record["generation"], record["committed"], record["sha"], step is None]
        key += [0 if step is None else step, record["path"]]
        earlier = catalog.sql(
            f"{before} LIMIT 1", [*params, model, *run, record["generation"], *key]
        )
        previous_of[run] = earlier[0] if earlier else None
    return _with_previous(found, previous_of)


def _statement(select: str, join: str, where: str, index: str) -> str:
    # `v` first, walked through `index` newest first; the scope and the rest are looked
    # up per row (SQLite would otherwise drive the query from the scope's commits).
    return f"""SELECT {select} FROM versions v INDEXED BY {index} CROSS JOIN commits c
        ON c.id = v.commit_id CROSS JOIN paths p ON p.id = v.path_id
        CROSS JOIN cards k ON k.id = v.card_id {join}
        WHERE {where} AND v.status != 'D' AND k.error IS NULL ORDER BY {NEWEST_FIRST}"""


def _with_previous(found: list[Any], previous_of: dict[tuple[Any, Any], Any]) -> list[Any]:
    """The rows as dicts, each with the metrics of its run's previous row as `p_I`."""
    out: list[dict[str, Any]] = []
    last = dict(previous_of)  # oldest first: a run's previous row is the last one seen
    for record in reversed(found):
        run = (record["run_id"], record["run_name"])
        previous, last[run] = last[run], record
        row = dict(zip(record.keys(), record, strict=True))
        for key in record.keys():  # noqa: SIM118 (sqlite3.Row)
            if key.startswith("m_"):
                row[f"p_{key[2:]}"] = None if previous is None else previous[key]
        out.append(row)
    out.reverse()
    return out
