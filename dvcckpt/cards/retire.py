"""Retiring a checkpoint: its card stays in history as a tombstone.

Cards are never deleted (the hook refuses it); a tombstone keeps identity,
hashes and provenance, adds who retired it, when and why, and lets the `.dvc`
pointer go so the data can be garbage-collected.
"""

from __future__ import annotations

from pathlib import Path

from dvcckpt.adapters import capture, git
from dvcckpt.cards import card, resolve
from dvcckpt.core import layout
from dvcckpt.errors import StateError, UsageError
from dvcckpt.project import Project


def required_text(value: str | None, option: str, what: str) -> str:
    """A free-text justification that says something (blank ones are refused)."""
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{option} is empty", hint=f"say {what}, e.g. {option} '...'")
    return value


def required_reference(value: str) -> str:
    """A checkpoint reference that is not empty (an empty one would match by accident)."""
    if not isinstance(value, str) or not value.strip():
        raise UsageError(
            "empty checkpoint reference",
            hint="name the checkpoint: its name, its path or its card's path",
        )
    return value


def retire(project: Project, reference: str, reason: str, keep_pointer: bool = False) -> card.Card:
    reason = required_text(reason, "--reason", "why the checkpoint is retired")
    found = resolve.in_work_tree(project, required_reference(reference))
    assert found.path is not None
    editable = card.read(found.path, project.config.card_max_bytes, editable=True)
    if editable.document.get("tombstone"):
        raise StateError(f"{found.name} is already retired", hint="nothing to do")
    editable.document["tombstone"] = {
        "archived_at": capture.now_utc(),
        "reason": reason,
        "by": capture.user(project.root),
    }
    pointer = project.inside(layout.pointer_for(found.data["checkpoint"]["path"]))
    # The tombstone and the pointer's removal are one change (nothing written if the
    # index is locked), so a re-run after any failure retires it exactly once.
    removed = (pointer,) if not keep_pointer and _known(project, pointer) else ()
    return card.write_staged(project.root, found.path, editable.document, removed)


def _known(project: Project, pointer: Path) -> bool:
    """Whether the pointer is in the work tree or the index."""
    staged = git.run_git(
        project.root, "--literal-pathspecs", "ls-files", "--cached", "--", project.relative(pointer)
    )
    return pointer.exists() or bool(staged.strip())
