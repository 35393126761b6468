"""Retiring a checkpoint: its card stays in history as a tombstone.

Cards are never deleted (the hook refuses it); a tombstone keeps identity,
hashes and provenance, adds who retired it, when and why, and lets the `.dvc`
pointer go so the data can be garbage-collected.
"""

from __future__ import annotations

from dvcckpt.adapters import capture, git
from dvcckpt.cards import card, resolve
from dvcckpt.core import layout
from dvcckpt.errors import StateError
from dvcckpt.project import Project


def retire(project: Project, reference: str, reason: str, keep_pointer: bool = False) -> card.Card:
    found = resolve.in_work_tree(project, reference)
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
    pointer = project.root / layout.pointer_for(found.data["checkpoint"]["path"])
    if not keep_pointer and pointer.exists():
        git.run_git(
            project.root,
            "rm",
            "--quiet",
            "--cached",
            "--ignore-unmatch",
            "--",
            project.relative(pointer),
        )
        pointer.unlink()
    git.stage(project.root, [found.path])
    return written
