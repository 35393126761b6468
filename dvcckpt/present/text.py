"""Human-readable rendering of cards for the terminal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dvcckpt.core import layout
from dvcckpt.core.display import visible
from dvcckpt.core.fields import is_estimate, leaves

_IDENTITY = ("schema", "name", "model", "checkpoint")
_LIST_SECTIONS = ("parents", "artifacts", "evaluations", "decisions")


def card_text(data: Mapping[str, Any]) -> str:
    lines = [str(data["name"]), *_identity(data)]
    for key, value in data.items():
        if key in _IDENTITY or value in (None, {}, []):
            continue
        lines.append("")
        if key == "metrics" and isinstance(value, Mapping):
            lines.extend(_metrics_table(value))
        elif key == "evaluations" and isinstance(value, list):
            lines.extend(_evaluations(value))
        elif key in _LIST_SECTIONS and isinstance(value, list):
            lines.append(key)
            lines.extend(f"  - {_inline(item)}" for item in value)
        elif key == "tags":
            lines.append(f"tags  {', '.join(map(str, value))}")
        elif isinstance(value, Mapping):
            lines.append(key)
            lines.extend(_aligned(dict(leaves(value))))
        else:
            lines.append(f"{key}  {value}")
    return "\n".join(lines) + "\n"


def _identity(data: Mapping[str, Any]) -> list[str]:
    ck = data["checkpoint"]
    where = f"{ck['path']} ({ck['format']}, {human_size(ck['size'])}"
    where += f", {ck['files']} files)" if ck.get("files", 1) > 1 else ")"
    position = " · ".join(
        f"{label} {ck[label]}" for label in ("step", "epoch") if ck.get(label) is not None
    )
    created_by = ck.get("created_by") or {}
    who = " ".join(
        part
        for part in (
            created_by.get("name"),
            f"<{created_by['email']}>" if created_by.get("email") else None,
        )
        if part
    )
    rows = {
        "model": data["model"],
        "checkpoint": where,
        "phase/kind": f"{ck['phase']} / {ck['kind']}" + (f" · {position}" if position else ""),
        "sha256": ck["sha256"],
        "dvc": f"md5 {ck['dvc']['md5']} ({ck['dvc']['file']})",
        "created": f"{ck.get('created_at', '?')}" + (f" by {who}" if who else ""),
        "schema": data["schema"]["version"],
    }
    return _aligned(rows)


def _aligned(rows: Mapping[str, Any]) -> list[str]:
    width = max((len(k) for k in rows), default=0)
    return [f"  {key.ljust(width)}  {scalar(value)}" for key, value in rows.items()]


def _metrics_table(metrics: Mapping[str, Any], title: str = "metrics") -> list[str]:
    """One row per metric, one column per split; an estimate reads `0.86 [0.84, 0.88]`
    and the interval methods follow the table."""
    splits = list(metrics)
    by_metric: dict[str, dict[str, Any]] = {}
    for split in splits:
        group = metrics[split]
        pairs = leaves(group) if isinstance(group, Mapping) else [("", group)]
        for name, value in pairs:
            by_metric.setdefault(name, {})[split] = value
    cells = [
        [f"  {name}", *(_shown(row.get(s, "")) for s in splits)] for name, row in by_metric.items()
    ]
    header = [title, *map(str, splits)]
    widths = [max(len(str(r[i])) for r in [header, *cells]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *cells]
    ]
    return lines + _methods(v for row in by_metric.values() for v in row.values())


def _methods(values: Any) -> list[str]:
    """`  intervals: bootstrap`: how the estimates' intervals were made, once per table."""
    methods = {str(v["method"]) for v in values if is_estimate(v) and v.get("method")}
    return [f"  intervals: {', '.join(sorted(methods))}"] if methods else []


def _shown(value: Any) -> str:
    """A card value at full precision; an estimate as `0.86 [0.84, 0.88]`."""
    if isinstance(value, Mapping) and is_estimate(value):
        return estimate_text(value, str)
    return scalar(value)


def estimate_text(value: Mapping[str, Any], show: Any = None) -> str:
    """A metric with its interval, `0.86 [0.84, 0.88]` (the method is said elsewhere)."""
    show = show or number
    text = str(show(value["value"]))
    ci = value.get("ci")
    if isinstance(ci, list | tuple) and len(ci) == 2:
        text += f" [{show(ci[0])}, {show(ci[1])}]"
    return text


_EVALUATION_HEAD = ("at", "split", "by", "step", "metrics")


def _evaluations(records: list[Any]) -> list[str]:
    """Evaluation history, oldest first: when, which split, by whom, how, and the metrics."""
    lines = [f"evaluations ({len(records)}, oldest first)"]
    for record in records:
        if not isinstance(record, Mapping):
            lines.append(f"  - {_inline(record)}")
            continue
        head = [str(record.get("at") or "?"), str(record.get("split") or "?")]
        if record.get("by"):
            head.append(f"by {_person(record['by'])}")
        if record.get("step") is not None:
            head.append(f"step {record['step']}")
        lines.append("  " + "  ".join(head))
        metrics = record.get("metrics")
        values = dict(leaves(metrics)) if isinstance(metrics, Mapping) else {}
        rows = {"protocol": record["protocol"]} if record.get("protocol") else {}
        rows |= {name: _shown(value) for name, value in values.items()}
        rows |= {k: v for k, v in record.items() if k not in (*_EVALUATION_HEAD, "protocol")}
        lines.extend(f"  {line}" for line in [*_aligned(rows), *_methods(values.values())])
    return lines


