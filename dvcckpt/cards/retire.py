"""Retiring a checkpoint: its card stays in history as a tombstone.

Cards are never deleted (the hook refuses it); a tombstone keeps identity,
hashes and provenance, adds who retired it, when and why, and lets the `.dvc`
pointer go so the data can be garbage-collected.

Pruning is the same for checkpoints a training framework deleted itself
(`save_total_limit`, `save_top_k`): their tombstones say `kind: pruned`, every
card of a batch changes in one staged change, and the DVC cache copies no live
reference uses are released (`adapters/dvccache`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dvcckpt.adapters import atomic, capture, dvccache, dvcfiles, git, yamldoc
from dvcckpt.cards import card, resolve
from dvcckpt.core import layout
from dvcckpt.errors import DvcckptError, StateError, UsageError
from dvcckpt.project import Project

PRUNED = "pruned"
_BACKGROUND_WORKER = "dvcckpt-save"  # the thread cards/background.py registers in


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


@dataclass
class Pruned:
    """What a prune did: the cards it marked, what it left alone and why, the cache."""

    cards: list[card.Card] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (checkpoint path, why)
    cache: dvccache.Released = field(default_factory=dvccache.Released)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pruned": [{"name": c.name, "path": c.data["checkpoint"]["path"]} for c in self.cards],
            "skipped": [{"path": path, "why": why} for path, why in self.skipped],
            "cache": self.cache.as_dict(),
        }


def prune(
    project: Project,
    paths: Iterable[str | os.PathLike[str]] | None,
    reason: str,
    *,
    dry_run: bool = False,
) -> list[card.Card]:
    """Mark the cards of checkpoints gone from the work tree as pruned; returns those cards.

    `paths`: checkpoint paths (a `str` relative to the repository root, or a `Path`,
    relative to the current folder), or None for every live card whose checkpoint is
    missing (and was here: its DVC cache copy is present). See `prune_batch`.
    """
    return prune_batch(project, paths, reason, dry_run=dry_run).cards


def prune_batch(
    project: Project,
    paths: Iterable[str | os.PathLike[str]] | None,
    reason: str,
    *,
    dry_run: bool = False,
) -> Pruned:
    """Prune in one staged change: tombstones (`kind: pruned`) written, `.dvc` pointers
    removed, then the cache copies no live card, `.dvc` file or `dvc.lock` uses released.

    Re-running is safe: pruned cards are left as they are, and the cache copies of every
    pruned card still held are released, so a run interrupted anywhere is completed by
    the next. Paths whose checkpoint is still there, or that have no live card, are
    left alone (`Pruned.skipped`).
    """
    reason = required_text(reason, "--reason", "why the checkpoints were deleted")
    wanted = None if paths is None else [_repository_path(project, p) for p in paths]
    result = Pruned()
    with atomic.repo_lock(project.root):  # no other dvcckpt writer changes cards meanwhile
        cards, unreadable = _work_tree_cards(project)
        targets = _targets(project, cards, unreadable, wanted, result)
        if targets and not dry_run:
            result.cards = _write_tombstones(project, targets, reason)
        else:
            result.cards = list(targets.values())
        pruned = {_md5(c) for file, c in cards.items() if file in targets or _kind(c) == PRUNED}
        live = {_md5(c) for file, c in cards.items() if file not in targets and _kind(c) is None}
        pruned.discard("")
        why = _release_unsafe(unreadable)
        if why is not None and pruned:
            result.cache = dvccache.Released(kept=[(m, why) for m in sorted(pruned)])
        elif why is None:
            leaving = [project.root / _pointer(c) for c in targets.values()]
            result.cache = dvccache.release(
                project.root, project.dvc_root, pruned, live, leaving=leaving, dry_run=dry_run
            )
    return result


def _release_unsafe(unreadable: list[str]) -> str | None:
    """Why no cache object may be released now, or None.

    A background registration of this process running meanwhile (`save(background=True)`)
    may be about to reference an object already in the cache (a `config.json` every
    checkpoint shares) without a card saying so yet; in its own worker thread, none runs
    beside us. A later prune releases what is kept here.
    """
    from dvcckpt.cards import background

    if unreadable:
        return f"the card {unreadable[0]} cannot be read: it may use the same data"
    if background.pending() and threading.current_thread().name != _BACKGROUND_WORKER:
        return (
            "background registrations are running (they may use the same files); "
            "the next prune releases it"
        )
    return None


def _repository_path(project: Project, path: str | os.PathLike[str]) -> str:
    """A checkpoint's repository path."""
    if isinstance(path, str) and not os.path.isabs(path):
        return project.relative(project.root / path)
    return project.relative(Path(path))


def _work_tree_cards(project: Project) -> tuple[dict[str, card.Card], list[str]]:
    """Every readable card in the work tree by its repository path, and the card files
    that cannot be read (any of them might be live and use any cache object)."""
    found: dict[str, card.Card] = {}
    unreadable: list[str] = []
    for path in resolve.card_files(project):
        relative = project.relative(path)
        try:
            found[relative] = card.read(path, project.config.card_max_bytes, full_validation=False)
        except DvcckptError:
            unreadable.append(relative)
    return found, unreadable


