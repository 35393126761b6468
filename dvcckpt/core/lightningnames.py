"""Lightning's checkpoint file names: `epoch=4-step=50-val_acc=0.840.ckpt`."""

from __future__ import annotations

from typing import Any


def fragment(name: str) -> dict[str, Any]:
    """Epoch, step and metrics a Lightning file name encodes (empty if it encodes none)."""
    return {}