def _person(value: Any) -> str:
    if not isinstance(value, Mapping):
        return str(value)
    email = f"<{value['email']}>" if value.get("email") else ""
    return " ".join(part for part in (str(value.get("name") or ""), email) if part) or "?"


def scalar(value: Any) -> str:
    if isinstance(value, Mapping) and is_estimate(value):
        text = estimate_text(value, str)
        return text + (f" ({value['method']})" if value.get("method") else "")
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(scalar(v) for v in value) if value else "none"
    if isinstance(value, Mapping):
        return _inline(value)
    return str(value)


def _inline(item: Any) -> str:
    if isinstance(item, Mapping):
        return ", ".join(f"{k}={scalar(v)}" for k, v in leaves(item))
    return str(item)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def added_summary(data: Mapping[str, Any], card_path: Any) -> str:
    ck = data["checkpoint"]
    code = data.get("code", {})
    commit = (code.get("commit") or "no commit yet")[:12] + (
        " (dirty)" if code.get("dirty") else ""
    )
    rows = {
        "card": str(card_path),
        "checkpoint": f"{ck['path']} ({human_size(ck['size'])})",
        "sha256": ck["sha256"],
        "code": commit,
    }
    lines = [f"registered {data['name']}", *_aligned(rows)]
    lines.append("next: git commit -m 'Add checkpoint' && dvc push")
    return "\n".join(lines)


def doctor_table(results: Any, fix_for: Any) -> str:
    if not results:
        return "no cards found"
    lines = []
    for result in results:
        if result.error:
            lines.append(f"{result.card}: unreadable: {result.error}")
        elif result.missing:
            lines.append(f"{result.name} ({result.card}) misses {len(result.missing)}:")
            lines.extend(f"  - {name}: {fix_for(name)}" for name in result.missing)
        else:
            lines.append(f"{result.name} ({result.card}): complete")
    cards = [r for r in results if layout.is_card(r.card)]
    complete = sum(1 for r in cards if not r.missing and not r.error)
    lines.append(f"{complete} of {len(cards)} card(s) have every recommended field")
    return "\n".join(lines)


def table(header: list[str], rows: list[list[str]], fmt: str | None = None) -> str:
    """Aligned text (default), CSV or Markdown; every cell made `visible`."""
    header = [visible(str(cell)) for cell in header]
    rows = [[visible(str(cell)) for cell in row] for row in rows]
    if fmt == "csv":
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return buffer.getvalue()
    if fmt == "md":
        escape = [[cell.replace("|", "\\|") for cell in row] for row in rows]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in escape])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def number(value: Any, signed: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:+.4g}" if signed else f"{value:.4g}"
    return f"{value:+}" if signed and isinstance(value, int) else str(value)


def gate_table(evaluation: Any) -> str:
    marks = {"pass": "✓ pass", "fail": "✗ fail", "missing": "✗ missing"}
    if not evaluation.results:
        return f"no gates defined for {evaluation.model} → {evaluation.stage}"
    rows = [[r.rule, r.required, r.actual, marks[r.verdict]] for r in evaluation.results]
    title = f"{evaluation.name} → {evaluation.stage}"
    if evaluation.holder:
        title += f" (current holder: {evaluation.holder})"
    return title + "\n" + table(["rule", "required", "actual", "verdict"], rows)


def stage_table(holders: Any, order: Any, history: Any = None) -> str:
    models = sorted({model for model, _ in holders})
    if not models and not history:
        return "no stage holders yet: dvcckpt promote NAME --to STAGE --rationale TEXT"
    rows = []
    for model in models:
        for stage in order:
            decision = holders.get((model, stage))
            if decision:
                entry = decision.entry
                who = (entry.get("by") or {}).get("name") or "?"
                flag = " (override)" if entry.get("override") else ""
                rows.append(
                    [
                        model,
                        stage,
                        decision.name + flag,
                        str(entry.get("at", "")),
                        who,
                        str(entry.get("rationale") or entry.get("reason") or ""),
                    ]
                )
    out = table(["model", "stage", "holder", "since", "by", "why"], rows) if rows else "no holders"
    if history:
        lines = [
            f"{d.commit[:8]}  {d.verdict:<9} {d.stage or '-':<11} {d.name}  "
            f"{(d.entry.get('by') or {}).get('name', '?')}: {d.entry.get('rationale') or d.entry.get('reason') or ''}"
            + ("" if d.counts else f"  [INVALID, ignored: {d.reason}]")
            for d in history
        ]
        out += "\n\nhistory (oldest first)\n" + "\n".join(lines)
    return out


def audit_table(rows: list[dict[str, Any]], broken: list[str]) -> str:
    if not rows:
        return "no decisions on the main branch yet"
    body = [
        [
            r["commit"][:8],
            r["card"],
            r["stage"] or "-",
            r["verdict"] + (" (override)" if r["override"] else ""),
            r["principal"] or r["by"] or "?",
            str(r["at"] or ""),
            r["status"] + (f": {r['reason']}" if r["reason"] else ""),
        ]
        for r in rows
    ]
    out = table(["commit", "card", "stage", "verdict", "who", "when", "status"], body)
    return "\n".join([out, *(f"broken holder: {line}" for line in broken)])
