"""Rendering the review report (`promotion.report`) as Markdown for a PR comment, or HTML."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dvcckpt.core.fields import field as card_field
from dvcckpt.core.fields import leaves
from dvcckpt.core.fields import number as metric_number
from dvcckpt.present.text import number, table

if TYPE_CHECKING:
    from dvcckpt.promotion.report import Entry, Report

MARKER = "<!-- dvcckpt-report -->"


def markdown(report: Report) -> str:
    out = [MARKER, f"## dvcckpt report: `{report.base}..{report.head}`", ""]
    if not report.entries:
        return "\n".join([*out, "No checkpoint cards were added or changed on this branch.", ""])
    out.append(
        f"{len(report.entries)} checkpoint card(s) added or changed; metrics are compared "
        f"with the current **{report.reference_stage}** holder on `{report.base}`."
    )
    for entry in report.entries:
        out += ["", f"### {entry.name} ({entry.status})", ""]
        out += _provenance(entry)
        holder_name = entry.holder.get("name") if entry.holder else "none"
        out += ["", f"**Metrics vs {report.reference_stage} holder** (`{holder_name}`)", ""]
        out.append(
            _md_table(
                ["metric", "this", report.reference_stage, "Δ"],
                metric_deltas(entry.card, entry.holder),
            )
        )
        if entry.gate_stage:
            out += ["", f"**Gates for {entry.gate_stage}**", ""]
            out.append(
                _md_table(
                    ["", "rule", "required", "actual"],
                    [
                        [
                            "✅" if g.get("verdict") == "pass" else "❌",
                            str(g.get("rule")),
                            str(g.get("required")),
                            str(g.get("actual")),
                        ]
                        for g in entry.gate_results
                    ],
                )
                if entry.gate_results
                else "_no gates defined_"
            )
        if entry.new_decisions:
            out += ["", "**Decisions on this branch**", ""]
            out += [_decision_line(d) for d in entry.new_decisions]
        if entry.card.get("parents") or any(
            d.get("verdict") == "promoted" for d in entry.new_decisions
        ):
            out += ["", "**Lineage**", "", "```mermaid", mermaid(entry.name, entry.lineage), "```"]
    return "\n".join(out) + "\n"


def _provenance(entry: Entry) -> list[str]:
    card = entry.card
    code = card.get("code") or {}
    data = card.get("data") or {}
    seeds = card.get("seeds") or {}
    commit = str(code.get("commit") or "unknown")[:12] + (" (dirty)" if code.get("dirty") else "")
    dataset = " ".join(str(x) for x in (data.get("dataset"), data.get("version")) if x) or "unknown"
    return [
        f"- model `{entry.model}`, phase `{card['checkpoint'].get('phase')}`, step "
        f"{card['checkpoint'].get('step', '?')}, sha256 `{card['checkpoint'].get('sha256', '')[:16]}…`",
        f"- code `{commit}`, data `{dataset}`, seed `{seeds.get('seed', 'unknown')}`",
    ]


def _decision_line(decision: Mapping[str, Any]) -> str:
    who = (decision.get("by") or {}).get("name") or "?"
    stage = f" → **{decision.get('stage')}**" if decision.get("stage") else ""
    text = f"- **{decision.get('verdict')}**{stage} by {who} at {decision.get('at')}"
    if decision.get("rationale"):
        text += f": {decision['rationale']}"
    if decision.get("override"):
        text += f"\n  - ⚠️ **OVERRIDE** of failing gates: {decision.get('reason')}"
    elif decision.get("reason"):
        text += f": {decision['reason']}"
    return text


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    return table(header, rows, "md") if rows else "_none_"


def as_html(markdown_text: str) -> str:
    """A standalone page for the same report (tables, headings, lists and Mermaid blocks)."""
    body: list[str] = []
    in_table = in_code = False
    for line in markdown_text.splitlines():
        if line.startswith("```"):
            body.append("</pre>" if in_code else '<pre class="mermaid">')
            in_code = not in_code
        elif in_code:
            body.append(html.escape(line))
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            if set(line) <= set("|-"):
                continue
            tag = "th" if not in_table else "td"
            body.append(
                ("<table>" if not in_table else "")
                + "<tr>"
                + "".join(f"<{tag}>{_inline(c)}</{tag}>" for c in cells)
                + "</tr>"
            )
            in_table = True
            continue
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
        elif line.strip().startswith("- "):
            body.append(f"<li>{_inline(line.strip()[2:])}</li>")
        elif line.strip() and not line.startswith("<!--"):
            body.append(f"<p>{_inline(line)}</p>")
        if in_table and not line.startswith("|"):
            body.insert(len(body) - 1, "</table>")
            in_table = False
    if in_table:
        body.append("</table>")
    style = "body{font-family:sans-serif;margin:2em;max-width:70em}td,th{padding:3px 10px;border-bottom:1px solid #ddd}"
    return (
        f"<!doctype html><meta charset='utf-8'><title>dvcckpt report</title><style>{style}</style>\n"
        + "\n".join(body)
        + "\n"
    )


def _inline(text: str) -> str:
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def metric_deltas(card: Mapping[str, Any], holder: Mapping[str, Any] | None) -> list[list[str]]:
    rows = []
    for split, metrics in (card.get("metrics") or {}).items():
        for name, value in leaves(metrics):
            if value == {}:
                continue
            mine = metric_number(value)
            theirs = (
                metric_number(card_field(holder, f"metrics.{split}.{name}")) if holder else None
            )
            delta = mine - theirs if mine is not None and theirs is not None else None
            rows.append(
                [f"{split}.{name}", number(mine), number(theirs), number(delta, signed=True)]
            )
    return rows


def mermaid(root: str, edges: list[tuple[str, str, str]]) -> str:
    """Mermaid flowchart of lineage edges (a lone node when there are none)."""
    lines = ["flowchart BT"]
    lines += [
        f'    {_node(child)} -- "{relation}" --> {_node(parent)}'
        for child, relation, parent in edges
    ]
    if len(lines) == 1:
        lines.append(f"    {_node(root)}")
    return "\n".join(lines)


def _node(name: str) -> str:
    ident = "".join(c if c.isalnum() else "_" for c in name)
    return f'{ident}["{name}"]'
