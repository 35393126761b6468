"""Where a checkpoint's files sit: the card and the DVC pointer beside the checkpoint.

`models/m/step-300.pt` has its card at `models/m/step-300.pt.ckpt.yaml` and its
pointer at `models/m/step-300.pt.dvc` (the same for a directory checkpoint). A
checkpoint whose name already ends in `.ckpt` (Lightning's `epoch=4-step=50.ckpt`)
gets `epoch=4-step=50.ckpt.yaml`, never a doubled `.ckpt.ckpt.yaml`; cards written
before keep that long form, which stays valid.

When another run writes a registered checkpoint path again (a re-run into the same
output folder), the new card takes the run's short id: `checkpoint-100.<run>.ckpt.yaml`
(`epoch=4-step=50.<run>.ckpt.yaml`), and the one pointer follows the live card.

So a card's name alone does not say which checkpoint it belongs to (`foo.ckpt.yaml`
could be `foo`'s or `foo.ckpt`'s): the card's own `checkpoint.path` does, and
`card_names` lists the names a card of that path may have. Every module derives
these paths here, from strings (repository-relative, POSIX) or `Path`s alike.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import TypeVar

from dvcckpt.core import naming

CARD_SUFFIX = ".ckpt.yaml"
POINTER_SUFFIX = ".dvc"
_CKPT = ".ckpt"
_YAML = ".yaml"

P = TypeVar("P", bound=PurePath)


def _split(path: str) -> tuple[str, str]:
    """`a/b/c` -> (`a/b/`, `c`): the folder prefix (kept as given) and the file name."""
    head, sep, name = path.rpartition("/")
    return head + sep, name


def _short_base(name: str) -> str | None:
    """`x.ckpt` -> `x` (its cards drop the doubled suffix); None for other names."""
    base = name.removesuffix(_CKPT)
    return base if name.endswith(_CKPT) and base and base != "." else None


def card_names(checkpoint_name: str, run: str | None = None) -> list[str]:
    """Every name a card of `checkpoint_name` may have, preferred first.

    Without `run`: `x.ckpt.yaml` then `x.ckpt.ckpt.yaml` for `x.ckpt`, `x.pt.ckpt.yaml`
    otherwise. With `run` (the card's short run id, `naming.short_run_id`), the forms
    of a checkpoint path that another run wrote first are added after those.
    """
    base = _short_base(checkpoint_name)
    names = [checkpoint_name + CARD_SUFFIX]
    if base is not None:
        names.insert(0, checkpoint_name + _YAML)
    if run is not None:
        if base is not None:
            names.append(f"{base}.{run}{CARD_SUFFIX}")
        names.append(f"{checkpoint_name}.{run}{CARD_SUFFIX}")
    return names


def card_for(checkpoint: str) -> str:
    """`models/m/step-300.pt` -> `models/m/step-300.pt.ckpt.yaml`; `m/e=1.ckpt` -> `m/e=1.ckpt.yaml`."""
    folder, name = _split(checkpoint)
    return folder + card_names(name)[0]


def rerun_card_for(checkpoint: str, run_id: str) -> str:
    """The card of `checkpoint` registered by run `run_id` after another run's card:
    `out/checkpoint-100` -> `out/checkpoint-100.<short id>.ckpt.yaml`."""
    folder, name = _split(checkpoint)
    return folder + f"{_short_base(name) or name}.{naming.short_run_id(run_id)}{CARD_SUFFIX}"


def is_card_name_of(card: str, checkpoint: str, run_id: str | None) -> bool:
    """Whether `card` is a name a card of `checkpoint` from run `run_id` may have."""
    card_folder, card_name = _split(card)
    folder, name = _split(checkpoint)
    run = naming.short_run_id(run_id) if isinstance(run_id, str) and run_id else None
    return card_folder == folder and card_name in card_names(name, run)


def checkpoints_of_card(card: str) -> list[str]:
    """Every checkpoint path a card file of this name could belong to (any run).

    `m/x.ckpt.yaml` -> [`m/x`, `m/x.ckpt`]; a card's own `checkpoint.path` says which.
    """
    folder, name = _split(card)
    stem = name.removesuffix(CARD_SUFFIX)
    if not name.endswith(CARD_SUFFIX) or not stem:
        return []
    # `<checkpoint>` (long form), `<checkpoint>.ckpt` (short), then `<checkpoint>.<run>`.
    found = [stem] + ([stem + _CKPT] if _short_base(stem + _CKPT) else [])
    for index, char in enumerate(stem):
        if char == "." and index > 0 and naming.readable("run_id", stem[index + 1 :]):
            base = stem[:index]
            found += [base] + ([base + _CKPT] if _short_base(base + _CKPT) else [])
    return list(dict.fromkeys(folder + n for n in found))


def could_be_card_of(card: str, checkpoint: str) -> bool:
    """Whether `card` is named like a card of `checkpoint` (by any run)."""
    return checkpoint in checkpoints_of_card(card)


def checkpoint_of_card(card: str) -> str:
    """The checkpoint of a card in the long form: `m/step-300.pt.ckpt.yaml` -> `m/step-300.pt`.

    Only where no card text is at hand; a card's `checkpoint.path` is the truth.
    """
    return card.removesuffix(CARD_SUFFIX)


def pointers_of_card(card: str) -> list[str]:
    """Every `.dvc` file a card of this name could have (the long form's first)."""
    checkpoints = [checkpoint_of_card(card), *checkpoints_of_card(card)]
    return list(dict.fromkeys(pointer_for(c) for c in checkpoints))


def pointer_of_card(card: str, checkpoint: str, run_id: str | None) -> str:
    """A card's `.dvc` file: beside its own `checkpoint.path` where the card sits as a
    card of that path may, else (a misplaced card, refused anyway) the long form's."""
    if is_card_name_of(card, checkpoint, run_id):
        return pointer_for(checkpoint)
    return pointer_for(checkpoint_of_card(card))


def pointer_for(checkpoint: str) -> str:
    """`models/m/step-300.pt` -> `models/m/step-300.pt.dvc`."""
    return checkpoint + POINTER_SUFFIX


def checkpoint_of_pointer(pointer: str) -> str:
    return pointer.removesuffix(POINTER_SUFFIX)


def is_card(path: str) -> bool:
    return path.endswith(CARD_SUFFIX)  # the short form `x.ckpt.yaml` ends so too


def is_pointer(path: str) -> bool:
    return path.endswith(POINTER_SUFFIX)


def card_path_for(checkpoint: P) -> P:
    """The card beside a checkpoint path (also for directories)."""
    return checkpoint.with_name(card_for(checkpoint.name))


def pointer_path_for(checkpoint: P) -> P:
    return checkpoint.with_name(pointer_for(checkpoint.name))
