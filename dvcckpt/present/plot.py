"""Charts of a metric's history: in the terminal, as a self-contained HTML/SVG page, or PNG.

One line per run, x = step when every point has one, otherwise commit order.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dvcckpt.errors import UsageError

if TYPE_CHECKING:
    from dvcckpt.catalog.log import Row

_SYMBOLS = "●▲■◆✚✱○△□◇"
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b")


@dataclass(frozen=True)
class Series:
    run: str
    points: list[tuple[float, float, str]]  # x, y, label


BY = ("run", "run.id")  # what a series follows: the run's name, or its id


def series(
    rows: Sequence[Row], metric: str, by: str = "run", sequence: str = "commit"
) -> tuple[list[Series], str]:
    """One series per run (by name, or by id with `by="run.id"`), x = step when every
    point has one, else the position in history (`sequence` names that axis).
    Evaluations (`sequence="evaluation"`) are always in the order they were made: one
    checkpoint evaluated twice has one step."""
    chronological = list(reversed(rows))
    by_step = sequence != "evaluation" and all(r.step is not None for r in chronological)
    grouped: dict[str, list[tuple[float, float, str]]] = {}
    for index, row in enumerate(chronological):
        value = row.values.get(metric)
        if value is None:
            continue
        x = float(row.step) if by_step and row.step is not None else float(index + 1)
        label = f"{row.name} @ {row.commit[:8]} ({row.date})"
        grouped.setdefault(run_of(row, by), []).append((x, value, label))
    if not grouped:
        raise UsageError(f"no values of {metric} to plot", hint="pick a metric the cards record")
    return [Series(run, sorted(points)) for run, points in grouped.items()], (
        "step" if by_step else sequence
    )


def run_of(row: Row, by: str) -> str:
    """The series a row belongs to; a checkpoint without run fields joins its name's stem."""
    run_id = getattr(row, "run_id", None)
    first, second = (run_id, row.run) if by == "run.id" else (row.run, run_id)
    return first or second or row.name.rsplit("-step", 1)[0]


def terminal(
    rows: Sequence[Row],
    metric: str,
    width: int = 64,
    height: int = 14,
    by: str = "run",
    sequence: str = "commit",
) -> str:
    runs, axis = series(rows, metric, by, sequence)
    xs = [p[0] for s in runs for p in s.points]
    ys = [p[1] for s in runs for p in s.points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    grid = [[" "] * width for _ in range(height)]
    for number, run in enumerate(runs):
        for x, y, _ in run.points:
            col = 0 if x1 == x0 else round((x - x0) / (x1 - x0) * (width - 1))
            line = 0 if y1 == y0 else round((y - y0) / (y1 - y0) * (height - 1))
            grid[height - 1 - line][col] = _SYMBOLS[number % len(_SYMBOLS)]
    lines = [f"{metric} by {axis}"]
    for index, cells in enumerate(grid):
        label = f"{y1:.4g}" if index == 0 else f"{y0:.4g}" if index == height - 1 else ""
        lines.append(f"{label:>9} │{''.join(cells)}")
    lines.append(f"{'':>9} └{'─' * width}")
    lines.append(f"{'':>10}{x0:<.6g}{x1:>{width - len(f'{x0:.6g}')}.6g}")
    legend = "  ".join(f"{_SYMBOLS[i % len(_SYMBOLS)]} {s.run}" for i, s in enumerate(runs))
    lines.append(f"{'':>10}{legend}")
    return "\n".join(lines)


def render(
    rows: Sequence[Row], metric: str, target: Path, by: str = "run", sequence: str = "commit"
) -> bytes:
    """The chart file's bytes, in the format its suffix names (.html, .svg or .png)."""
    suffix = target.suffix.lower()
    if suffix not in (".html", ".htm", ".svg", ".png"):
        raise UsageError(
            f"--plot {target}: unknown chart format",
            hint="use a .html, .svg or .png file, or --plot alone for the terminal",
        )
    runs = series(rows, metric, by, sequence)
    if suffix in (".html", ".htm"):
        return _html(rows, metric, runs).encode("utf-8")
    if suffix == ".svg":
        return _svg(runs, metric).encode("utf-8")
    return _png(runs, metric)


def _svg(
    charted: tuple[list[Series], str], metric: str, width: int = 760, height: int = 380
) -> str:
    runs, axis = charted
    xs = [p[0] for s in runs for p in s.points]
    ys = [p[1] for s in runs for p in s.points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    pad = (y1 - y0) * 0.08 or abs(y1) * 0.05 or 1.0
    y0, y1 = y0 - pad, y1 + pad
    left, right, top, bottom = 64, 180, 24, 44

    def sx(x: float) -> float:
        return left + (0.5 if x1 == x0 else (x - x0) / (x1 - x0)) * (width - left - right)

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    for tick in range(5):
        value = y0 + (y1 - y0) * tick / 4
        y = sy(value)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
        )
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:.4g}</text>')
    parts.append(
        f'<text x="{(width - right + left) / 2}" y="{height - 8}" text-anchor="middle">{axis}</text>'
    )
    parts.append(f'<text x="{left}" y="14">{html.escape(metric)}</text>')
    for number, run in enumerate(runs):
        colour = _COLOURS[number % len(_COLOURS)]
        points = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _ in run.points)
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
        )
        for x, y, label in run.points:
            parts.append(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="{colour}">'
                f"<title>{html.escape(label)}: {y:.4g}</title></circle>"
            )
        legend_y = top + 16 * number
        parts.append(
            f'<rect x="{width - right + 12}" y="{legend_y}" width="10" height="10" fill="{colour}"/>'
        )
        parts.append(
            f'<text x="{width - right + 28}" y="{legend_y + 9}">{html.escape(run.run[:22])}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _html(rows: Sequence[Row], metric: str, charted: tuple[list[Series], str]) -> str:
    table = "".join(
        f"<tr><td>{r.commit[:8]}</td><td>{html.escape(r.date)}</td><td>{html.escape(r.name)}</td>"
        f"<td>{html.escape(r.run or '')}</td><td>{'' if r.step is None else r.step}</td>"
        f"<td>{_fmt(r.values.get(metric))}</td></tr>"
        for r in rows
    )
    return (
        "<!doctype html><meta charset='utf-8'>"
        f"<title>{html.escape(metric)} history</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;text-align:left}"
        "tr:nth-child(even){background:#f6f6f6}</style>"
        f"<h1>{html.escape(metric)}</h1>{_svg(charted, metric)}"
        "<table><tr><th>commit</th><th>date</th><th>checkpoint</th><th>run</th><th>step</th>"
        f"<th>{html.escape(metric)}</th></tr>{table}</table>\n"
    )


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _png(charted: tuple[list[Series], str], metric: str) -> bytes:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(
            "PNG charts need matplotlib",
            hint="pip install 'dvcckpt[plot]', or write an .html or .svg chart",
        ) from None
    runs, axis = charted
    figure, axes = plt.subplots(figsize=(8, 4), dpi=120)
    for run in runs:
        axes.plot([p[0] for p in run.points], [p[1] for p in run.points], marker="o", label=run.run)
    axes.set_xlabel(axis)
    axes.set_ylabel(metric)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
