"""`dvcckpt org` results for the terminal: checkpoints, history and stage holders of every
published repository (each row names its repository).

Rendering only: rows in, aligned text, CSV or Markdown out; cells as `find` and
`log` show them (a metric with an interval reads `0.86 [0.84, 0.88]`).
"""

from __future__ import annotations

from typing import Any

from dvcckpt.present.queries import value_cell
from dvcckpt.present.text import estimate_text, number, table


def find_rows(matches: list[Any], columns: list[str], fmt: str | None) -> str:
    if not matches and fmt != "csv":
        return "no matching checkpoints in the published repositories"
    header = ["repository", "checkpoint", "model", "stage", "phase", "step", "commit", *columns]
    body = [
        [
            m.repository,
            m.name or "?",
            m.model or "?",
            m.stages or "",
            m.phase or "",
            number(m.step),
            m.commit[:8],
            *(value_cell(v) for v in m.values),
        ]
        for m in matches
    ]
    return table(header, body, fmt)


def log_rows(rows: list[Any], metrics: list[str], fmt: str | None) -> str:
    """One row per card version, newest first, Δ against the run's previous checkpoint."""
    if not rows and fmt != "csv":
        return "no card versions of it in the published repositories"
    header = ["repository", "commit", "date", "author", "checkpoint", "run", "step"]
    for metric in metrics:
        header += [metric, "Δ"]
    body = []
    for row in rows:
        cells = [row.repository, row.commit[:8], row.date, row.author or "", row.name,
                 row.run or "", number(row.step)]  # fmt: skip
        for metric in metrics:
            cells += [_with_interval(row, metric), number(row.deltas.get(metric), signed=True)]
        body.append(cells)
    return table(header, body, fmt)


def _with_interval(row: Any, metric: str) -> str:
    value, interval = row.values.get(metric), row.intervals.get(metric)
    if value is None or not interval:
        return number(value)
    return estimate_text({"value": value, "ci": list(interval)})


def stage_rows(holders: list[Any], history: list[Any] | None, fmt: str | None) -> str:
    """Who holds each stage in each repository; with `history`, every event oldest first."""
    if not holders and not history:
        return "no stage holders in the published repositories"
    header = ["repository", "model", "stage", "holder", "since", "by", "why", "signature"]
    body = [[h.repository, h.model or "?", h.stage or "?", h.holder, h.at or "", h.by or "",
             h.reason or "", h.verified or ""] for h in holders]  # fmt: skip
    out = table(header, body, fmt) if body else "no holders"
    if history:
        header = ["repository", "commit", "action", "stage", "checkpoint", "by", "why", "signature"]
        body = [[e.repository, e.commit[:8], e.action or "?", e.stage or "-", e.name or "?",
                 e.by or "", e.reason or "",
                 (e.verified or "") + ("" if e.counts else f" (ignored: {e.problem or 'invalid'})")]
                for e in history]  # fmt: skip
        out += "\n\nhistory (oldest first)\n" + table(header, body, fmt)
    return out
