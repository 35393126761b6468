"""`dvcckpt.load`: a registered checkpoint's local path for inference code."""

from __future__ import annotations

from pathlib import Path


def load(reference: str, repo: Path | None = None, *, allow_pickle: bool = False) -> Path:
    """Resolve NAME or MODEL@STAGE, pull and verify if needed, return the local path."""
    raise NotImplementedError
