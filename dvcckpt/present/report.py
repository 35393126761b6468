"""Rendering the review report (`promotion.report`) as Markdown for a PR comment, or HTML.

Card text is untrusted: whoever opens a pull request writes it. Every card-sourced
string (names, model, phase, paths, metric names, gate rule / required / actual,
dataset, parents and relations, a decision's verdict, stage, author, time, rationale,
reason, notes, changed file names) goes through one helper, `md_text`, which makes it
plain text in every place dvcckpt puts it (paragraph, list item, heading, table cell):

- control characters, line and paragraph separators and runs of white space become
  one space, and invisible format characters (bidi overrides, zero-width) are dropped,
  so a value stays on its line and cannot add rows, items or blocks; long values are cut;
- `&` and `<` become entities, so no tag, HTML comment (`<!--`) or autolink can start;
  a `>` elsewhere is inert and stays readable (`>=` in gate rules), a leading one
  becomes `&gt;`, as do a leading `#`, `-`, `+` and `=`;
- characters that could open code, emphasis, links, images, tables, math or
  strike-through (`` ` * [ ] | \\ ~ $ `` and `_` unless between letters or digits)
  become numeric entities, which Markdown shows as the literal character;
- `@` is followed by a zero-width joiner, so it never mentions anyone.

Card text is never put inside a code span as is (entities show verbatim there):
`_code` wraps a value in backticks only when escaping left it unchanged, and shows
the escaped text plainly otherwise. Free text (rationale, reason, notes) is shown
as escaped plain text. Mermaid labels keep only letters, digits and `-_.:/ `
(`_label`); node ids are ASCII and unique within a graph (`_ids`).

The comparison columns appear only when the reference stage has a holder to compare
with. The HTML page is rendered from the same data, not from this Markdown
(`present.reporthtml`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dvcckpt.core.fields import field as card_field
from dvcckpt.core.fields import leaves
from dvcckpt.core.fields import number as metric_number
from dvcckpt.present.text import number, table

if TYPE_CHECKING:
    from dvcckpt.promotion.report import DecisionStatus, Entry, Report

MARKER = "<!-- dvcckpt-report -->"
POLICY_TITLE = "⚠️ Policy changes in this pull request (need owner approval)"
FREE_TEXT_LIMIT = 600  # characters of a rationale, reason or note shown in the comment
POLICY_LIST_LIMIT = 100

_ENTITIES = {
    "&": "&amp;",
    "<": "&lt;",
    "`": "&#96;",
    "*": "&#42;",
    "[": "&#91;",
    "]": "&#93;",
    "|": "&#124;",
    "\\": "&#92;",
    "~": "&#126;",
    "$": "&#36;",
}
_LEADING = {">": "&gt;", "#": "&#35;", "-": "&#45;", "+": "&#43;", "=": "&#61;"}
_ZWJ = "\u200d"
_DROPPED = {"Cf", "Co", "Cs"}  # format (bidi, zero-width), private use, surrogates
_SPACES = {"Cc", "Zl", "Zp"}  # control characters and line / paragraph separators


def md_text(value: object, limit: int = 300) -> str:
    """`value` as Markdown that renders as exactly that text, on one line (see the module doc)."""
    flat = plain(value, limit)
    out = []
    for i, char in enumerate(flat):
        if i == 0 and char in _LEADING:
            out.append(_LEADING[char])
        elif char in _ENTITIES:
            out.append(_ENTITIES[char])
        elif char == "_" and not (_word(flat, i - 1) and _word(flat, i + 1)):
            out.append("&#95;")
        elif char == "@":
            out.append("@" + _ZWJ)
        else:
            out.append(char)
    return "".join(out)


def plain(value: object, limit: int = 300) -> str:
    """Card text on one line: control characters and separators become spaces, invisible
    format characters (bidi overrides, zero-width) are dropped, long values are cut."""
    raw = value if isinstance(value, str) else str(value)
    kept = []
    for char in raw:
        category = unicodedata.category(char)
        if category in _SPACES:
            kept.append(" ")
        elif category not in _DROPPED:
            kept.append(char)
    flat = " ".join("".join(kept).split())
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return flat


def _word(text: str, index: int) -> bool:
    return 0 <= index < len(text) and text[index].isascii() and text[index].isalnum()


def _code(value: object, suffix: str = "") -> str:
    """A card value in a code span when it needs no escaping; escaped plain text otherwise."""
    text = md_text(value)
    return f"`{text}{suffix}`" if text and text == str(value) else text + suffix


def markdown(report: Report) -> str:
    title = f"## dvcckpt report: {_code(f'{report.base}..{report.head}')}"
    out = [MARKER, title, "", *_policy(report), *_unreadable(report)]
    if not report.entries:
        readable = "readable " if report.unreadable else ""
        none = f"No {readable}checkpoint cards were added or changed on this branch."
        return "\n".join([*out, none, ""])
    out.append(
        f"{len(report.entries)} checkpoint card(s) added or changed; metrics are compared "
        f"with the current **{md_text(report.reference_stage)}** holder on {_code(report.base)}."
    )
    for entry in report.entries:
        out += ["", f"### {md_text(entry.name)} ({entry.status})", ""]
        out += _provenance(entry)
        holder_name = _code(entry.holder.get("name")) if entry.holder else "`none`"
        stage = md_text(report.reference_stage)
        out += ["", f"**Metrics vs {stage} holder** ({holder_name})", ""]
        compared = ["metric", "this", stage, "Δ"] if entry.holder else ["metric", "this"]
        out.append(_md_table(compared, metric_deltas(entry.card, entry.holder)))
        trusted = not gates_distrusted(entry)
        if entry.gate_stage:
            out += ["", f"**Gates for {md_text(entry.gate_stage)}**", ""]
            if not trusted:
                out += ["❌ recorded by a promotion that does not verify (below): not trusted", ""]
            out.append(
                _md_table(
                    ["", "rule", "required", "actual"],
                    [
                        [
                            ("✅" if trusted else "⚠️") if g.get("verdict") == "pass" else "❌",
                            md_text(g.get("rule")),
                            md_text(g.get("required")),
                            md_text(g.get("actual")),
                        ]
                        for g in entry.gate_results
                    ],
                )
                if entry.gate_results
                else "_no gates defined_"
            )
        if entry.new_decisions:
            out += ["", "**Decisions on this branch**", ""]
            for index, decision in enumerate(entry.new_decisions):
                status = entry.verification[index] if index < len(entry.verification) else None
                out += _decision_lines(decision, status)
        if shows_lineage(entry):
            out += ["", "**Lineage**", "", "```mermaid", mermaid(entry.name, entry.lineage), "```"]
    return "\n".join(out) + "\n"


def shows_lineage(entry: Entry) -> bool:
    """Lineage is shown for a card with parents, or one promoted on the branch."""
    return bool(entry.card.get("parents")) or any(
        isinstance(d, Mapping) and d.get("verdict") == "promoted" for d in entry.new_decisions
    )


def gates_distrusted(entry: Entry) -> bool:
    """Gate results recorded by a promotion that is invalid (they may be forged)."""
    index = entry.gate_decision
    if index is None:
        return False
    status = entry.verification[index] if index < len(entry.verification) else None
    return status is None or status.status == "invalid"


def _policy(report: Report) -> list[str]:
    """The policy files the change edits, first thing under the title."""
    if report.policy_problem:
        reason = md_text(report.policy_problem)
        return [f"**⚠️ Policy changes could not be listed** ({reason}): review every file.", ""]
    if not report.policy_changes:
        return []
    shown = report.policy_changes[:POLICY_LIST_LIMIT]
    lines = [f"**{POLICY_TITLE}**", "", *(f"- {_code(path)}" for path in shown)]
    if len(report.policy_changes) > len(shown):
        lines.append(f"- … and {len(report.policy_changes) - len(shown)} more")
    return [*lines, ""]


def _unreadable(report: Report) -> list[str]:
    """Cards on the branch no reader accepts: they hold no stage and fail `check`."""
    if not report.unreadable:
        return []
    lines = ["**❌ Checkpoint cards that cannot be read** (they fail `dvcckpt check`)", ""]
    shown = report.unreadable[:POLICY_LIST_LIMIT]
    lines += [f"- {_code(path)}: {md_text(why, FREE_TEXT_LIMIT)}" for path, why in shown]
    if len(report.unreadable) > len(shown):
        lines.append(f"- … and {len(report.unreadable) - len(shown)} more")
    return [*lines, ""]


def _provenance(entry: Entry) -> list[str]:
    card = entry.card
    checkpoint = as_mapping(card.get("checkpoint"))
    code = as_mapping(card.get("code"))
    data = as_mapping(card.get("data"))
    seeds = as_mapping(card.get("seeds"))
    commit = _code(str(code.get("commit") or "unknown")[:12]) + (
        " (dirty)" if code.get("dirty") else ""
    )
    dataset = " ".join(str(x) for x in (data.get("dataset"), data.get("version")) if x)
    sha256 = _code(str(checkpoint.get("sha256", ""))[:16], "…")
    lines = [
        f"- model {_code(entry.model)}, phase {_code(checkpoint.get('phase'))}, step "
        f"{md_text(checkpoint.get('step', '?'))}, sha256 {sha256}",
        f"- code {commit}, data {_code(dataset or 'unknown')}, "
        f"seed {_code(seeds.get('seed', 'unknown'))}",
    ]
    if card.get("notes"):
        lines.append(f"- notes: {md_text(card['notes'], FREE_TEXT_LIMIT)}")
    return lines


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _decision_lines(decision: Any, status: DecisionStatus | None) -> list[str]:
    if not isinstance(decision, Mapping):
        return ["- (unreadable decision)", f"  - {_status(status)}"]
    who = md_text(as_mapping(decision.get("by")).get("name") or "?")
    stage = f" → **{md_text(decision['stage'])}**" if decision.get("stage") else ""
    verdict, at = md_text(decision.get("verdict") or "?"), md_text(decision.get("at"))
    text = f"- **{verdict}**{stage} by {who} at {at}"
    if decision.get("rationale"):
        text += f": {md_text(decision['rationale'], FREE_TEXT_LIMIT)}"
    lines = [text, f"  - {_status(status)}"]
    reason = md_text(decision.get("reason") or "", FREE_TEXT_LIMIT)
    if decision.get("override"):
        lines.append(f"  - ⚠️ **OVERRIDE** of failing gates: {reason}")
    elif reason:
        lines[0] += f": {reason}"
    return lines


def _status(status: DecisionStatus | None) -> str:
    """Whether the decision will count when the change merges (never ✅ without a check)."""
    if status is None:
        return "❌ invalid: not verified"
    if status.status == "invalid":
        return f"❌ invalid: {md_text(status.reason or 'unknown reason', FREE_TEXT_LIMIT)}"
    if status.status == "verified":
        return f"✅ verified (signed by {md_text(status.principal)})"
    return "unsigned"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    return table(header, rows, "md") if rows else "_none_"


def metric_deltas(card: Mapping[str, Any], holder: Mapping[str, Any] | None) -> list[list[str]]:
    """Markdown cells per metric: name and value, and the holder's value and the change
    when there is a holder to compare with."""
    rows = []
    for name, mine, theirs, delta in metric_rows(card, holder):
        cells = [md_text(name), number(mine)]
        rows.append([*cells, number(theirs), number(delta, signed=True)] if holder else cells)
    return rows


def metric_rows(
    card: Mapping[str, Any], holder: Mapping[str, Any] | None
) -> list[tuple[str, float | None, float | None, float | None]]:
    """(split.metric, this card's number, the holder's, the change) for every metric."""
    rows = []
    metrics_by_split = card.get("metrics")
    for split, metrics in (
        metrics_by_split if isinstance(metrics_by_split, Mapping) else {}
    ).items():
        for name, value in leaves(metrics):
            if value == {}:
                continue
            mine = metric_number(value)
            theirs = (
                metric_number(card_field(holder, f"metrics.{split}.{name}")) if holder else None
            )
            delta = mine - theirs if mine is not None and theirs is not None else None
            rows.append((f"{split}.{name}", mine, theirs, delta))
    return rows


_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/ ")
_MERMAID_WORDS = {
    "end", "graph", "flowchart", "subgraph", "style", "class", "classdef", "click",
    "linkstyle", "direction", "default", "call", "href",
}  # fmt: skip


def mermaid(root: str, edges: list[tuple[str, str, str]]) -> str:
    """Mermaid flowchart of lineage edges (a lone node when there are none)."""
    ids = _ids([root, *(name for child, _, parent in edges for name in (child, parent))])
    lines = ["flowchart BT"]
    for child, relation, parent in edges:
        label = _label(relation)
        arrow = f'-- "{label}" -->' if label else "-->"
        lines.append(f"    {_node(child, ids)} {arrow} {_node(parent, ids)}")
    if len(lines) == 1:
        lines.append(f"    {_node(root, ids)}")
    return "\n".join(lines)


def _label(text: str, limit: int = 120) -> str:
    """Only letters, digits and `-_.:/ ` survive: no quotes, brackets, backticks, newlines."""
    kept = "".join(c if c in _LABEL_CHARS else " " for c in str(text))
    return " ".join(kept.split())[:limit].strip()


def _ids(names: list[str]) -> dict[str, str]:
    """An ASCII node id per distinct name, never a Mermaid keyword, never shared by two names."""
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        if name in ids:
            continue
        ident = "".join(c if c.isascii() and c.isalnum() else "_" for c in name)[:80] or "node"
        if ident.lower() in _MERMAID_WORDS or not ident[0].isalpha():
            ident = f"n_{ident}"
        candidate, suffix = ident, 1
        while candidate in taken:
            suffix += 1
            candidate = f"{ident}_{suffix}"
        ids[name] = candidate
        taken.add(candidate)
    return ids


def _node(name: str, ids: dict[str, str]) -> str:
    return f'{ids[name]}["{_label(name) or "unnamed"}"]'
