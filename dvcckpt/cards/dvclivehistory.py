"""dvclive's per-step history (`plots/metrics/*.tsv`): metrics at a checkpoint's step."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def metrics_at(source: Path, step: int | None) -> dict[str, Any] | None:
    """Metrics of a dvclive folder at `step`; None if `source` is not a dvclive folder."""
    return None
