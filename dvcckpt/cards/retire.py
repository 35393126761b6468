"""Retiring a checkpoint: its card stays in history as a tombstone.

Cards are never deleted (the hook refuses it); a tombstone keeps identity,
hashes and provenance, adds who retired it, when and why, and lets the `.dvc`
pointer go so the data can be garbage-collected.
"""

from __future__ import annotations

from dvcckpt.adapters import capture
from dvcckpt.adapters import git as vcs
from dvcckpt.cards import card, lookup
from dvcckpt.errors import StateError
from dvcckpt.project import Project


def retire(project: Project, reference: str, reason: str, keep_pointer: bool = False) -> card.Card:
    found = lookup.resolve(project, reference)
    assert found.path is not None
    editable = card.read(found.path, project.config.card_max_bytes, editable=True)
    if editable.document.get("tombstone"):
        raise StateError(f"{found.name} is already retired", hint="nothing to do")
    editable.document["tombstone"] = {
        "archived_at": capture.now_utc(),
        "reason": reason,
        "by": capture.user(project.root),
    }
    written = card.write(found.path, editable.document)
    pointer = project.root / (found.data["checkpoint"]["path"] + ".dvc")
    if not keep_pointer and pointer.exists():
        vcs.git(
            project.root,
            "rm",
            "--quiet",
            "--cached",
            "--ignore-unmatch",
            "--",
            project.relative(pointer),
        )
        pointer.unlink()
    vcs.stage(project.root, [found.path])
    return written
