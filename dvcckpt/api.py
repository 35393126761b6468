"""Python API for training loops and notebooks; mirrors the command line."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dvcckpt.cards import register as checkpoint
from dvcckpt.cards import resolve
from dvcckpt.cards.card import Card
from dvcckpt.catalog import Catalog
from dvcckpt.core import fragments
from dvcckpt.project import Project

__all__ = ["Card", "Catalog", "load_card", "save"]


def save(
    path: str | os.PathLike[str],
    *,
    model: str | None = None,
    step: int | None = None,
    epoch: float | None = None,
    phase: str | None = None,
    kind: str | None = None,
    name: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    run: str | Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    seeds: int | Mapping[str, Any] | None = None,
    parents: Sequence[str | Mapping[str, Any]] | None = None,
    artifacts: Sequence[str | Mapping[str, Any]] | None = None,
    resources: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    notes: str | None = None,
    config_file: str | os.PathLike[str] | None = None,
    extra: Mapping[str, Any] | None = None,
    force: bool = False,
    stage: bool = True,
) -> Card:
    """Register a checkpoint written by a training loop, exactly like `dvcckpt add`.

    `metrics` maps split -> metric -> value (nested mappings for per-class values;
    `{"value": v, "ci": [lo, hi], "method": "bootstrap"}` for estimates). Code,
    environment, hashes and time are captured automatically; the card is written
    next to the checkpoint as `PATH.ckpt.yaml` and staged with its `.dvc` file.
    `extra` holds `x-` extension sections.
    """
    fragment: dict[str, Any] = {
        "name": name,
        "model": model,
        "checkpoint": {"step": step, "epoch": epoch, "phase": phase, "kind": kind},
        "run": {"name": run} if isinstance(run, str) else dict(run or {}),
        "params": dict(params or {}),
        "data": dict(data or {}),
        "seeds": seeds if isinstance(seeds, int) else dict(seeds or {}),
        "training": dict(training or {}),
        "parents": list(parents or []),
        "artifacts": list(artifacts or []),
        "tags": list(tags or []),
        "notes": notes,
        **dict(extra or {}),
    }
    if metrics:
        fragment = fragments.merge(fragment, fragments.metrics_fragment(metrics))
    if resources:
        fragment = fragments.merge(fragment, {"resources": dict(resources)})
    provenance = checkpoint.Provenance(
        config_file=Path(config_file) if config_file is not None else None,
        from_running_program=True,
    )
    return checkpoint.add(
        Path(path), fragments.prune(fragment), provenance=provenance, force=force, stage=stage
    )


def load_card(
    reference: str | os.PathLike[str], repo: str | os.PathLike[str] | None = None
) -> Card:
    """A card by card path, checkpoint path or name; `NAME@REV` reads it from history."""
    project = Project.discover(Path(repo) if repo else None, require_dvc=False)
    return resolve.reference(project, os.fspath(reference))
