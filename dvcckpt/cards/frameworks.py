"""What the training framework that wrote a checkpoint recorded about it.

`add` and `save` read it beneath what the user gives (explicit values win): Hugging
Face's `trainer_state.json` in a `checkpoint-N/` folder (`cards.hfstate`) and
Lightning's `epoch=E-step=S-metric=V.ckpt` file names (`core.lightningnames`).
Metrics in a framework's own format (a `trainer_state.json`, a dvclive folder) are
read at the checkpoint's step, never at the framework's own counter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dvcckpt.cards import dvclivehistory, hfstate
from dvcckpt.core import fragments, lightningnames


def detected(checkpoint: Path) -> dict[str, Any]:
    """The fragment the framework's own files give for `checkpoint` (empty if none)."""
    return fragments.merge(hfstate.fragment(checkpoint), lightningnames.fragment(checkpoint.name))


def step_of(checkpoint: Path) -> int | None:
    """The checkpoint's step as its framework recorded it, if it did."""
    step = detected(checkpoint).get("checkpoint", {}).get("step")
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def metrics_at(source: Path, step: int | None) -> dict[str, Any] | None:
    """Metrics fragment from a framework metrics source at `step`; None for a plain file."""
    for reader in (hfstate.metrics_at, dvclivehistory.metrics_at):
        found = reader(source, step)
        if found is not None:
            return found
    return None
