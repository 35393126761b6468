"""A checkpoint's lineage drawn as inline SVG (the site's checkpoint page, the HTML report).

The edges are the ones `promotion.report.lineage` returns and `present.report.mermaid`
draws: `(child, relation, parent)`. The layout is layered left to right: the root in the
first column, each ancestor in the column of its distance from the root (breadth first,
so a cycle in hostile cards cannot loop), nodes in a column ordered by where their
children sit (fewer crossings). An edge points from a child to its parent, labelled
with the relation; one that does not go rightwards (a cycle) is drawn as an arc below.

Names and relations are card text: they are cleaned (control and invisible format
characters such as bidi overrides dropped, white space collapsed), cut to fit their box
in the middle (the step at the end of a name is kept) and escaped; the full name is the
box's tooltip; a box links to a page when the caller gives one. No ids are written, so several diagrams can share a page. The drawing is
bounded: at most `MAX_NODES` boxes (`MAX_PER_COLUMN` per column) and `MAX_EDGES` edges,
and it says how many ancestors were left out.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence

from dvcckpt.present.html import Markup, esc, safe_href

MAX_NODES = 40
MAX_PER_COLUMN = 10
MAX_EDGES = 120
BOX_W, BOX_H = 300, 34
GAP_X, GAP_Y = 110, 16
PAD = 12
FONT_PX = 12
CHAR_PX = 7.3  # a monospace character at FONT_PX, so a label of LABEL_UNITS fits its box
LABEL_UNITS = 38
RELATION_UNITS = 16
TOOLTIP_CHARS = 300
ARC_DROP = 34  # how far below the boxes an arc (an edge that does not go rightwards) dips

_DROPPED = {"Cf", "Co", "Cs", "Cn"}  # format (bidi, zero-width), private use, unassigned
_SPACES = {"Cc", "Zl", "Zp", "Zs"}


def svg(
    root: str,
    edges: Sequence[tuple[str, str, str]],
    links: Mapping[str, str] | None = None,
) -> Markup:
    """The lineage of `root` as an `<svg>` element (one box alone when there are no edges).

    `links` maps a name to the page to open when its box is clicked (e.g. the site's
    checkpoint pages); only links `present.html.safe_href` accepts are made."""
    kept_edges = _unique(edges, root)
    column = _columns(root, kept_edges)
    shown, left_out = _bounded(root, column)
    rows = _order(shown, column, kept_edges)
    place = _positions(rows)
    between = [e for e in kept_edges if e[0] in place and e[2] in place]
    drawn = between[:MAX_EDGES]
    back = any(column[parent] <= column[child] for child, _, parent in drawn)
    width = PAD * 2 + len(rows) * BOX_W + (len(rows) - 1) * GAP_X
    tallest = max(len(r) for r in rows)
    bottom = PAD + tallest * BOX_H + (tallest - 1) * GAP_Y  # of the lowest box
    height = bottom + PAD + (ARC_DROP if back else 0)
    note = _note(left_out, len(between) - len(drawn))
    if note:
        height += FONT_PX + 8
    parts = [
        _edge(place[c], place[p], rel, bottom if column[p] <= column[c] else None)
        for c, rel, p in drawn
    ]
    for row in rows:
        for name in row:
            box = _box(name, place[name], name == root)
            target = safe_href((links or {}).get(name))
            parts.append(f'<a href="{esc(target)}">{box}</a>' if target else box)
    if note:
        parts.append(_text(PAD, height - PAD + 2, note, fill="#5b6475", anchor="start"))
    label = esc(f"Lineage of {_clean(root)[:TOOLTIP_CHARS]}")
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-size="{FONT_PX}" font-family="system-ui,sans-serif" aria-label="{label}"><title>{label}</title>'
        + "".join(parts)
        + "</svg>"
    )


# -- layout ------------------------------------------------------------------------------


def _unique(edges: Sequence[tuple[str, str, str]], root: str) -> list[tuple[str, str, str]]:
    """Edges once each, in their order, without self-loops (they carry no ancestry)."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for child, relation, parent in edges:
        edge = (str(child), str(relation), str(parent))
        if edge[0] != edge[2] and edge not in seen:
            seen.add(edge)
            out.append(edge)
    return out


