"""Query results for the terminal: `find` (and `--group-by`), `log`, `diff`.

Rendering only: rows in, text (aligned, CSV or Markdown) or JSON text out. Metrics
with an interval read `0.86 [0.84, 0.88]` everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dvcckpt.core.fields import is_estimate
from dvcckpt.present.text import estimate_text, number, scalar, table


def log_rows(rows: list[Any], metrics: list[str], fmt: str | None) -> str:
    """`log`: one row per card version (commit, checkpoint, run, metrics and Δ per run)."""
    if fmt == "json":
        return _json([r.as_dict() for r in rows])
    if not rows:
        return "no card versions in this history"
    header = ["commit", "date", "author", "checkpoint", "run", "step"]
    for metric in metrics:
        header += [metric, "Δ"]
    body = []
    for row in rows:
        cells = [row.commit[:8], row.date, row.author, row.name, row.run or "", number(row.step)]
        for metric in metrics:
            cells += [_with_interval(row, metric), number(row.deltas.get(metric), signed=True)]
        body.append(cells)
    return table(header, body, fmt)


def evaluation_rows(rows: list[Any], metrics: list[str], fmt: str | None) -> str:
    """`log --evaluations`: one row per evaluation, newest first."""
    if fmt == "json":
        return _json([r.as_dict() for r in rows])
    if not rows:
        return "no evaluations in this history"
    header = ["evaluated", "split", "by", "checkpoint", "step", "commit", *metrics]
    body = [
        [
            row.evaluated_at or "?",
            row.split or "?",
            getattr(row, "by", None) or row.author,
            row.name,
            number(row.step),
            row.commit[:8],
            *(_with_interval(row, metric) for metric in metrics),
        ]
        for row in rows
    ]
    return table(header, body, fmt)


def _with_interval(row: Any, metric: str) -> str:
    """A log value, `0.86 [0.84, 0.88]` when the card recorded an interval."""
    value = row.values.get(metric)
    interval = (getattr(row, "intervals", None) or {}).get(metric)
    if value is None or not interval:
        return number(value)
    return estimate_text({"value": value, "ci": list(interval)})


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def value_cell(value: Any) -> str:
    """A table cell for any card value: numbers short, an estimate with its interval."""
    if value is None:
        return ""
    if isinstance(value, Mapping) and is_estimate(value):
        return estimate_text(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return number(value)
    return scalar(value)


def find_rows(versions: list[Any], columns: list[str], fmt: str | None) -> str:
    if not versions and fmt != "csv":
        return "no matching checkpoints"
    header = ["checkpoint", "model", "phase", "step", "commit", "created", *columns]
    body = []
    for version in versions:
        body.append(
            [
                version.name or "?",
                version.model or "?",
                version.phase or "",
                number(version.step),
                version.sha[:8],
                (version.created_at or "")[:10],
                *(value_cell(v) for v in version.values),
            ]
        )
    return table(header, body, fmt)


def group_rows(grouping: Any, fmt: str | None) -> str:
    """`find --group-by`: one row per run or group, best first (CSV: mean and std apart)."""
    if not grouping.groups and fmt != "csv":
        return "no matching checkpoints"
    metric = grouping.metric.removeprefix("metrics.")
    label = "run" if grouping.by_run else grouping.field
    header = [label, "seed" if grouping.by_run else "seeds"]
    if not grouping.by_run:
        header += ["runs", *(["mean", "std"] if fmt == "csv" else [f"{metric} mean ± std"])]
    header += ["checkpoints", f"best {metric}", "best checkpoint"]
    header += [f"last {metric}", "last checkpoint"]
    body = []
    for group in grouping.groups:
        cells = [_key(group.key), ", ".join("?" if s is None else str(s) for s in group.seeds)]
        if not grouping.by_run:
            n = sum(1 for run in group.runs if run.contributed is not None)
            spread = [number(group.mean), number(group.std)]
            cells += [str(n), *(spread if fmt == "csv" else [_mean_std(group.mean, group.std)])]
        cells.append(str(group.checkpoints))
        for member in (group.best, group.last):
            cells += [value_cell(member.value), member.name] if member else ["", ""]
        body.append(cells)
    return table(header, body, fmt)


def _key(value: Any) -> str:
    return "(none)" if value is None else value_cell(value)


def _mean_std(mean: float | None, std: float | None) -> str:
    if mean is None:
        return ""
    return number(mean) + ("" if std is None else f" ± {number(std)}")


def version_json(version: Any) -> dict[str, Any]:
    return {
        "commit": version.sha,
        "path": version.path,
        "author": version.author,
        "card": version.card,
    }


def comparisons(results: list[Any], markdown: bool = False) -> str:
    if not results:
        return "no card differences"
    out = []
    for result in results:
        title = f"{result.a} → {result.b}"
        out.append(f"### {title}" if markdown else title)
        if not result.changes:
            out.append("identical" if not markdown else "_identical_")
            continue
        rows = [
            [c.section, c.field, _cell(c.a), _cell(c.b), number(c.delta, signed=True)]
            for c in result.changes
        ]
        out.append(table(["section", "field", "A", "B", "Δ"], rows, "md" if markdown else None))
        out.append("")
    return "\n".join(out).rstrip()


def _cell(value: Any) -> str:
    """One side of a change: `0.86 [0.84, 0.88]` for an estimate, a record inline."""
    text = "—" if value is None else value_cell(value)
    return text if len(text) <= 60 else text[:57] + "..."
