"""Where a checkpoint's files sit: the card and the DVC pointer beside the checkpoint.

`models/m/step-300.pt` has its card at `models/m/step-300.pt.ckpt.yaml` and its
pointer at `models/m/step-300.pt.dvc` (the same for a directory checkpoint).
Every module derives these paths here, from strings (repository-relative, POSIX)
or `Path`s alike.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import TypeVar

CARD_SUFFIX = ".ckpt.yaml"
POINTER_SUFFIX = ".dvc"

P = TypeVar("P", bound=PurePath)


def card_for(checkpoint: str) -> str:
    """`models/m/step-300.pt` -> `models/m/step-300.pt.ckpt.yaml`."""
    return checkpoint + CARD_SUFFIX


def pointer_for(checkpoint: str) -> str:
    """`models/m/step-300.pt` -> `models/m/step-300.pt.dvc`."""
    return checkpoint + POINTER_SUFFIX


def checkpoint_of_card(card: str) -> str:
    """`models/m/step-300.pt.ckpt.yaml` -> `models/m/step-300.pt`."""
    return card.removesuffix(CARD_SUFFIX)


def checkpoint_of_pointer(pointer: str) -> str:
    return pointer.removesuffix(POINTER_SUFFIX)


def is_card(path: str) -> bool:
    return path.endswith(CARD_SUFFIX)


def is_pointer(path: str) -> bool:
    return path.endswith(POINTER_SUFFIX)


def card_path_for(checkpoint: P) -> P:
    """The card beside a checkpoint path (also for directories)."""
    return checkpoint.with_name(card_for(checkpoint.name))


def pointer_path_for(checkpoint: P) -> P:
    return checkpoint.with_name(pointer_for(checkpoint.name))


def checkpoint_path_of_card(card: P) -> P:
    return card.with_name(checkpoint_of_card(card.name))
