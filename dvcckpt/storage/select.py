"""Which checkpoints a storage command works on, and what each card promises about its data."""

from __future__ import annotations

from dataclasses import dataclass

from dvcckpt.cards import card as card_module
from dvcckpt.cards import resolve as resolver
from dvcckpt.cards.card import Card
from dvcckpt.core import layout
from dvcckpt.errors import StateError, UsageError
from dvcckpt.project import Project


@dataclass(frozen=True)
class Checkpoint:
    """The integrity facts of one card: where the data lives and what it must hash to."""

    name: str
    path: str  # repository-relative
    directory: bool
    sha256: str
    size: int
    md5: str
    dvc_file: str

    @classmethod
    def of(cls, card: Card) -> Checkpoint:
        meta = card.data["checkpoint"]
        dvc = meta.get("dvc") or {}
        return cls(
            name=card.name,
            path=str(meta["path"]),
            directory=meta.get("format") == "directory",
            sha256=str(meta["sha256"]),
            size=int(meta.get("size") or 0),
            md5=str(dvc.get("md5", "")),
            dvc_file=str(dvc.get("file") or layout.pointer_for(meta["path"])),
        )


def resolve(project: Project, reference: str) -> Card:
    """NAME, a path, NAME@REV, or NAME@STAGE / MODEL@STAGE (storage needs only path and hashes)."""
    return resolver.reference(project, reference, full_validation=False)


def select(
    project: Project, refs: tuple[str, ...] | list[str], everything: bool, stage: str | None = None
) -> list[Checkpoint]:
    """The checkpoints a command works on, in the order given, without duplicates."""
    if everything and (refs or stage):
        raise UsageError("--all cannot be combined with names or --stage", hint="pick one")
    if everything:
        cards = [c for c in _work_tree_cards(project) if not c.data.get("tombstone")]
    elif stage:
        models = list(refs) or sorted({c.model for c in _work_tree_cards(project)})
        cards = _stage_holders(project, models, stage, strict=bool(refs))
    elif refs:
        cards = [resolve(project, ref) for ref in refs]
    else:
        raise UsageError("name at least one checkpoint", hint="pass NAME... or --all (see --help)")
    # Keyed by path, not name: two cards sharing a name are still two checkpoints to move.
    unique = {(c.path, c.name): Checkpoint.of(c) for c in cards}
    if everything and not unique:
        raise StateError(f"no checkpoints registered in {project.root}", hint="dvcckpt add PATH")
    return list(unique.values())


def _work_tree_cards(project: Project) -> list[Card]:
    limit = project.config.card_max_bytes
    return [
        card_module.read(path, limit, full_validation=False)
        for path in resolver.card_files(project)
    ]


def _stage_holders(project: Project, models: list[str], stage: str, strict: bool) -> list[Card]:
    from dvcckpt.promotion import stages

    found = []
    for model in models:
        try:
            found.append(stages.holder_card(project, model, stage))
        except StateError:
            if strict:
                raise
    if not found:
        raise StateError(f"no checkpoint holds {stage}", hint="promote one first")
    return found
