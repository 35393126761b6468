"""What a decision is bound to and what its signature covers: pure functions over cards.

A decision names one card version (its binding: name, path, sha256, DVC md5 and
a digest of the card's immutable sections, metrics included). The signature
covers a canonical payload of the whole decision (binding, stage, verdict, gate
results, gates.yaml blob id, time, rationale, principal), so editing any of
them afterwards, or moving the decision to another card, breaks it.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from dvcckpt.core import migrations

NAMESPACE = "dvcckpt"
PAYLOAD_HEADER = b"dvcckpt-decision-v1\n"
# Sections that may change after a card is committed; everything else is bound.
MUTABLE_SECTIONS = ("evaluations", "decisions", "tags", "artifacts", "notes", "tombstone")
COUNTED_VERDICTS = ("promoted", "rejected", "archived", "demoted")


def canonical_json(value: Any) -> bytes:
    """One byte string per value: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def immutable_digest(card: Mapping[str, Any]) -> str:
    """sha256 over the card's immutable sections (after upgrading it to the current schema)."""
    upgraded = copy.deepcopy(dict(card))
    if migrations.needs_migration(upgraded):
        migrations.migrate(upgraded)
    bound = {
        key: value
        for key, value in upgraded.items()
        if key not in MUTABLE_SECTIONS and not str(key).startswith("x-")
    }
    return hashlib.sha256(canonical_json(bound)).hexdigest()


def binding(card: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The card version a decision is about (`path`: the card's repository path)."""
    meta = card.get("checkpoint")
    meta = meta if isinstance(meta, Mapping) else {}
    dvc = meta.get("dvc")
    dvc = dvc if isinstance(dvc, Mapping) else {}
    return {
        "name": str(card.get("name")),
        "path": path,
        "sha256": str(meta.get("sha256")),
        "md5": dvc.get("md5"),
        "digest": immutable_digest(card),
    }


def payload(decision: Mapping[str, Any]) -> bytes:
    """The bytes a decision's signature covers: every field except the signature itself."""
    signed = {key: value for key, value in decision.items() if key != "signature"}
    principal = (decision.get("signature") or {}).get("principal")
    return PAYLOAD_HEADER + canonical_json({"decision": signed, "principal": principal})
