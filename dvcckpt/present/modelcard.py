"""`dvcckpt card`: a model card (README) from a checkpoint card.

Follows the audit tip "state hypothesis, data version, code commit, gates
passed and known trade-offs", with Hugging Face front matter (`model-index`
holding the metrics) so it reads well on the Hub.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from dvcckpt.adapters import yamldoc
from dvcckpt.core import resources
from dvcckpt.core.fields import leaves
from dvcckpt.core.fields import number as metric_number
from dvcckpt.present.text import number, table


def render(card: Mapping[str, Any]) -> str:
    meta = card.get("checkpoint", {})
    code, data, run = card.get("code") or {}, card.get("data") or {}, card.get("run") or {}
    promotions = [d for d in card.get("decisions") or [] if d.get("verdict") == "promoted"]
    last = promotions[-1] if promotions else None
    env = card.get("env") or {}
    fill = {
        "front_matter": yamldoc.dump(_front_matter(card)).rstrip(),
        "name": card["name"],
        "summary": card.get("notes")
        or f"Checkpoint of `{card['model']}` at step {meta.get('step', '?')}.",
        "hypothesis": run.get("hypothesis") or "not recorded",
        "decision": _decision(last),
        "gates": _gates(last),
        "model": card["model"],
        "path": meta.get("path"),
        "sha256": meta.get("sha256"),
        "repo": code.get("repo") or "this repository",
        "commit": code.get("commit") or "unknown",
        "dataset": " ".join(str(x) for x in (data.get("dataset"), data.get("version")) if x)
        or "not recorded",
        "seed": (card.get("seeds") or {}).get("seed", "not recorded"),
        "environment": ", ".join(
            f"{k} {v}"
            for k, v in {"python": env.get("python"), **(env.get("libraries") or {})}.items()
            if v
        )
        or "not recorded",
        "metrics": _metrics_table(card.get("metrics") or {}),
        "tradeoffs": _tradeoffs(card, last),
    }
    template = resources.template_path("model_card.md").read_text(encoding="utf-8")
    return string.Template(template).safe_substitute(fill)


def _front_matter(card: Mapping[str, Any]) -> dict[str, Any]:
    results = []
    task = (card.get("run") or {}).get("task") or "other"
    dataset = (card.get("data") or {}).get("dataset") or "unknown"
    for split, metrics in (card.get("metrics") or {}).items():
        values = [
            {"type": name, "value": value, "name": f"{split} {name}"}
            for name, value in _flat(metrics)
            if value is not None
        ]
        if values:
            results.append(
                {
                    "task": {"type": task},
                    "dataset": {"name": dataset, "type": dataset, "split": split},
                    "metrics": values,
                }
            )
    front: dict[str, Any] = {"tags": ["dvcckpt", *(card.get("tags") or [])]}
    if results:
        front["model-index"] = [{"name": card["name"], "results": results}]
    return front


def _flat(metrics: Mapping[str, Any]) -> list[tuple[str, float | None]]:
    return [(name, metric_number(value)) for name, value in leaves(metrics) if value != {}]


def _metrics_table(metrics: Mapping[str, Any]) -> str:
    rows = [
        [split, name, number(value)] for split, m in metrics.items() for name, value in _flat(m)
    ]
    return table(["split", "metric", "value"], rows, "md") if rows else "_none recorded_"


def _decision(last: Mapping[str, Any] | None) -> str:
    if last is None:
        return "not promoted"
    who = (last.get("by") or {}).get("name") or "?"
    return (
        f"promoted to {last.get('stage')} by {who} at {last.get('at')}: {last.get('rationale', '')}"
    )


def _gates(last: Mapping[str, Any] | None) -> str:
    if last is None or not last.get("gates"):
        return "none evaluated"
    passed = [g["rule"] for g in last["gates"] if g.get("verdict") == "pass"]
    failed = [g["rule"] for g in last["gates"] if g.get("verdict") != "pass"]
    text = ", ".join(passed) or "none"
    return text + (f" (overridden: {', '.join(failed)})" if failed else "")


def _tradeoffs(card: Mapping[str, Any], last: Mapping[str, Any] | None) -> str:
    notes = []
    if last and last.get("override"):
        notes.append(f"- Promoted with failing gates overridden: {last.get('reason')}")
    resources_ = card.get("resources") or {}
    if "latency_ms_p95" in resources_:
        notes.append(f"- p95 latency {number(resources_['latency_ms_p95'])} ms")
    if card.get("notes"):
        notes.append(f"- {card['notes']}")
    return "\n".join(notes) or "None recorded."