def _columns(root: str, edges: list[tuple[str, str, str]]) -> dict[str, int]:
    """Each name's distance from the root, breadth first; names it never reaches go last."""
    parents: dict[str, list[str]] = {}
    for child, _, parent in edges:
        parents.setdefault(child, []).append(parent)
    column = {root: 0}
    frontier = [root]
    while frontier:
        following = []
        for name in frontier:
            for parent in parents.get(name, ()):
                if parent not in column:
                    column[parent] = column[name] + 1
                    following.append(parent)
        frontier = following
    stray = max(column.values()) + 1
    for child, _, parent in edges:
        for name in (child, parent):
            column.setdefault(name, stray)
    return column


def _bounded(root: str, column: Mapping[str, int]) -> tuple[list[str], int]:
    """The names drawn (the root always, then nearest first) and how many were left out."""
    per_column: dict[int, int] = {}
    shown: list[str] = []
    for name in sorted(column, key=lambda n: (n != root, column[n])):
        if len(shown) < MAX_NODES and per_column.get(column[name], 0) < MAX_PER_COLUMN:
            per_column[column[name]] = per_column.get(column[name], 0) + 1
            shown.append(name)
    return shown, len(column) - len(shown)


def _order(
    shown: list[str], column: Mapping[str, int], edges: list[tuple[str, str, str]]
) -> list[list[str]]:
    """Columns of names; within one, sorted by the mean row of their children to its left."""
    columns: dict[int, list[str]] = {}
    for name in shown:
        columns.setdefault(column[name], []).append(name)
    children: dict[str, list[str]] = {}
    for child, _, parent in edges:
        children.setdefault(parent, []).append(child)
    rows: list[list[str]] = []
    row_of: dict[str, int] = {}
    for index in sorted(columns):
        names = columns[index]
        first = {name: i for i, name in enumerate(names)}

        def weight(name: str, first: dict[str, int] = first) -> tuple[float, int]:
            placed = [row_of[c] for c in children.get(name, ()) if c in row_of]
            return (sum(placed) / len(placed) if placed else float(first[name]), first[name])

        names = sorted(names, key=weight)
        row_of.update({name: i for i, name in enumerate(names)})
        rows.append(names)
    return rows


def _positions(rows: list[list[str]]) -> dict[str, tuple[float, float]]:
    """Top-left corner of each box, every column centred on the tallest one."""
    tallest = max(len(r) for r in rows)
    place = {}
    for index, names in enumerate(rows):
        x = PAD + index * (BOX_W + GAP_X)
        offset = (tallest - len(names)) * (BOX_H + GAP_Y) / 2
        for row, name in enumerate(names):
            place[name] = (float(x), PAD + offset + row * (BOX_H + GAP_Y))
    return place


# -- drawing -----------------------------------------------------------------------------


def _box(name: str, at: tuple[float, float], is_root: bool) -> str:
    x, y = at
    fill, stroke, ink = (
        ("#2457c5", "#173a85", "#ffffff") if is_root else ("#f4f6fa", "#9aa3b5", "#1d2330")
    )
    label = _fit(_clean(name) or "unnamed", LABEL_UNITS)
    return (
        f'<g class="node{" root" if is_root else ""}"><title>{esc(_clean(name)[:TOOLTIP_CHARS])}'
        f'</title><rect x="{_n(x)}" y="{_n(y)}" width="{BOX_W}" height="{BOX_H}" rx="5" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="{2 if is_root else 1}"/>'
        + _text(x + BOX_W / 2, y + BOX_H / 2 + FONT_PX / 3, label, fill=ink, mono=True)
        + "</g>"
    )


