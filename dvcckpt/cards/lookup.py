"""Finding a card from what a user types: a card path, a checkpoint path or a name."""

from __future__ import annotations

import re
from pathlib import Path

from dvcckpt.adapters import git as vcs
from dvcckpt.cards import card
from dvcckpt.errors import StateError
from dvcckpt.project import CARD_SUFFIX, Project, card_path_for

# Canonical cards carry `name:` at the top level; a cheap scan narrows the
# candidates before the full (slower) parse confirms the match.
_NAME_LINE = re.compile(r"^name:[ \t]*['\"]?([^'\"\n#]+?)['\"]?[ \t]*(?:#.*)?$", re.M)


def card_files(project: Project) -> list[Path]:
    """Cards in the work tree: committed, staged or new (not git-ignored)."""
    out = vcs.git(project.root, "ls-files", "-z", "--cached", "--others", "--exclude-standard",
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


def resolve(project: Project, reference: str, full_validation: bool = True) -> card.Card:
    """The card for a card path, a checkpoint path, or a checkpoint name."""
    given = Path(reference)
    for candidate in (given, card_path_for(given)):
        if candidate.name.endswith(CARD_SUFFIX) and candidate.is_file():
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
