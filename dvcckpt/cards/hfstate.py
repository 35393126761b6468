"""Hugging Face Trainer's own records of a checkpoint (`trainer_state.json`, `training_args.bin`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def fragment(checkpoint: Path) -> dict[str, Any]:
    """Step, epoch, metrics at that step, best metric, seed and training arguments."""
    return {}


def metrics_at(source: Path, step: int | None) -> dict[str, Any] | None:
    """Metrics of a `trainer_state.json` given as `--metrics`; None if `source` is not one."""
    return None
