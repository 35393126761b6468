"""What users type to name a checkpoint, resolved to its card: the one resolver.

`NAME`, a checkpoint path or a card path read the work tree (`in_work_tree`);
`NAME@REV` reads the card as committed at a revision (through the catalog);
`MODEL@STAGE` (or `NAME@STAGE`) is the checkpoint currently holding a stage on
the main branch (`reference` handles all of them).
"""

from __future__ import annotations

import re
from pathlib import Path

from dvcckpt.adapters import git
from dvcckpt.adapters.paths import repo_relative
from dvcckpt.cards import card, overwritten
from dvcckpt.core import layout
from dvcckpt.core.layout import CARD_SUFFIX
from dvcckpt.errors import StateError, UsageError
from dvcckpt.project import Project


def reference(project: Project, text: str, full_validation: bool = True) -> card.Card:
    """The card a reference names: NAME, PATH, NAME@REV, MODEL@STAGE or NAME@STAGE."""
    if not text.strip():
        raise UsageError(
            "no checkpoint named: the reference is empty",
            hint="pass a checkpoint name, its path or its card path, e.g. `dvcckpt find` lists names",
        )
    target, _, suffix = text.rpartition("@")
    if target and suffix in project.config.stages and not Path(text).exists():
        from dvcckpt.promotion import stages

        return stages.holder_card(project, target, suffix)
    if "@" in text and not Path(text).exists():
        from dvcckpt.catalog import diff

        version = diff.resolve(project.catalog, text)
        return card.Card(path=None, document=version.card)
    return in_work_tree(project, text, full_validation)


# Canonical cards carry `name:` at the top level; a cheap scan narrows the
# candidates before the full (slower) parse confirms the match.
_NAME_LINE = re.compile(r"^name:[ \t]*['\"]?([^'\"\n#]+?)['\"]?[ \t]*(?:#.*)?$", re.M)


def card_files(project: Project) -> list[Path]:
    """Cards in the work tree: committed, staged or new (not git-ignored)."""
    out = git.run_git(project.root, "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                  "--", f"*{CARD_SUFFIX}")  # fmt: skip
    paths = {project.root / rel for rel in out.split("\0") if rel}
    return sorted(p for p in paths if p.is_file())


def find_by_name(project: Project, name: str, full_validation: bool = True) -> card.Card | None:
    matches = [path for path in card_files(project) if _declared_name(path) == name]
    if len(matches) > 1:
        listing = ", ".join(project.relative(p) for p in matches)
        raise StateError(
            f"checkpoint name {name!r} is used by several cards: {listing}",
            hint="pass the card path instead; names should be unique",
        )
    if not matches:
        return None
    return card.read(matches[0], project.config.card_max_bytes, full_validation=full_validation)


def _declared_name(path: Path) -> str | None:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            head = handle.read(4096)
    except OSError:
        return None
    found = _NAME_LINE.search(head)
    return found.group(1) if found else None


def _card_of_checkpoint(project: Project, given: Path) -> Path:
    """The live card of a checkpoint path: a path another run wrote again has several."""
    try:
        relative = repo_relative(given, project.root)
        found = overwritten.current_card(given, relative) if relative is not None else None
    except (OSError, RuntimeError):  # a name too long, a symlink loop: no card there
        found = None
    return found or layout.card_path_for(given)


def in_work_tree(project: Project, reference: str, full_validation: bool = True) -> card.Card:
    """The work-tree card for a card path, a checkpoint path, or a checkpoint name."""
    given = Path(reference)
    candidates = [given]
    if given.name not in ("", ".", ".."):  # `/`, `.` or `..` name no checkpoint file
        candidates.append(_card_of_checkpoint(project, given))
    for candidate in candidates:
        if layout.is_card(candidate.name) and candidate.is_file():
            project.relative(candidate)
            return card.read(
                candidate, project.config.card_max_bytes, full_validation=full_validation
            )
    found = find_by_name(project, reference, full_validation)
    if found is None:
        raise StateError(
            f"no checkpoint named {reference!r} in {project.root}",
            hint=f"pass a checkpoint name, its path or its card path (cards end in {CARD_SUFFIX})",
        )
    return found
