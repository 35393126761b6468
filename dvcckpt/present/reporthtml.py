"""The review report (`promotion.report`) as one self-contained HTML page.

Rendered from the report's data with `present.html` (every card string is text, escaped
by the element builder), never from the Markdown: the page is a valid HTML5 document with
no script, no external resource and a Content-Security-Policy that forbids both. It shows
what the Markdown comment shows, in the same order and with the same verdicts: policy
files the change edits, unreadable cards, and per checkpoint its provenance, metrics
(against the reference stage's holder only when there is one), gate results, the
decisions the branch adds and whether each will count, and its lineage drawn as SVG.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from dvcckpt.present import lineage
from dvcckpt.present.html import Markup, dl, element, page, table
from dvcckpt.present.report import (
    FREE_TEXT_LIMIT,
    POLICY_LIST_LIMIT,
    POLICY_TITLE,
    as_mapping,
    gates_distrusted,
    metric_rows,
    plain,
    shows_lineage,
)
from dvcckpt.present.text import number

if TYPE_CHECKING:
    from dvcckpt.promotion.report import DecisionStatus, Entry, Report

# A long lineage scrolls sideways rather than shrinking its labels out of legibility.
STYLE = (
    "section.card h2{margin-top:.6em}ul.decisions>li{margin-bottom:.4em}"
    "figure.lineage{overflow-x:auto}figure.lineage svg{max-width:none}"
)


def render(report: Report) -> str:
    """The whole page."""
    span = f"{report.base}..{report.head}"
    body: list[Any] = [element("h1", "dvcckpt report: ", _code(span))]
    body += _policy(report)
    body += _unreadable(report)
    if not report.entries:
        readable = "readable " if report.unreadable else ""
        body.append(
            element("p", f"No {readable}checkpoint cards were added or changed on this branch.")
        )
    else:
        body.append(
            element(
                "p",
                f"{len(report.entries)} checkpoint card(s) added or changed; metrics are "
                "compared with the current ",
                element("strong", _t(report.reference_stage)),
                " holder on ",
                _code(report.base),
                ".",
            )
        )
        body += [_entry(report, entry) for entry in report.entries]
    return page(f"dvcckpt report {span}", body, style=STYLE)


def _t(value: object, limit: int = 300) -> str:
    """Card text as the Markdown comment shows it: one line, no invisible characters, cut
    to `limit` (the element builder escapes it)."""
    return plain(value, limit)


def _free(value: object) -> str:
    """A rationale, reason or note."""
    return plain(value, FREE_TEXT_LIMIT)


def _code(value: object) -> Markup:
    return element("code", _t(value))


def _policy(report: Report) -> list[Markup]:
    if report.policy_problem:
        return [
            element(
                "p",
                element("strong", "⚠ Policy changes could not be listed"),
                f" ({_free(report.policy_problem)}): review every file.",
                class_="warn",
            )
        ]
    if not report.policy_changes:
        return []
    return [
        element("h2", POLICY_TITLE.replace("\ufe0f", ""), class_="warn"),
        _bounded_list(_code(path) for path in report.policy_changes),
    ]


def _unreadable(report: Report) -> list[Markup]:
    if not report.unreadable:
        return []
    items = ([_code(path), ": ", _free(why)] for path, why in report.unreadable)
    return [
        element(
            "h2", "✗ Checkpoint cards that cannot be read (they fail dvcckpt check)", class_="fail"
        ),
        _bounded_list(items),
    ]


def _bounded_list(items: Iterable[Any]) -> Markup:
    """At most POLICY_LIST_LIMIT items, then how many more there are."""
    every = list(items)
    shown: list[Any] = every[:POLICY_LIST_LIMIT]
    if len(every) > len(shown):
        shown.append(f"… and {len(every) - len(shown)} more")
    return element("ul", [element("li", item) for item in shown])


def _entry(report: Report, entry: Entry) -> Markup:
    parts: list[Any] = [
        element("h2", _t(entry.name), " ", element("span", f"({entry.status})", class_="muted")),
        _provenance(entry),
        *_metrics(report, entry),
        *_gates(entry),
        *_decisions(entry),
    ]
    if shows_lineage(entry):
        parts += [
            element("h3", "Lineage"),
            element("figure", lineage.svg(entry.name, entry.lineage), class_="lineage"),
        ]
    return element("section", parts, class_="card")


def _provenance(entry: Entry) -> Markup:
    card = entry.card
    checkpoint, code = as_mapping(card.get("checkpoint")), as_mapping(card.get("code"))
    data, seeds = as_mapping(card.get("data")), as_mapping(card.get("seeds"))
    commit = str(code.get("commit") or "unknown")[:12] + (" (dirty)" if code.get("dirty") else "")
    dataset = " ".join(str(x) for x in (data.get("dataset"), data.get("version")) if x)
    pairs: list[tuple[str, Any]] = [
        ("model", _code(entry.model)),
        ("phase", _code(checkpoint.get("phase"))),
        ("step", _t(checkpoint.get("step", "?"))),
        ("sha256", _code(str(checkpoint.get("sha256", ""))[:16] + "…")),
        ("code", _code(commit)),
        ("data", _code(dataset or "unknown")),
        ("seed", _code(seeds.get("seed", "unknown"))),
        ("card", _code(entry.path)),
    ]
    if card.get("notes"):
        pairs.append(("notes", _free(card["notes"])))
    return dl(pairs)


def _metrics(report: Report, entry: Entry) -> list[Markup]:
    stage = _t(report.reference_stage)
    holder = entry.holder
    heading = element(
        "h3",
        f"Metrics vs {stage} holder ",
        _code(holder.get("name")) if holder else f"(no {stage} holder to compare with)",
    )
    rows = metric_rows(entry.card, holder)
    if not rows:
        return [heading, element("p", "none", class_="empty")]
    header = ["metric", "this", stage, "Δ"] if holder else ["metric", "this"]
    cells = [
        [name, number(mine), number(theirs), number(delta, signed=True)][: len(header)]
        for name, mine, theirs, delta in rows
    ]
    return [heading, table(header, cells, numeric=range(1, len(header)))]


def _gates(entry: Entry) -> list[Markup]:
    if not entry.gate_stage:
        return []
    out = [element("h3", f"Gates for {_t(entry.gate_stage)}")]
    trusted = not gates_distrusted(entry)
    if not trusted:
        out.append(
            element(
                "p",
                "✗ recorded by a promotion that does not verify (below): not trusted",
                class_="fail",
            )
        )
    if not entry.gate_results:
        return [*out, element("p", "no gates defined", class_="empty")]
    rows = []
    for result in entry.gate_results:
        passed = result.get("verdict") == "pass"
        verdict = (
            element("span", "✓ pass", class_="pass")
            if passed and trusted
            else element("span", "⚠ pass (untrusted)", class_="warn")
            if passed
            else element("span", f"✗ {_t(result.get('verdict') or 'fail')}", class_="fail")
        )
        rows.append([verdict, *(_t(result.get(k)) for k in ("rule", "required", "actual"))])
    return [*out, table(["", "rule", "required", "actual"], rows)]


def _decisions(entry: Entry) -> list[Markup]:
    if not entry.new_decisions:
        return []
    items = []
    for index, decision in enumerate(entry.new_decisions):
        status = entry.verification[index] if index < len(entry.verification) else None
        items.append(element("li", _decision(decision), element("br"), _status(status)))
    return [element("h3", "Decisions on this branch"), element("ul", items, class_="decisions")]


def _decision(decision: Any) -> list[Any]:
    if not isinstance(decision, Mapping):
        return ["(unreadable decision)"]
    who = as_mapping(decision.get("by")).get("name") or "?"
    parts: list[Any] = [element("strong", _t(decision.get("verdict") or "?"))]
    if decision.get("stage"):
        parts += [" → ", element("strong", _t(decision["stage"]))]
    parts.append(f" by {_t(who)} at {_t(decision.get('at'))}")
    if decision.get("rationale"):
        parts.append(f": {_free(decision['rationale'])}")
    reason = _free(decision.get("reason") or "")
    if decision.get("override"):
        parts += [
            element("br"),
            element("strong", "⚠ OVERRIDE of failing gates", class_="warn"),
            f": {reason}",
        ]
    elif reason:
        parts.append(f": {reason}")
    return parts


def _status(status: DecisionStatus | None) -> Markup:
    """Whether the decision will count when the change merges (never verified without a check)."""
    if status is None:
        return element("span", "✗ invalid: not verified", class_="fail")
    if status.status == "invalid":
        why = _free(status.reason or "unknown reason")
        return element("span", f"✗ invalid: {why}", class_="fail")
    if status.status == "verified":
        return element("span", f"✓ verified (signed by {_t(status.principal)})", class_="pass")
    return element("span", "unsigned", class_="muted")
