"""Line plots as inline SVG: one line per run, a shaded band where a point has a
confidence interval, axes with round ticks, a legend, a tooltip per point.

Pure and bounded: at most `max_lines` lines (the ones with most points) and
`max_points` points per line (evenly thinned, first and last kept), and the
figure says what it left out. Every label is escaped: run and checkpoint names
come from cards. The SVG needs no script or style sheet, so a plot shows from
`file://`, in a feed reader, or with JavaScript off.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from dvcckpt.present.html import Markup, esc

COLOURS = ("#2457c5", "#c0392b", "#1e8449", "#8e44ad", "#d35400", "#138d90", "#7f6000",
           "#c2185b", "#34495e", "#6d8b00")  # fmt: skip


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    low: float | None = None  # the confidence interval, when the card recorded one
    high: float | None = None
    label: str = ""  # shown as the point's tooltip


@dataclass(frozen=True)
class Line:
    name: str
    points: Sequence[Point]


@dataclass(frozen=True)
class Frame:
    """The data-to-pixel mapping of one plot."""

    x0: float
    x1: float
    y0: float
    y1: float
    left: float
    right: float
    top: float
    bottom: float

    # Halves throughout: `x1 - x0` overflows to inf for values near ±1.8e308; halves do not.
    def sx(self, x: float) -> float:
        return self.left + _fraction(x, self.x0, self.x1) * (self.right - self.left)

    def sy(self, y: float) -> float:
        return self.bottom - _fraction(y, self.y0, self.y1) * (self.bottom - self.top)

    def finite(self) -> bool:
        return all(math.isfinite(v) for v in (self.x0, self.x1, self.y0, self.y1))


def _fraction(value: float, low: float, high: float) -> float:
    half = high / 2 - low / 2
    return 0.5 if half == 0 else (value / 2 - low / 2) / half


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round values (1, 2 or 5 times a power of ten) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        return [low]
    raw = high / max(count - 1, 1) - low / max(count - 1, 1)  # never overflows
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    out: list[float] = []
    value = first
    while value <= high + step * 1e-9 and len(out) < 50:
        out.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return out


def short(value: float) -> str:
    """A tick label: `0.85`, `12k`, `1.5M`."""
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.4g}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.4g}k"
    return f"{value:.4g}"


def thin(points: Sequence[Point], limit: int) -> list[Point]:
    """At most `limit` points, evenly spaced along the line, first and last kept."""
    if len(points) <= limit:
        return list(points)
    last = len(points) - 1
    picks = sorted({round(i * last / (limit - 1)) for i in range(limit)})
    return [points[i] for i in picks]


def _finite(points: Sequence[Point]) -> list[Point]:
    return [p for p in points if math.isfinite(p.x) and math.isfinite(p.y)]


def _band(point: Point) -> tuple[float, float] | None:
    if point.low is None or point.high is None:
        return None
    if not (math.isfinite(point.low) and math.isfinite(point.high)) or point.low > point.high:
        return None
    return point.low, point.high


def _frame(lines: Sequence[Line], width: int, height: int) -> Frame:
    xs = [p.x for line in lines for p in line.points]
    ys = [p.y for line in lines for p in line.points]
    for line in lines:
        for point in line.points:
            band = _band(point)
            if band:
                ys += list(band)
    y0, y1 = min(ys), max(ys)
    pad = (y1 / 2 - y0 / 2) * 0.12 or abs(y1) * 0.05 or 1.0
    low, high = y0 - pad, y1 + pad
    low, high = (low if math.isfinite(low) else y0), (high if math.isfinite(high) else y1)
    return Frame(min(xs), max(xs), low, high, 60, width - 16, 28, height - 40)


def line_plot(
    title: str,
    lines: Sequence[Line],
    *,
    x_label: str,
    width: int = 760,
    height: int = 320,
    max_lines: int = 8,
    max_points: int = 400,
) -> Markup:
    """The plot as an `<svg>` element (or a short note when there is nothing to draw)."""
    usable = [Line(line.name, _finite(line.points)) for line in lines]
    usable = [line for line in usable if line.points]
    if not usable:
        return Markup(f'<p class="empty">No values of {esc(title)} to plot.</p>')
    usable.sort(key=lambda line: -len(line.points))  # stable: most points first
    shown = [Line(line.name, thin(line.points, max_points)) for line in usable[:max_lines]]
    legend_rows = math.ceil(len(shown) / 3)
    total_height = height + 18 * legend_rows
    frame = _frame(shown, width, height)
    if not frame.finite():  # cannot happen for finite values; never draw NaN coordinates
        return Markup(f'<p class="empty">The values of {esc(title)} are too large to plot.</p>')
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{width}" '
        f'height="{total_height}" viewBox="0 0 {width} {total_height}" role="img" '
        f'aria-label="{esc(title)} by {esc(x_label)}" font-family="sans-serif" font-size="12">',
        f"<title>{esc(title)} by {esc(x_label)}</title>",
        f'<rect width="{width}" height="{total_height}" fill="#ffffff"/>',
        *_axes(frame, title, x_label),
    ]
    for number, line in enumerate(shown):
        parts += _line(frame, line, COLOURS[number % len(COLOURS)])
    parts += _legend(shown, width, height)
    left_out = _left_out(usable, shown, max_points)
    if left_out:
        parts.append(
            f'<text x="{width - 16}" y="16" text-anchor="end" fill="#5b6475">{esc(left_out)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _axes(frame: Frame, title: str, x_label: str) -> list[str]:
    out = [f'<text x="{frame.left}" y="16" font-weight="bold">{esc(title)}</text>']
    for value in ticks(frame.y0, frame.y1):
        y = frame.sy(value)
        out.append(
            f'<line x1="{frame.left}" x2="{frame.right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e6e9ef"/>'
            f'<text x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end">{esc(short(value))}</text>'
        )
    for value in ticks(frame.x0, frame.x1, 7) if frame.x1 > frame.x0 else [frame.x0]:
        x = frame.sx(value)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{frame.bottom}" y2="{frame.bottom + 4}" '
            f'stroke="#5b6475"/><text x="{x:.1f}" y="{frame.bottom + 16}" '
            f'text-anchor="middle">{esc(short(value))}</text>'
        )
    out.append(
        f'<line x1="{frame.left}" x2="{frame.right}" y1="{frame.bottom}" y2="{frame.bottom}" '
        f'stroke="#5b6475"/><line x1="{frame.left}" x2="{frame.left}" y1="{frame.top}" '
        f'y2="{frame.bottom}" stroke="#5b6475"/>'
        f'<text x="{(frame.left + frame.right) / 2:.1f}" y="{frame.bottom + 32}" '
        f'text-anchor="middle" fill="#5b6475">{esc(x_label)}</text>'
    )
    return out


def _line(frame: Frame, line: Line, colour: str) -> list[str]:
    out = []
    # One band per run of consecutive points that have an interval.
    run: list[tuple[Point, tuple[float, float]]] = []
    for point in [*line.points, None]:
        band = _band(point) if point is not None else None
        if point is not None and band is not None:
            run.append((point, band))
            continue
        if run:
            out.append(_band_polygon(frame, run, colour))
            run = []
    coordinates = " ".join(f"{frame.sx(p.x):.1f},{frame.sy(p.y):.1f}" for p in line.points)
    out.append(
        f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{coordinates}"/>'
    )
    radius = 3 if len(line.points) <= 150 else 1.8
    for point in line.points:
        interval = _band(point)
        shown = f"{point.y:.4g}" + (f" [{interval[0]:.4g}, {interval[1]:.4g}]" if interval else "")
        label = f"{line.name}: {point.label + ' ' if point.label else ''}{shown}"
        out.append(
            f'<circle cx="{frame.sx(point.x):.1f}" cy="{frame.sy(point.y):.1f}" r="{radius}" '
            f'fill="{colour}"><title>{esc(label)}</title></circle>'
        )
    return out


def _band_polygon(frame: Frame, run: list[tuple[Point, tuple[float, float]]], colour: str) -> str:
    if len(run) == 1:  # a lone interval: an error bar
        point, (low, high) = run[0]
        x = frame.sx(point.x)
        return (
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{frame.sy(low):.1f}" y2="{frame.sy(high):.1f}" '
            f'stroke="{colour}" stroke-opacity="0.45" stroke-width="6"/>'
        )
    upper = [f"{frame.sx(p.x):.1f},{frame.sy(high):.1f}" for p, (_, high) in run]
    lower = [f"{frame.sx(p.x):.1f},{frame.sy(low):.1f}" for p, (low, _) in reversed(run)]
    return (
        f'<polygon class="ci" fill="{colour}" fill-opacity="0.16" stroke="none" '
        f'points="{" ".join(upper + lower)}"/>'
    )


def _legend(lines: Sequence[Line], width: int, height: int) -> list[str]:
    out = []
    column_width = (width - 76) / 3
    for number, line in enumerate(lines):
        x = 60 + (number % 3) * column_width
        y = height + (number // 3) * 18
        name = line.name if len(line.name) <= 34 else line.name[:33] + "…"
        out.append(
            f'<rect x="{x:.1f}" y="{y}" width="12" height="4" '
            f'fill="{COLOURS[number % len(COLOURS)]}"/>'
            f'<text x="{x + 18:.1f}" y="{y + 6}">{esc(name)}</text>'
        )
    return out


def _left_out(usable: Sequence[Line], shown: Sequence[Line], max_points: int) -> str:
    notes = []
    if len(usable) > len(shown):
        notes.append(f"{len(usable) - len(shown)} more runs not drawn")
    if any(len(line.points) > max_points for line in usable[: len(shown)]):
        notes.append(f"long runs thinned to {max_points} points")
    return "; ".join(notes)
