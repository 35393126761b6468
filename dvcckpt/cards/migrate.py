"""`dvcckpt migrate`: upgrade cards on disk to the current card schema (comments kept)."""

from __future__ import annotations

from pathlib import Path

from dvcckpt.cards import card
from dvcckpt.core import migrations
from dvcckpt.project import Project


def upgrade_files(
    project: Project, paths: list[Path], dry_run: bool = False
) -> list[tuple[str, list[str]]]:
    """Migrate the given cards on disk (comments kept) and stage them; returns what changed."""
    changed = []
    for path in paths:
        current = card.read(path, project.config.card_max_bytes, editable=True)
        steps = (
            migrations.migrate(current.document)
            if migrations.needs_migration(current.document)
            else []
        )
        if steps and not dry_run:
            card.write_staged(project.root, path, current.document)
        if steps:
            changed.append((project.relative(path), steps))
    return changed
