"""Rows of the organisation's tables, built from the repository's catalog (already parsed).

Card versions come from the catalog's SQLite index in one query per publish,
the full card copied as the JSON text the catalog stores (no re-parsing, no
re-reading of git). Decisions are those a card version adds against the previous
version of the same card in the default branch's history; each carries the
verification status the stage replay gave it (`promotion.stages`, the one audit
reads). Stage events are that replay, in order, with who holds the stage after
each event. Every value that comes from a card is untrusted: coerced to the
column's type or null, never interpreted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dvcckpt.catalog import Catalog
from dvcckpt.core.decision import canonical_json
from dvcckpt.promotion import stages
from dvcckpt.publish.tables import CARD_VERSIONS, DECISIONS, STAGE_EVENTS, Column

NULL_BLOB = "0" * 40
_INT64 = (-(1 << 63), (1 << 63) - 1)
Rows = dict[str, list[Any]]

# One row per card version of the commits in scope (`Catalog.scope`), in history order.
_VERSIONS = """
SELECT c.sha, coalesce(k.blob, '{null}'), p.path, v.status, v.generation, v.committed,
       c.author, c.subject, k.name, k.model, k.phase, k.kind, k.step, k.created_at, k.error,
       b.card,
       json_extract(b.card, '$.checkpoint.epoch'), json_extract(b.card, '$.run.id'),
       json_extract(b.card, '$.run.name'), json_extract(b.card, '$.run.group'),
       json_extract(b.card, '$.checkpoint.sha256'), json_extract(b.card, '$.checkpoint.dvc.md5'),
       json_extract(b.card, '$.tags'), json_extract(b.card, '$.data'),
       json_type(b.card, '$.tombstone'), json_extract(b.card, '$.parents'),
       CASE WHEN json_type(b.card, '$.decisions') = 'array'
            THEN json_extract(b.card, '$.decisions') END
FROM versions v JOIN commits c ON c.id = v.commit_id JOIN paths p ON p.id = v.path_id
LEFT JOIN cards k ON k.id = v.card_id LEFT JOIN bodies b ON b.id = v.card_id
{scope}
ORDER BY v.generation, v.committed, c.sha, p.path
""".replace("{null}", NULL_BLOB)
# The version of a card just before one (by generation, then commit time), in scope.
_PREVIOUS = """
SELECT CASE WHEN json_type(b.card, '$.decisions') = 'array'
            THEN json_extract(b.card, '$.decisions') END
