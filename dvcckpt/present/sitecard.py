"""A checkpoint's page of the catalog site: its card rendered readably, evaluations,
gate results per stage, decisions, lineage and the model card.

Every value comes from a card, which anyone who can open a pull request writes:
all of it goes through `present.html` (escaped text, links only for http(s) URLs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dvcckpt.core.fields import is_estimate, leaves
from dvcckpt.present import lineage as diagram
from dvcckpt.present.html import Markup, dl, element, esc, join, link, page, table
from dvcckpt.present.queries import value_cell
from dvcckpt.present.sitemodel import person
from dvcckpt.present.sitepage import Links, entries, footer, nav
from dvcckpt.present.sitepage import section as card_section
from dvcckpt.present.text import scalar

if TYPE_CHECKING:
    from dvcckpt.publish.site import Checkpoint, Model, Site

MAX_VALUE = 500  # characters of one value shown
MAX_ROWS = 200  # rows of one section shown
# Sections shown as their own headed lists, in this order; the rest follow under "Other".
SECTIONS = ("params", "data", "seeds", "code", "env", "resources", "run")
_SHOWN_ELSEWHERE = {"schema", "name", "model", "checkpoint", "metrics", "evaluations",
                    "decisions", "tags", "notes", "parents", "tombstone", *SECTIONS}  # fmt: skip


def checkpoint_page(site: Site, model: Model, checkpoint: Checkpoint, links: Links) -> str:
    card, name = checkpoint.card, checkpoint.version.name or "?"
    body: list[object] = [element("h1", name), *_summary(checkpoint, model, links)]
    if card.get("notes"):
        body.append(element("p", _cut(card["notes"], 2000)))
    body += [element("h2", "Metrics"), metrics_table(card.get("metrics"))]
    body += [element("h2", "Evaluations"), evaluations(card.get("evaluations"))]
    body += [element("h2", "Gates"), *gate_results(site, checkpoint)]
    body += [element("h2", "Decisions on this card"), decisions(card.get("decisions"))]
    body += [
        element("h2", "Lineage"),
        lineage(name, checkpoint.lineage, links, checkpoint.lineage_left_out),
    ]
    for section in SECTIONS:
        if isinstance(card.get(section), Mapping) and card[section]:
            body += [element("h2", section.capitalize()), mapping(card[section])]
    rest = {k: v for k, v in card.items() if k not in _SHOWN_ELSEWHERE}
    if rest:
        body += [element("h2", "Other fields"), mapping(rest)]
    body += [element("h2", "Model card"), _model_card(checkpoint), footer(site)]
    return page(f"{name}: checkpoint", body, nav=nav("../", model.name, links))


def _summary(checkpoint: Checkpoint, model: Model, links: Links) -> list[Markup]:
    version, card = checkpoint.version, checkpoint.card
    meta, tags = card_section(card, "checkpoint"), entries(card, "tags")
    pairs: list[tuple[object, object]] = [
        ("model", link(model.name, "../" + links.models[model.name])),
        ("holds", ", ".join(checkpoint.holds) or "no stage"),
        ("phase", version.phase or ""),
        ("step", "" if version.step is None else str(version.step)),
        ("epoch", _cut(meta.get("epoch", ""))),
        ("card", element("code", version.path)),
        ("checkpoint", element("code", _cut(meta.get("path", "")))),
        ("sha256", element("code", _cut(meta.get("sha256", "")))),
        ("created", _cut(version.created_at or "")),
        ("commit", join([element("code", version.sha[:12]), f" by {version.author}"])),
        ("tags", join(element("span", _cut(t, 80), class_="tag") for t in tags[:50])),
    ]
    out = [dl([(k, v) for k, v in pairs if v not in ("", None)])]
    tombstone = card.get("tombstone")
    if tombstone is not None:
        out.append(element("p", f"Retired: {_cut(scalar(tombstone))}", class_="warn"))
    return out


def metrics_table(metrics: Any) -> Markup:
    """One row per metric: split, name, value (`0.86 [0.84, 0.88]`), method."""
    if not isinstance(metrics, Mapping) or not metrics:
        return element("p", "No metrics recorded.", class_="empty")
    rows: list[list[object]] = []
    for split, section in metrics.items():
        if not isinstance(section, Mapping):
            rows.append([str(split), "", _cut(value_cell(section)), ""])
            continue
        for metric, value in leaves(section):
            method = value.get("method") if is_estimate(value) else None
            rows.append([str(split), metric, _cut(value_cell(value)), _cut(method or "")])
    return table(["split", "metric", "value", "method"], rows[:MAX_ROWS], numeric=[2])


def evaluations(records: Any) -> Markup:
    if not isinstance(records, list) or not records:
        return element("p", "No evaluations recorded.", class_="empty")
    rows: list[list[object]] = []
    for record in records[:MAX_ROWS]:
        if not isinstance(record, Mapping):
            rows.append(["", "", "", "", _cut(scalar(record))])
            continue
        values = record.get("metrics")
        shown = dict(leaves(values)) if isinstance(values, Mapping) else {}
        rows.append(
            [
                _cut(record.get("at") or "?"),
                _cut(record.get("split") or "?"),
                person(record.get("by")),
                _cut(record.get("protocol") or ""),
                join((f"{k} = {value_cell(v)}" for k, v in shown.items()), "; "),
            ]
        )
    return table(["at", "split", "by", "protocol", "metrics"], rows)


def gate_results(site: Site, checkpoint: Checkpoint) -> list[Markup]:
    """Each stage's gates evaluated as `dvcckpt gate` does (regressions vs. the holder)."""
    if site.gates_problem:
        return [element("p", f"gates.yaml cannot be read: {site.gates_problem}", class_="fail")]
    if not site.has_gates:
        return [element("p", "This repository defines no gates (gates.yaml).", class_="empty")]
    out = []
    for stage, results in checkpoint.gates.items():
        if not results:
            out.append(element("h3", f"{stage}: no gates apply", class_="muted"))
            continue
        baseline = checkpoint.baselines.get(stage)
        passed = sum(r.get("verdict") == "pass" for r in results)
        verdict = "pass" if passed == len(results) else "fail"
        title = f"{stage}: {passed} of {len(results)} gate(s) pass"
        if baseline:
            title += f" (regressions against the {stage} holder {baseline})"
        out.append(element("h3", title, class_=verdict))
        rows = [
            [
                element("span", _mark(r.get("verdict")), class_=_tone(r.get("verdict"))),
                r.get("rule", ""),
                r.get("required", ""),
                r.get("actual", ""),
            ]
            for r in results
        ]
        out.append(table(["", "rule", "required", "actual"], rows))
    return out


