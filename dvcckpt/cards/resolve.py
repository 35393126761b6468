"""What users type to name a checkpoint, resolved to its card.

`NAME`, a checkpoint path or a card path read the work tree; `NAME@REV` reads
the card as committed at a revision (through the catalog); `MODEL@STAGE` (or
`NAME@STAGE`) is the checkpoint currently holding a stage on the main branch.
"""

from __future__ import annotations

from pathlib import Path

from dvcckpt.cards import lookup
from dvcckpt.cards.card import Card
from dvcckpt.project import Project


def resolve(project: Project, reference: str, full_validation: bool = True) -> Card:
    target, _, suffix = reference.rpartition("@")
    if target and suffix in project.config.stages and not Path(reference).exists():
        from dvcckpt.promotion import stages

        return stages.holder_card(project, target, suffix)
    if "@" in reference and not Path(reference).exists():
        from dvcckpt.catalog import diff as comparison
        from dvcckpt.catalog.index import Catalog

        version = comparison.resolve(Catalog(project.root), reference)
        return Card(path=None, document=version.card)
    return lookup.resolve(project, reference, full_validation)