def _edge(
    child: tuple[float, float], parent: tuple[float, float], relation: str, arc: float | None
) -> str:
    """A curve from the child's box to its parent's, an arrowhead at the parent, the relation;
    with `arc` (the lowest box's bottom), an arc passing below every box."""
    if arc is None:
        x1, y1 = child[0] + BOX_W, child[1] + BOX_H / 2
        x2, y2 = parent[0], parent[1] + BOX_H / 2
        bend = (x2 - x1) / 2
        path = f"M{_n(x1)},{_n(y1)} C{_n(x1 + bend)},{_n(y1)} {_n(x2 - bend)},{_n(y2)} {_n(x2)},{_n(y2)}"
        head = f"{_n(x2)},{_n(y2)} {_n(x2 - 8)},{_n(y2 - 4)} {_n(x2 - 8)},{_n(y2 + 4)}"
        mid = (x2 - 10, y2 - 5)  # beside the parent: a card's several parents never share it
    else:
        x1, y1 = child[0] + BOX_W / 2, child[1] + BOX_H
        x2, y2 = parent[0] + BOX_W / 2 + 6, parent[1] + BOX_H
        deepest = arc + ARC_DROP / 2
        # a cubic with both control points at `low` is at 1/8 y1 + 3/4 low + 1/8 y2 mid-way
        low = (deepest - (y1 + y2) / 8) / 0.75
        path = f"M{_n(x1)},{_n(y1)} C{_n(x1)},{_n(low)} {_n(x2)},{_n(low)} {_n(x2)},{_n(y2)}"
        head = f"{_n(x2)},{_n(y2)} {_n(x2 - 4)},{_n(y2 + 8)} {_n(x2 + 4)},{_n(y2 + 8)}"
        mid = ((x1 + x2) / 2, deepest + FONT_PX)
    out = (
        f'<g class="edge"><path d="{path}" fill="none" stroke="#7d879a" stroke-width="1.3"/>'
        f'<polygon points="{head}" fill="#7d879a"/>'
    )
    relation = _fit(_clean(relation), RELATION_UNITS)
    if relation:
        anchor = "end" if arc is None else "middle"
        out += _text(mid[0], mid[1], relation, fill="#5b6475", anchor=anchor, halo=True)
    return out + "</g>"


def _text(
    x: float,
    y: float,
    text: str,
    *,
    fill: str,
    anchor: str = "middle",
    mono: bool = False,
    halo: bool = False,
) -> str:
    font = ' font-family="ui-monospace,Menlo,Consolas,monospace"' if mono else ""
    stroke = ' stroke="#ffffff" stroke-width="3" paint-order="stroke"' if halo else ""
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" fill="{fill}"{font}{stroke}>'
        f"{esc(text)}</text>"
    )


def _note(left_out: int, edges_left_out: int) -> str:
    notes = []
    if left_out:
        notes.append(f"{left_out} more ancestor(s) not shown")
    if edges_left_out:
        notes.append(f"{edges_left_out} more link(s) not shown")
    return "; ".join(notes)


def _n(value: float) -> str:
    """A coordinate, short and the same on every platform."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


# -- labels ------------------------------------------------------------------------------


def _clean(text: str) -> str:
    """Card text on one line: invisible and control characters dropped, spaces collapsed."""
    kept = []
    for char in str(text):
        category = unicodedata.category(char)
        if category in _SPACES:
            kept.append(" ")
        elif category not in _DROPPED:
            kept.append(char)
    return " ".join("".join(kept).split())


def _units(char: str) -> int:
    """Width of a character in monospace cells: wide (CJK, emoji) ones take two."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _fit(text: str, units: int) -> str:
    """`text` cut in the middle to `units` cells, the start and the end kept."""
    if sum(_units(c) for c in text) <= units:
        return text
    budget = units - 1  # the ellipsis
    head_units = (budget + 1) // 2
    head, used = [], 0
    for char in text:
        if used + _units(char) > head_units:
            break
        head.append(char)
        used += _units(char)
    tail: list[str] = []
    used_tail = 0
    for char in reversed(text):
        if used + used_tail + _units(char) > budget:
            break
        tail.append(char)
        used_tail += _units(char)
    return "".join(head).rstrip() + "…" + "".join(reversed(tail)).lstrip()