def _mark(verdict: Any) -> str:
    return {"pass": "✔ pass", "fail": "✘ fail"}.get(str(verdict), f"✘ {verdict}")


def _tone(verdict: Any) -> str:
    return "pass" if verdict == "pass" else "fail"


def decisions(entries: Any) -> Markup:
    """The decisions as recorded on the card (whether they count: the model's stage history)."""
    if not isinstance(entries, list) or not entries:
        return element("p", "No decisions recorded on this card.", class_="empty")
    rows: list[list[object]] = []
    for entry in entries[:MAX_ROWS]:
        if not isinstance(entry, Mapping):
            rows.append(["", _cut(scalar(entry)), "", "", ""])
            continue
        why = "; ".join(str(entry[k]) for k in ("rationale", "reason") if entry.get(k))
        signed = entry.get("signature")
        principal = signed.get("principal") if isinstance(signed, Mapping) else None
        rows.append(
            [
                _cut(entry.get("at") or ""),
                _cut(f"{entry.get('verdict') or '?'} {entry.get('stage') or ''}".strip()),
                person(entry.get("by")),
                _cut(why, 800),
                _cut(f"signed by {principal}" if principal else "unsigned"),
            ]
        )
    return table(["at", "decision", "by", "why", "signature (as recorded)"], rows)


def lineage(
    name: str, edges: list[tuple[str, str, str]], links: Links, left_out: int = 0
) -> Markup:
    """The diagram and the list of at most `present.lineage.MAX_EDGES` edges (the site
    gathers no more), saying how many parent links were left out."""
    if not edges:
        return element("p", "No parents recorded.", class_="empty")
    left_out += max(len(edges) - diagram.MAX_EDGES, 0)
    edges = edges[: diagram.MAX_EDGES]
    items = [
        element("li", links.checkpoint(child), f" {relation or 'from'} ", links.checkpoint(p))
        for child, relation, p in edges
    ]
    if left_out:
        items.append(element("li", f"… and {left_out} more parent link(s), not listed"))
    listed = element("ul", items)
    # The diagram (`present.lineage`, shared with `report --format html`); the list below
    # it links every checkpoint the site has a page for.
    pages = {n: "../" + links.names[n] for edge in edges for n in (edge[0], edge[2])
             if n in links.names and n != name}  # fmt: skip
    return element("div", element("figure", diagram.svg(name, edges, pages)), listed)


def mapping(section: Mapping[str, Any]) -> Markup:
    """A card section as a definition list of its leaves (`a.b` = value)."""
    pairs = [(key, _value(value)) for key, value in list(leaves(section))[:MAX_ROWS]]
    return dl(pairs)


def _value(value: Any) -> Markup:
    text = _cut(value_cell(value) if not isinstance(value, str) else value)
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return link(text, value)
    return esc(text)


def _model_card(checkpoint: Checkpoint) -> Markup:
    if checkpoint.model_card is None:
        why = checkpoint.model_card_problem or "no model card"
        return element("p", why, class_="empty")
    note = element(
        "p",
        "As ",
        element("code", "dvcckpt card"),
        " writes it (README.md for the Hugging Face Hub):",
    )
    return element("div", note, element("pre", checkpoint.model_card))


def _cut(value: Any, limit: int = MAX_VALUE) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
