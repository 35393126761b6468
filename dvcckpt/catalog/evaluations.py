"""`log --evaluations`: one row per evaluation recorded in the matching cards.

A card's `evaluations` only grow (the hook refuses anything else), so each entry is
shown once, dated by its `at` and attributed to the commit that first added it.
`--metric SPLIT.METRIC` reads METRIC from the evaluations of SPLIT; only those
splits are listed then. Rows come in the order evaluations were recorded (the
commit that added each, then its place in the list), oldest first; the `at` an
entry claims is shown but never orders (a forged date could bury later ones).
`catalog.log.history` turns them around.
"""

from __future__ import annotations

import json
from typing import Any

from dvcckpt.catalog import known
from dvcckpt.catalog.index import Index
from dvcckpt.catalog.rows import Row, Run, date_of, point_and_interval
from dvcckpt.catalog.where import Field
from dvcckpt.core.fields import field as card_field
from dvcckpt.errors import UsageError

# Live card versions in scope that record an evaluation, in history order.
VERSIONS = """
SELECT c.sha, c.author, c.authored, p.path, k.name, k.model, k.step,
       k.hot -> '$.run' AS run, b.card -> '$.evaluations' AS evaluations
FROM {versions} JOIN commits c ON c.id = v.commit_id JOIN paths p ON p.id = v.path_id
JOIN cards k ON k.id = v.card_id JOIN bodies b ON b.id = k.id
WHERE {in_scope} AND v.status != 'D' AND k.error IS NULL
  AND json_type(k.hot, '$.evaluations') IS NOT NULL AND ({restrict})
ORDER BY v.generation, v.committed, c.sha, k.step IS NULL, k.step, p.path
"""


def split_metric(spec: str) -> tuple[str, str]:
    """`test.macro_f1` (or `evaluations.test.macro_f1`) -> ("test", "macro_f1")."""
    text = spec.removeprefix("evaluations.").removeprefix("metrics.")
    split, _, metric = text.partition(".")
    if not split or not metric:
        raise UsageError(
            f"--metric {spec!r}: name the split, as SPLIT.METRIC",
            hint="for example --evaluations --metric test.macro_f1",
        )
    return split, metric


def metric_field(spec: str) -> Field:
    """The field of the latest evaluation of the split (whose existence is checked)."""
    split, metric = split_metric(spec)
    return Field(f"evaluations.{split}.{metric}")


def rows(
    catalog: Index,
    source: tuple[str, str],
    restrict: known.Restriction | None,
    specs: list[str],
) -> tuple[list[Row], list[Run]]:
    """Every evaluation once, oldest first, with the run of each (for its Δ)."""
    wanted = [split_metric(spec) for spec in specs]
    splits = {split for split, _ in wanted}
    condition, params = restrict or ("1", [])
    statement = VERSIONS.format(versions=source[0], in_scope=source[1], restrict=condition)
    seen: set[tuple[str, str]] = set()
    found: list[tuple[tuple[int, int], Row, Run]] = []
    for order, record in enumerate(catalog.sql(statement, params)):
        entries = json.loads(record["evaluations"] or "[]")
        for position, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, dict) or not isinstance(entry.get("split"), str):
                continue
            key = (record["path"], json.dumps(entry, sort_keys=True))
            if key in seen or (splits and entry["split"] not in splits):
                continue
            seen.add(key)
            row, run = _row(record, entry, specs, wanted)
            # Record order (the commit that added it, then its place in the list): the
            # list only grows, while the `at` an entry claims is shown, never trusted.
            found.append(((order, position), row, run))
    found.sort(key=lambda item: item[0])
    return [row for _, row, _ in found], [run for _, _, run in found]


def _row(
    record: Any, entry: dict[str, Any], specs: list[str], wanted: list[tuple[str, str]]
) -> tuple[Row, Run]:
    run = json.loads(record["run"]) if record["run"] else {}
    run = run if isinstance(run, dict) else {}
    step = entry.get("step")
    row = Row(
        commit=record["sha"],
        date=date_of(record["authored"]),
        author=record["author"],
        name=record["name"] or "?",
        run=_text(run.get("name")),
        run_id=_text(run.get("id")),
        step=step if isinstance(step, int) and not isinstance(step, bool) else record["step"],
        path=record["path"],
        values={},
        split=entry["split"],
        evaluated_at=_text(entry.get("at")),
        by=_by(entry.get("by")),
    )
    metrics = entry.get("metrics") if isinstance(entry.get("metrics"), dict) else {}
    for spec, (split, metric) in zip(specs, wanted, strict=True):
        value = card_field(metrics, metric) if split == row.split else None
        row.values[spec], row.intervals[spec] = point_and_interval(value)
    return row, (record["model"], row.run_id, row.run, row.split)


def _by(value: Any) -> str | None:
    """Who evaluated: a name, or a person record's name or email."""
    if isinstance(value, dict):
        value = value.get("name") or value.get("email")
    return _text(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
