"""What users type to name a checkpoint, resolved to its card.

`NAME`, a checkpoint path or a card path read the work tree; `NAME@REV` reads
the card as committed at a revision (through the catalog).
"""

from __future__ import annotations

from pathlib import Path

from dvcckpt import lookup
from dvcckpt.card import Card
from dvcckpt.project import Project


def resolve(project: Project, reference: str) -> Card:
    if "@" in reference and not Path(reference).exists():
        from dvcckpt import comparison
        from dvcckpt.catalog import Catalog

        version = comparison.resolve(Catalog(project.root), reference)
        return Card(path=None, document=version.card)
    return lookup.resolve(project, reference)
