"""A checkpoint path another run writes again: its cards, the live one, a new card's name.

A re-run into the same output folder (Trainer's `output_dir/checkpoint-100`,
Lightning's `dirpath`) overwrites the bytes a card describes. The new checkpoint gets
a card of its own, named with its run's short id (`checkpoint-100.<run>.ckpt.yaml`,
`core.layout`), and the card whose bytes are gone is marked pruned ("overwritten by run
<id>") in the same staged change that replaces the one `.dvc` pointer. A path has
at most one live card; the hook refuses a second (`live_card_findings`).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dvcckpt.adapters import git, yamldoc
from dvcckpt.core import layout
from dvcckpt.core.config import ProjectConfig
from dvcckpt.core.policy import Finding
from dvcckpt.errors import CardError, StateError


def _card_files_beside(root: Path, pointers: Sequence[str], from_index: bool) -> list[str]:
    """The card files (repository paths) in the folders of `pointers`: in the index, or
    (`from_index` false: the files named on the command line) in the work tree."""
    folders = sorted({posixpath.dirname(p) for p in pointers})
    if from_index:
        listed = git.run_git(
            root, "--literal-pathspecs", "ls-files", "-z", "--cached", "--",
            *[folder or "." for folder in folders],
        )  # fmt: skip
        return [p for p in listed.split("\0") if layout.is_card(p)]
    found: list[str] = []
    for folder in folders:
        try:
            names = os.listdir(root / folder)
        except OSError:
            continue
        found += [posixpath.join(folder, name) for name in names if layout.is_card(name)]
    return found


def cards_of_pointers(root: Path, paths: Sequence[str], from_index: bool) -> dict[str, list[str]]:
    """The cards to check for each `.dvc` file among `paths`: every card named like one of
    its checkpoint (a path another run wrote again has several: the live one checks it)."""
    pointers = [p for p in paths if layout.is_pointer(p) and not layout.is_card(p)]
    known = _card_files_beside(root, pointers, from_index) if pointers else []
    found = {}
    for pointer in pointers:
        checkpoint = layout.checkpoint_of_pointer(pointer)
        siblings = [c for c in known if layout.could_be_card_of(c, checkpoint)]
        candidates = siblings or [layout.card_for(checkpoint)]
        found[pointer] = [c for c in candidates if from_index or os.path.isfile(root / c)]
    return found


def live_card_findings(
    root: Path,
    checked: Sequence[tuple[str, dict[str, Any], dict[str, Any] | None]],
    from_index: bool,
) -> list[Finding]:
    """A new live card whose checkpoint path already has another live card: the pointer
    would belong to two cards. (A re-run's card comes with the old one marked pruned.)"""
    new = [(p, c) for p, c, old in checked if old is None and c.get("tombstone") is None]
    if not new:
        return []
    checkpoints = {p: str(c["checkpoint"]["path"]) for p, c in new}
    pointers = [layout.pointer_for(path) for path in checkpoints.values()]
    known = _card_files_beside(root, pointers, from_index)
    findings = []
    for path, checkpoint in checkpoints.items():
        others = [c for c in known if c != path and layout.could_be_card_of(c, checkpoint)]
        for other, document in _documents(root, others, from_index).items():
            if _is_live_card_of(document, checkpoint):
                message = (
                    f"{checkpoint!r} already has the live card {other}: register the new "
                    "checkpoint with `dvcckpt add` (it marks the overwritten card pruned) "
                    "or retire the old card first"
                )
                findings.append(Finding(path, "checkpoint.path", message))
    return findings


def _documents(root: Path, files: list[str], from_index: bool) -> dict[str, Any]:
    if from_index:
        texts = {
            spec[1:]: text for spec, text in git.read_blobs(root, [f":{f}" for f in files]).items()
        }
    else:
        texts = {f: _read(root / f) for f in files}
    documents = {}
    for file, text in texts.items():
        try:
            documents[file] = yamldoc.load_fast(text, file) if text is not None else None
        except CardError:
            continue  # an unreadable card is reported by its own check (or was validated)
    return documents


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _is_live_card_of(document: Any, checkpoint: str) -> bool:
    if not isinstance(document, dict) or document.get("tombstone") is not None:
        return False
    meta = document.get("checkpoint")
    return isinstance(meta, dict) and meta.get("path") == checkpoint


def run_id_of(document: Any) -> str | None:
    run = document.get("run") if isinstance(document, dict) else None
    run_id = run.get("id") if isinstance(run, dict) else None
    return run_id if isinstance(run_id, str) and run_id else None


@dataclass(frozen=True)
class Placement:
    """Where a new card goes, and the live cards of other runs its checkpoint overwrote."""

    card_file: Path
    overwritten: tuple[Path, ...] = ()


def place(
    checkpoint: Path, relative: str, draft: dict[str, Any], *, separate_run: bool = True
) -> Placement:
    """The card file for the new card `draft` of `checkpoint` (repository path `relative`).

    No card yet: the preferred name free of another checkpoint's card (`x.ckpt.yaml`,
    else `x.ckpt.ckpt.yaml`). A live card of the same run: that file (the caller refuses
    or, with --force, replaces it as before). Otherwise the run-id name, and the live
    cards of other runs are overwritten. Not `separate_run` (a run id drawn at random,
    which tells no runs apart): the existing card's file, refused or replaced as before.
    """
    cards = cards_of(checkpoint, relative)
    run_id = run_id_of(draft)
    same_run = [file for file, document in cards.items() if _same_run(document, run_id)]
    if same_run or (cards and not separate_run):
        return Placement((same_run or _live_first(cards))[0])
    if not cards:
        return Placement(_preferred(checkpoint, relative))
    if run_id is None:
        shown = ", ".join(sorted(file.name for file in cards))
        raise StateError(
            f"{checkpoint} already has a card ({shown}) and this run has no run id",
            hint="give the run an id (--run-id ID, run={'id': ID}) so its card gets a name "
            "of its own, or save to a new path",
        )
    live = tuple(file for file, document in cards.items() if document.get("tombstone") is None)
    return Placement(checkpoint.with_name(Path(layout.rerun_card_for(relative, run_id)).name), live)


def _live_first(cards: dict[Path, dict[str, Any]]) -> list[Path]:
    return sorted(cards, key=lambda file: cards[file].get("tombstone") is not None)


def _same_run(document: dict[str, Any], run_id: str | None) -> bool:
    """A live card of this run: re-saving it is the error (or --force) it always was."""
    return document.get("tombstone") is None and run_id_of(document) == run_id


def cards_of(checkpoint: Path, relative: str) -> dict[Path, dict[str, Any]]:
    """The work-tree cards whose `checkpoint.path` is `relative`, by file."""
    try:
        names = os.listdir(checkpoint.parent)
    except OSError:
        return {}
    found = {}
    for name in sorted(names):
        if not layout.could_be_card_of(name, checkpoint.name):
            continue
        file = checkpoint.parent / name
        try:
            document = yamldoc.load_fast(file.read_bytes(), str(file))
        except (OSError, CardError):
            continue  # not a card of this checkpoint that can be read: `_preferred` skips it
        meta = document.get("checkpoint") if isinstance(document, dict) else None
        if isinstance(meta, dict) and meta.get("path") == relative:
            found[file] = document
    return found


def _preferred(checkpoint: Path, relative: str) -> Path:
    """The first card name not already a file (`x.ckpt.yaml` may be the card of `x`)."""
    names = layout.card_names(checkpoint.name)
    free = [name for name in names if not os.path.lexists(checkpoint.parent / name)]
    return checkpoint.parent / (free or names)[0]


def current_card(checkpoint: Path, relative: str) -> Path | None:
    """The live card of a checkpoint path in the work tree, else its first card (None: none)."""
    cards = cards_of(checkpoint, relative)
    live = [file for file, document in cards.items() if document.get("tombstone") is None]
    return live[0] if live else next(iter(cards), None)


def pruned_texts(
    root: Path, placement: Placement, draft: dict[str, Any], config: ProjectConfig
) -> dict[Path, bytes]:
    """The overwritten cards as they become: pruned, "overwritten by run <id>" (the new
    card's run), each written with the new card in one staged change (their pointer is
    the new one's)."""
    from dvcckpt.cards import card

    texts = {}
    reason = f"overwritten by run {run_id_of(draft)}"
    for file in placement.overwritten:
        editable = card.read(file, config.card_max_bytes, editable=True)
        editable.document["tombstone"] = tombstone(root, reason)
        texts[file] = card.render(file, editable.document)
    return texts


def tombstone(root: Path, reason: str) -> dict[str, Any]:
    """A pruned card's tombstone, as `retire.prune` writes one (`kind: pruned`: its data
    went without a person retiring it)."""
    from dvcckpt.adapters import capture

    now, user = capture.now_utc(), capture.user(root)
    return {"kind": "pruned", "archived_at": now, "reason": reason, "by": user}
