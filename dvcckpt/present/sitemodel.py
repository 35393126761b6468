"""A model's page of the catalog site: checkpoints, performance history, stage history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dvcckpt.core.fields import field as card_field
from dvcckpt.core.fields import number as metric_number
from dvcckpt.present import svgplot
from dvcckpt.present.html import Markup, dl, element, join, page, table
from dvcckpt.present.plot import run_of
from dvcckpt.present.queries import value_cell
from dvcckpt.present.sitepage import (
    SCRIPT,
    Links,
    entries,
    footer,
    holder_link,
    holder_of,
    nav,
    section,
)

if TYPE_CHECKING:
    from dvcckpt.catalog.rows import Row
    from dvcckpt.promotion.stages import Decision
    from dvcckpt.publish.site import Checkpoint, Model, Site

MAX_TABLE_METRICS = 6
MAX_PLOTS = 12
MAX_TAGS = 8
MAX_TABLE_ROWS = 2500
STYLE = (
    ".wide{overflow-x:auto}.wide td{white-space:nowrap}"
    ".plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:0 1.5em}"
)


def model_page(site: Site, model: Model, links: Links) -> str:
    body: list[object] = [
        element("h1", f"Model {model.name}"),
        _holders(site, model, links),
        element("h2", "Performance history"),
        *_plots(model),
        element("h2", "Checkpoints"),
        *_checkpoints(model, links),
        element("h2", "Stage history"),
        stage_history(model.decisions, links),
        footer(site),
    ]
    return page(f"{model.name}: checkpoints", body, scripts=[SCRIPT], nav=nav("../"), style=STYLE)


def _holders(site: Site, model: Model, links: Links) -> Markup:
    if not model.holders:
        return element("p", "No checkpoint of this model holds a stage.", class_="empty")
    pairs = []
    for stage in site.stages:
        decision = model.holders.get(stage)
        if decision is None:
            continue
        found = holder_of(model, stage)
        pairs.append((stage, holder_link(found, decision.name, links, "../")))
    return dl(pairs)


def _checkpoints(model: Model, links: Links) -> list[Markup]:
    if not model.checkpoints:
        return [element("p", "No checkpoint of this model is in scope.", class_="empty")]
    metrics = model.metrics[:MAX_TABLE_METRICS]
    header = ["checkpoint", "phase", "step", "run", *metrics, "tags", "created", "commit", "holds"]
    rows, keys = [], []
    first_metric = 4
    # The newest MAX_TABLE_ROWS (and every stage holder) keep the page under 2 MB.
    listed = [c for i, c in enumerate(model.checkpoints) if i < MAX_TABLE_ROWS or c.holds]
    for checkpoint in listed:
        row, key = _checkpoint_row(checkpoint, metrics, links)
        rows.append(row)
        keys.append(key)
    numeric = [2, *range(first_metric, first_metric + len(metrics))]
    shown = f"{len(rows)} checkpoints"
    if len(listed) < len(model.checkpoints):
        left_out = len(model.checkpoints) - len(listed)
        shown += f" (the newest; {left_out} older ones: dvcckpt find --model {model.name})"
    count = element("span", shown, id="checkpoint-count", class_="muted")
    search = element(
        "input",
        type="search",
        class_="filter",
        placeholder="Filter: words that must all appear in a row",
        aria_label="Filter checkpoints",
        data_table="checkpoints",
        data_count="checkpoint-count",
        hidden=True,
    )
    return [
        element("p", search, " ", count),
        element(
            "div",
            table(header, rows, sortable=True, id="checkpoints", numeric=numeric, sort_keys=keys),
            class_="wide",
        ),
    ]


def _checkpoint_row(
    checkpoint: Checkpoint, metrics: Sequence[str], links: Links
) -> tuple[list[object], list[object]]:
    version, card = checkpoint.version, checkpoint.card
    run, tags = section(card, "run"), entries(card, "tags")
    values = [card_field(card, f"metrics.{m}") for m in metrics]
    cells: list[object] = [
        element("a", version.name or "?", href="../" + links.paths[version.path]),
        version.phase or "",
        "" if version.step is None else str(version.step),
        str(run.get("name") or run.get("id") or ""),
        *(value_cell(v) for v in values),
        join(element("span", str(t), class_="tag") for t in tags[:MAX_TAGS]),
        (version.created_at or "")[:10],
        element("code", version.sha[:8]),
        ", ".join(checkpoint.holds),
    ]
    keys: list[object] = [None, None, version.step, None, *(metric_number(v) for v in values)]
    return cells, keys


def _plots(model: Model) -> list[Markup]:
    if not model.history or not model.metrics:
        return [element("p", "No metric history to plot.", class_="empty")]
    out = []
    for metric in model.metrics[:MAX_PLOTS]:
        lines, axis = history_lines(model.history, metric)
        if not lines:
            continue
        figure = svgplot.line_plot(metric, lines, x_label=axis, width=600, height=280)
        caption = f"{metric} by {axis}, one line per run; shaded: confidence interval"
        out.append(element("figure", figure, element("figcaption", caption)))
    if out:
        out = [element("div", out, class_="plots")]
    if len(model.metrics) > MAX_PLOTS:
        rest = len(model.metrics) - MAX_PLOTS
        out.append(element("p", f"{rest} more metric(s) not plotted.", class_="muted"))
    return out or [element("p", "No metric history to plot.", class_="empty")]


def history_lines(rows: Sequence[Row], metric: str) -> tuple[list[svgplot.Line], str]:
    """One line per run, x = step when every point has one, else the commit order."""
    chronological = [r for r in reversed(rows) if r.values.get(metric) is not None]
    by_step = all(r.step is not None for r in chronological)
    grouped: dict[str, list[svgplot.Point]] = {}
    for index, row in enumerate(chronological):
        value = row.values[metric]
        if value is None:
            continue
        interval = (row.intervals or {}).get(metric)
        low, high = interval if interval else (None, None)
        x = float(row.step) if by_step and row.step is not None else float(index + 1)
        label = f"{row.name} @ {row.commit[:8]} ({row.date})"
        grouped.setdefault(run_of(row, "run"), []).append(svgplot.Point(x, value, low, high, label))
    lines = [
        svgplot.Line(run, sorted(points, key=lambda p: p.x)) for run, points in grouped.items()
    ]
    return lines, "step" if by_step else "commit"


def stage_history(decisions: Sequence[Decision], links: Links, prefix: str = "../") -> Markup:
    """Who decided what, when and why, and whether the decision verifies."""
    if not decisions:
        return element("p", "No decisions recorded on the main branch.", class_="empty")
    header = ["when", "decision", "stage", "checkpoint", "by", "why", "signature", "commit"]
    rows = [
        [
            str(d.entry.get("at") or ""),
            d.verdict + (" (override)" if d.entry.get("override") else ""),
            d.stage or "",
            links.checkpoint(d.name, prefix),
            person(d.entry.get("by")),
            _why(d.entry),
            signature(d),
            element("code", d.commit[:8]),
        ]
        for d in decisions
    ]
    return table(header, rows, sortable=True, id="stage-history")


def person(value: Any) -> str:
    if not isinstance(value, Mapping):
        return str(value or "")
    name, email = value.get("name"), value.get("email")
    return f"{name} <{email}>" if name and email else str(name or email or "")


def _why(entry: Mapping[str, Any]) -> str:
    parts = [str(entry[k]) for k in ("rationale", "reason") if entry.get(k)]
    text = "; ".join(parts)
    return text if len(text) <= 600 else text[:599] + "…"


def signature(decision: Decision) -> Markup:
    if decision.status == "verified":
        return element("span", f"✔ verified ({decision.principal})", class_="pass")
    if decision.status == "invalid":
        return element("span", f"✘ invalid: {decision.reason or 'unknown'}", class_="fail")
    return element("span", "unsigned", class_="warn")