def _targets(
    project: Project,
    cards: dict[str, card.Card],
    unreadable: list[str],
    wanted: list[str] | None,
    result: Pruned,
) -> dict[str, card.Card]:
    """The live cards to prune now, by card path; what is left alone goes to `skipped`.

    A checkpoint path has at most one live card (a re-run's card marks the one it
    overwrote pruned), so a path names the card whose `checkpoint.path` it is.
    """
    by_checkpoint: dict[str, list[tuple[str, card.Card]]] = {}
    for file, found in cards.items():
        by_checkpoint.setdefault(_checkpoint(found), []).append((file, found))
    cache = dvcfiles.cache_dir(project.dvc_root)
    targets: dict[str, card.Card] = {}
    for path in by_checkpoint if wanted is None else dict.fromkeys(wanted):
        held = by_checkpoint.get(path, [])
        live = [(file, found) for file, found in held if _kind(found) is None]
        why = _not_prunable(project, path, held, live, unreadable)
        if why is None and wanted is None and not all(_cached(cache, c) for _, c in live):
            # Missing from the work tree and from the cache: most likely never checked out
            # here (a fresh clone), not deleted by a framework; only a named path prunes it.
            why = "neither in the work tree nor in the DVC cache (never pulled here?)"
        if why is None:
            targets.update(live)
        elif wanted is not None or why.startswith("neither"):
            result.skipped.append((path, why))
    return targets


def _not_prunable(
    project: Project,
    path: str,
    held: list[tuple[str, card.Card]],
    live: list[tuple[str, card.Card]],
    unreadable: list[str],
) -> str | None:
    """Why the checkpoint at `path` is not pruned now, or None."""
    if not live:
        if held:
            return f"already {_kind(held[-1][1])}"
        return "a card there cannot be read" if unreadable else "no card"
    if os.path.lexists(project.root / path):
        return "still in the work tree (retire it by name instead)"
    return None


def _cached(cache: Path, found: card.Card) -> bool:
    md5 = _md5(found)
    try:
        return bool(md5) and dvcfiles.cache_object(cache, md5).is_file()
    except DvcckptError:
        return False  # a malformed md5 names no object


def _write_tombstones(
    project: Project, targets: dict[str, card.Card], reason: str
) -> list[card.Card]:
    """Every tombstone and pointer removal of the batch, staged and written as one change
    (pointers first, cards last: a re-run after a kill finds the cards still live)."""
    stone = {"kind": PRUNED, "archived_at": capture.now_utc(), "reason": reason,
             "by": capture.user(project.root)}  # fmt: skip
    pointers = [_pointer(found) for found in targets.values()]
    removed: dict[Path, bytes | None] = {
        project.root / pointer: None for pointer in _known_pointers(project, pointers)
    }
    written: dict[Path, bytes | None] = {}
    cards = []
    for found in targets.values():
        assert found.path is not None
        document = _editable(project, found.path)
        document["tombstone"] = dict(stone)
        written[found.path] = card.render(found.path, document)
        cards.append(card.Card(path=found.path, document=document))
    atomic.commit(project.root, {**removed, **written})
    return cards


def _editable(project: Project, path: Path) -> Any:
    """The card to add a tombstone to: its comments kept when it has any (the round-trip
    reader, ~10x slower), else its plain data (written in the same canonical form)."""
    text = yamldoc.read_text(path, project.config.card_max_bytes)
    if "#" in text.removeprefix(card.HEADER):
        return card.read(path, project.config.card_max_bytes, editable=True).document
    return yamldoc.load_fast(text, str(path), project.config.card_max_bytes)


def _known_pointers(project: Project, pointers: list[str]) -> list[str]:
    """The pointers (repository paths) in the work tree or the index, in one git call."""
    listed = git.run_git(project.root, "--literal-pathspecs", "ls-files", "-z", "--cached",
                         "--", *pointers) if pointers else ""  # fmt: skip
    staged = set(listed.split("\0"))
    return [p for p in pointers if p in staged or os.path.lexists(project.root / p)]


def _kind(found: card.Card) -> str | None:
    """None for a live card, else its tombstone's kind (`retired` when it names none)."""
    stone = found.document.get("tombstone")
    if not stone:
        return None
    return str(stone.get("kind") or "retired") if isinstance(stone, dict) else "retired"


def _md5(found: card.Card) -> str:
    meta = found.document.get("checkpoint")
    dvc = meta.get("dvc") if isinstance(meta, dict) else None
    md5 = dvc.get("md5") if isinstance(dvc, dict) else None
    return md5 if isinstance(md5, str) else ""


def _checkpoint(found: card.Card) -> str:
    return str(found.document["checkpoint"]["path"])  # checked when the card was read


def _pointer(found: card.Card) -> str:
    """The `.dvc` pointer of a card's checkpoint (a pipeline output has none to remove)."""
    return layout.pointer_for(_checkpoint(found))
