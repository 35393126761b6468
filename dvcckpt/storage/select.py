"""Which checkpoints a storage command works on, and what each card promises about its data."""

from __future__ import annotations

from dataclasses import dataclass

from dvcckpt.cards import card as card_module
from dvcckpt.cards import resolve as resolver
from dvcckpt.cards.card import Card
from dvcckpt.core import layout, manifest
from dvcckpt.errors import CardError, StateError, UsageError
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

    files: int | None = None  # the card's file count, when it records one

    @classmethod
    def of(cls, card: Card) -> Checkpoint:
        """The card's integrity facts, each checked: they name cache paths and limits."""
        meta = card.data["checkpoint"]
        dvc = meta.get("dvc") if isinstance(meta.get("dvc"), dict) else {}
        directory = meta.get("format") == "directory"
        md5, size, files = dvc.get("md5", ""), meta.get("size", 0), meta.get("files")
        problem = None
        if md5 and not manifest.is_md5(md5, directory=True):
            problem = f"checkpoint.dvc.md5: {md5!r} is not 32 lowercase hex digits"
        elif md5 and md5.endswith(".dir") != directory:
            problem = f"checkpoint.dvc.md5: {md5!r} does not fit format {meta.get('format')}"
        elif not _count(size) or not _count(files):
            problem = f"checkpoint.size/files: {size!r}/{files!r} are not non-negative integers"
        if problem:
            source = card.path or card.name
            raise CardError(f"{source}: {problem}", hint="restore the card from git; "
                            "`dvcckpt check` validates it")  # fmt: skip
        return cls(
            name=card.name,
            path=str(meta["path"]),
            directory=directory,
            sha256=str(meta["sha256"]),
            size=int(size or 0),
            md5=str(md5),
            dvc_file=str(dvc.get("file") or layout.pointer_for(meta["path"])),
            files=None if files is None else int(files),
        )


def _count(value: object) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)


def resolve(project: Project, reference: str) -> Card:
    """NAME, a path, NAME@REV, or NAME@STAGE / MODEL@STAGE (storage needs only path and hashes)."""
    return resolver.reference(project, reference, full_validation=False)


def select(
    project: Project,
    refs: tuple[str, ...] | list[str],
    everything: bool,
    stage: str | None = None,
    *,
    tombstones: bool = False,
) -> list[Checkpoint]:
    """The checkpoints a command works on, in the order given, without duplicates.

    A named retired or pruned checkpoint is refused (`live`) unless `tombstones`: `verify`
    lists those with their reason instead of moving data that is not kept.
    """
    if everything and (refs or stage):
        raise UsageError("--all cannot be combined with names or --stage", hint="pick one")
    if everything:
        cards = [c for c in _work_tree_cards(project) if not c.data.get("tombstone")]
    elif stage:
        models = list(refs) or sorted({c.model for c in _work_tree_cards(project)})
        cards = _stage_holders(project, models, stage, strict=bool(refs))
    elif refs:
        cards = [resolve(project, ref) for ref in refs]
        cards = cards if tombstones else [live(card) for card in cards]
    else:
        raise UsageError("name at least one checkpoint", hint="pass NAME... or --all (see --help)")
    # Keyed by path, not name: two cards sharing a name are still two checkpoints to move.
    unique = {(c.path, c.name): Checkpoint.of(c) for c in cards}
    if everything and not unique:
        raise StateError(f"no checkpoints registered in {project.root}", hint="dvcckpt add PATH")
    return list(unique.values())


def live(card: Card) -> Card:
    """The card, unless it is a tombstone: a retired or pruned checkpoint's data is not
    expected to exist anywhere, so moving or loading it is refused by name and reason."""
    stone = card.data.get("tombstone")
    if not stone:
        return card
    stone = stone if isinstance(stone, dict) else {}
    kind = str(stone.get("kind") or "retired")
    why = str(stone.get("reason") or "")[:200]
    raise StateError(
        f"checkpoint {card.name} is {kind}" + (f" ({why})" if why else ""),
        hint=f"its data is not kept; use NAME@REV for a version before it was {kind}, "
        "or `dvcckpt find` for live checkpoints",
    )


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