FROM versions v JOIN paths p ON p.id = v.path_id LEFT JOIN bodies b ON b.id = v.card_id
{scope}
WHERE p.path = ? AND (v.generation, v.committed) < (?, ?)
ORDER BY v.generation DESC, v.committed DESC LIMIT 1
"""


@dataclass
class WithDecisions:
    """A new card version that records decisions (for the `decisions` table)."""

    commit: str
    blob: str
    path: str
    generation: int
    committed: int
    name: str | None
    model: str | None
    sha256: str | None
    entries: list[Any] = field(default_factory=list)


def empty(columns: Sequence[Column]) -> Rows:
    return {name: [] for name, _, _ in columns}


def card_versions(
    catalog: Catalog, repo_id: str, commits: set[str], *, decisions_only: bool = False
) -> tuple[Rows, list[WithDecisions]]:
    """Rows for every card version of `commits`, and those of them that record decisions
    (`decisions_only`: only those, read without the others)."""
    out = empty(CARD_VERSIONS)
    decided: list[WithDecisions] = []
    if not commits:
        return out, decided
    scope = catalog.scope(commits)
    if decisions_only:
        scope += " WHERE json_type(b.card, '$.decisions') = 'array'"
    statement = _VERSIONS.replace("{scope}", scope)
    for row in catalog.sql(statement):
        (sha, blob, path, status, generation, committed, author, subject, name, model,
         phase, kind, step, created_at, error, card, epoch, run_id, run_name, run_group,
         sha256, md5, tags, data, tombstone, parents, decisions) = tuple(row)  # fmt: skip
        lineage = _list(parents)
        values = {
            "repo_id": repo_id, "commit": sha, "blob": blob, "path": path, "status": status,
            "generation": generation, "committed_at": _micros(committed), "author": author,
            "subject": subject, "name": _text(name), "model": _text(model),
            "phase": _text(phase), "kind": _text(kind), "step": _long(step),
            "epoch": _double(epoch), "run_id": _text(run_id), "run_name": _text(run_name),
            "run_group": _text(run_group), "created_at": _text(created_at),
            "sha256": _text(sha256), "dvc_md5": _text(md5), "finetuned_from": _finetuned(lineage),
            "tags": _strings(_list(tags)), "datasets": _datasets(data),
            "retired": (tombstone == "object") if card is not None else None,
            "card": card, "error": error, "parents": _parent_names(lineage),
            "dataset_version": _text(_object(data).get("version")),
        }  # fmt: skip
        for column, value in values.items():
            out[column].append(value)
        entries = _list(decisions)
        if entries:
            decided.append(WithDecisions(sha, blob, path, generation, committed, _text(name),
                                         _text(model), _text(sha256), entries))  # fmt: skip
    return out, decided


def decision_rows(
    catalog: Catalog,
    repo_id: str,
    decided: list[WithDecisions],
    branch_commits: set[str],
    judged: Iterable[stages.Decision],
) -> Rows:
    """One row per decision a new card version adds to the previous version of its card."""
    out = empty(DECISIONS)
    if not decided:
        return out
    verdicts = {(d.path, canonical_json(dict(d.entry))): d for d in judged}
    statement = _PREVIOUS.replace("{scope}", catalog.scope(branch_commits))
    for version in decided:
        found = catalog.sql(statement, (version.path, version.generation, version.committed))
        before = _list(found[0][0]) if found else []
        start = len(before) if version.entries[: len(before)] == before else 0
        for entry in version.entries[start:]:
            if isinstance(entry, Mapping):
                _add_decision(out, repo_id, version, entry, verdicts)
    return out


def _add_decision(
    out: Rows,
    repo_id: str,
    version: WithDecisions,
    entry: Mapping[str, Any],
    verdicts: Mapping[tuple[str, bytes], stages.Decision],
) -> None:
    judged = verdicts.get((version.path, canonical_json(dict(entry))))
    bound = _object(entry.get("card"))
    claimed = _object(entry.get("signature")).get("principal")
    values = {
        "repo_id": repo_id, "commit": version.commit, "path": version.path,
        "name": version.name, "model": version.model, "stage": _text(entry.get("stage")),
        "action": _text(entry.get("verdict")), "by": _person(entry.get("by")),
        "decided_at": _text(entry.get("at")), "reason": _reason(entry),
        "card_blob": version.blob, "sha256": _text(bound.get("sha256")) or version.sha256,
        "signer": (judged.principal if judged else None) or _text(claimed),
        "signature": judged.status if judged else "unreviewed",
        "problem": judged.reason if judged and not judged.counts else None,
        "decision": json.dumps(entry, ensure_ascii=False, default=str),
    }  # fmt: skip
    for column, value in values.items():
        out[column].append(value)


def stage_event_rows(
    repo_id: str, history: Sequence[stages.Decision], generations: Mapping[str, int]
) -> Rows:
    """The stage replay as rows: an archive or demotion without a stage once per stage it
    vacated; `holder` is who holds (model, stage) after the event."""
    out = empty(STAGE_EVENTS)
    holders: dict[tuple[str, str], stages.Decision] = {}
    for seq, decision in enumerate(history):
        before = dict(holders)
        if decision.counts:
            stages.apply(holders, decision)
        changed = sorted(k for k in before.keys() | holders.keys()
                         if before.get(k) is not holders.get(k))  # fmt: skip
        keys: list[tuple[str, str | None]] = list(changed) or [(decision.model, decision.stage)]
        for model, stage in keys:
            holder = holders.get((model, stage)) if stage is not None else None
            values = {
                "repo_id": repo_id, "commit": decision.commit,
                "generation": generations.get(decision.commit, decision.order), "seq": seq,
                "model": model, "stage": stage, "name": decision.name,
                "action": decision.verdict, "by": _person(decision.entry.get("by")),
                "at": _text(decision.entry.get("at")), "reason": _reason(decision.entry),
                "counts": decision.counts, "verified": decision.status,
                "problem": None if decision.counts else decision.reason,
                "holder": holder.name if holder else None,
            }  # fmt: skip
            for column, value in values.items():
                out[column].append(value)
    return out


def generations(catalog: Catalog, commits: Iterable[str]) -> dict[str, int]:
    """Each commit's generation as the catalog ordered it."""
    wanted = sorted(set(commits))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), 500):  # SQLite's bound on parameters
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        statement = f"SELECT sha, generation FROM commits WHERE sha IN ({marks})"
        found.update((sha, int(generation)) for sha, generation in catalog.sql(statement, chunk))
    return found


# -- untrusted values to column types ----------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _long(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and _INT64[0] <= value <= _INT64[1]:
        return value
    return None


def _double(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _micros(seconds: Any) -> int | None:
    value = _long(seconds)
    return value * 1_000_000 if value is not None and abs(value) < 10**11 else None


def _decoded(value: Any) -> Any:
    """A JSON value SQLite's json_extract returned as text (objects, arrays), decoded."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _list(value: Any) -> list[Any]:
    decoded = _decoded(value)
    return decoded if isinstance(decoded, list) else []


def _object(value: Any) -> Mapping[str, Any]:
    decoded = _decoded(value)
    return decoded if isinstance(decoded, Mapping) else {}


def _strings(values: Iterable[Any]) -> list[str] | None:
    found = [text for text in (_text(v) for v in values) if text is not None]
    return found or None


def _datasets(data: Any) -> list[str] | None:
    """data.dataset, then every split's path (the names a query asks "trained on" by)."""
    section = _object(data)
    found = [section.get("dataset")]
    splits = section.get("splits")
    for split in splits.values() if isinstance(splits, Mapping) else ():
        found.append(_object(split).get("path"))
    return _strings(dict.fromkeys(v for v in found if isinstance(v, str) and v))


def _parent_names(parents: list[Any]) -> list[str] | None:
    return _strings(_object(p).get("name") for p in parents)


def _finetuned(parents: list[Any]) -> str | None:
    for parent in parents:
        entry = _object(parent)
        if entry.get("relation") == "finetuned_from":
            return _text(entry.get("name"))
    return None


def _person(value: Any) -> str | None:
    person = _object(value)
    return _text(person.get("email") or person.get("name")) if person else _text(value)


def _reason(entry: Mapping[str, Any]) -> str | None:
    return _text(entry.get("rationale") or entry.get("reason"))
