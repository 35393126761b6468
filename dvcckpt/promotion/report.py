"""`dvcckpt report`: what a reviewer reads on a pull request.

Checkpoints added or changed on the branch against its base, their metrics
against the current production holder, gate tables, decisions with their
rationale (overrides flagged), a provenance summary and a Mermaid lineage
diagram. Built as plain data first, then rendered as Markdown or HTML.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dvcckpt.adapters import git
from dvcckpt.catalog import Catalog, Version
from dvcckpt.core import gates
from dvcckpt.core.fields import field as card_field
from dvcckpt.core.fields import leaves
from dvcckpt.core.fields import number as metric_number
from dvcckpt.errors import ConfigError
from dvcckpt.present.text import number, table
from dvcckpt.project import Project, load_gates
from dvcckpt.promotion import stages

MARKER = "<!-- dvcckpt-report -->"


@dataclass
class Entry:
    name: str
    model: str
    path: str
    status: str  # added | changed
    card: dict[str, Any]
    holder: dict[str, Any] | None
    new_decisions: list[dict[str, Any]]
    gate_stage: str | None
    gate_results: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Report:
    base: str
    head: str
    reference_stage: str
    entries: list[Entry]


def build(project: Project, base: str | None = None) -> Report:
    catalog = project.catalog
    base = base or stages.main_branch(project)
    on_branch = catalog.reachable([f"{base}..HEAD"])
    in_base = catalog.reachable([base])
    reference_stage = project.config.stages[-1]
    holders = stages.holders(stages.decisions(catalog, base))
    latest: dict[str, Version] = {}
    for version in catalog.versions(commits=on_branch):
        latest[version.path] = version
    entries = []
    for path, version in sorted(latest.items()):
        if version.status == "D" or version.card is None:
            continue
        before = [v for v in catalog.versions(path=path, commits=in_base) if v.card is not None]
        old_decisions = len((before[-1].card or {}).get("decisions") or []) if before else 0
        holder_decision = holders.get((version.model or "", reference_stage))
        holder = catalog.get(holder_decision.name, base).card if holder_decision else None
        entry = Entry(
            version.name or "?",
            version.model or "?",
            path,
            "changed" if before else "added",
            version.card,
            holder if holder and holder.get("name") != version.name else None,
            list((version.card.get("decisions") or [])[old_decisions:]),
            None,
        )
        _attach_gates(project, entry)
        entries.append(entry)
    head = git.run_git(project.root, "rev-parse", "--short", "HEAD").strip()
    return Report(base, head, reference_stage, entries)


def _attach_gates(project: Project, entry: Entry) -> None:
    """Recorded gate results of a promotion on the branch; otherwise a fresh evaluation."""
    promotions = [d for d in entry.new_decisions if d.get("verdict") == "promoted"]
    if promotions:
        entry.gate_stage = promotions[-1].get("stage")
        entry.gate_results = list(promotions[-1].get("gates") or [])
        return
    try:
        document = load_gates(project.root)
    except ConfigError:
        return
    entry.gate_stage = project.config.stages[-1]
    rules = gates.rules_for(document, entry.model, entry.gate_stage)
    entry.gate_results = [r.as_dict() for r in gates.evaluate(entry.card, rules, entry.holder)]


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


def lineage(card: Mapping[str, Any], catalog: Catalog | None = None, depth: int = 5) -> str:
    """Mermaid flowchart of a checkpoint's parents (followed through the catalog)."""
    lines = ["flowchart BT"]
    seen: set[str] = set()
    frontier = [(card, 0)]
    while frontier:
        node, level = frontier.pop()
        name = str(node.get("name"))
        if name in seen or level > depth:
            continue
        seen.add(name)
        for parent in node.get("parents") or []:
            lines.append(
                f'    {_node(name)} -- "{parent.get("relation", "")}" --> {_node(str(parent.get("name")))}'
            )
            if catalog is not None:
                found = [v for v in catalog.versions(name=str(parent.get("name"))) if v.card]
                if found:
                    frontier.append((found[-1].card or {}, level + 1))
    if len(lines) == 1:
        lines.append(f"    {_node(str(card.get('name')))}")
    return "\n".join(lines)


def _node(name: str) -> str:
    ident = "".join(c if c.isalnum() else "_" for c in name)
    return f'{ident}["{name}"]'


def markdown(report: Report, project: Project) -> str:
    catalog = project.catalog
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
            out += ["", "**Lineage**", "", "```mermaid", lineage(entry.card, catalog), "```"]
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
    import re

    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)
