"""Python API for training loops and notebooks; mirrors the command line."""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Any, Literal, overload

from dvcckpt.cards import background as background_jobs
from dvcckpt.cards import register as checkpoint
from dvcckpt.cards import resolve
from dvcckpt.cards.card import Card

# `dvcckpt.evaluate`: the service itself is the Python face (same arguments, same record).
from dvcckpt.cards.evaluate import evaluate
from dvcckpt.catalog import Catalog
from dvcckpt.core import fragments
from dvcckpt.errors import UsageError
from dvcckpt.project import Project

__all__ = [
    "Card",
    "Catalog",
    "SaveArgumentError",
    "evaluate",
    "load",
    "load_card",
    "open_safetensors",
    "save",
    "wait",
]


class SaveArgumentError(UsageError, TypeError):
    """An argument of `save()` has the wrong type (also a TypeError)."""


_NUMBER = (int, float)
# Expected types of save()'s arguments (None is always allowed): a str is a Sequence,
# so `tags="abc"` must be refused explicitly instead of becoming three tags.
_EXPECTED: dict[str, tuple[tuple[type, ...], str]] = {
    "model": ((str,), "a string"),
    "phase": ((str,), "a string"),
    "kind": ((str,), "a string"),
    "name": ((str,), "a string"),
    "notes": ((str,), "a string"),
    "step": ((int,), "an integer"),
    "epoch": (_NUMBER, "a number"),
    "metrics": ((Mapping,), "a mapping of split -> metric -> value"),
    "params": ((Mapping,), "a mapping of parameter names to values"),
    "run": ((str, Mapping), "a run name or a mapping"),
    "data": ((Mapping,), "a mapping"),
    "seeds": ((int, Mapping), "an integer or a mapping of names to seeds"),
    "parents": ((Sequence,), "a list of RELATION=NAME strings or mappings"),
    "artifacts": ((Sequence,), "a list of paths or mappings"),
    "resources": ((Mapping,), "a mapping"),
    "training": ((Mapping,), "a mapping"),
    "tags": ((Sequence,), "a list of strings"),
    "config_file": ((str, os.PathLike), "a path"),
    "extra": ((Mapping,), "a mapping of x- sections"),
    "force": ((bool,), "True or False"),
    "stage": ((bool,), "True or False"),
    "draft": ((bool,), "True or False"),
    "background": ((bool,), "True or False"),
}


def _check_arguments(arguments: Mapping[str, Any]) -> None:
    for name, (types, expected) in _EXPECTED.items():
        value = arguments[name]
        if value is None:
            continue
        wrong = not isinstance(value, types)
        wrong |= isinstance(value, bool) and bool not in types  # True is an int
        wrong |= isinstance(value, str | bytes) and str not in types  # "abc" is a Sequence
        if not wrong and name == "tags":
            wrong = not all(isinstance(tag, str) for tag in value)
        if wrong:
            raise SaveArgumentError(
                f"save(): {name}={_short(value)} is a {type(value).__name__}, expected {expected}",
                hint=f"for example {name}={_EXAMPLES.get(name, 'None')}",
            )


_EXAMPLES = {
    "metrics": '{"dev": {"macro_f1": 0.84}}',
    "params": '{"lr": 0.0001}',
    "tags": '["baseline"]',
    "parents": '["finetuned_from=NAME"]',
    "step": "1000",
    "seeds": "42",
}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


@overload
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
    draft: bool = False,
    background: Literal[False] = False,
) -> Card: ...


@overload
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
    draft: bool = False,
    background: Literal[True],
) -> Future[Card]: ...


@overload
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
    draft: bool = False,
    background: bool = False,
) -> Card | Future[Card]: ...


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
    draft: bool = False,
    background: bool = False,
) -> Card | Future[Card]:
    """Register a checkpoint written by a training loop, exactly like `dvcckpt add`.

    `metrics` maps split -> metric -> value (nested mappings for per-class values;
    `{"value": v, "ci": [lo, hi], "method": "bootstrap"}` for estimates). Code,
    environment, hashes and time are captured automatically; the card is written
    next to the checkpoint as `PATH.ckpt.yaml` and staged with its `.dvc` file.
    `extra` holds `x-` extension sections. Arguments of the wrong type raise
    `SaveArgumentError` (a TypeError) naming the argument, before anything is written.

    A card the pre-commit check would refuse (a field `dvcckpt.yaml` requires, such as
    `seeds`, is missing; the name breaks the pattern or is taken) raises CardError, and
    nothing is written. `draft=True` writes one that only lacks required fields and
    prints a `warning:` line on stderr naming them: the commit fails until they are given.

    `background=True` returns a `concurrent.futures.Future` of the card at once (argument
    types are still checked at once); copying, hashing and writing run in a helper
    process (`DVCCKPT_SAVE_WORKER=thread`: a worker thread), in submission order, and `wait()` (or process exit) flushes. A save without
    it waits for the background saves still pending, so cards always land in call order.
    """
    _check_arguments(locals())
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

    if not isinstance(path, str | os.PathLike):  # checked now, also for a background save
        raise SaveArgumentError(
            f"save(): path {_short(path)} is a {type(path).__name__}, not a path",
            hint="pass the checkpoint's path as a string or pathlib.Path",
        )
    label = os.fspath(path)
    if background:
        # The job reads these when it runs: the loop may change its dicts (or its working
        # folder) after save() returns, and the worker must see them as they were given.
        # A module function and plain values: it runs in the registration process.
        job = partial(_register, os.path.abspath(path), copy.deepcopy(fragment), provenance,
                      (force, stage, draft))  # fmt: skip
        return background_jobs.submit(job, label, isolated=True)
    job = partial(_register, path, fragment, provenance, (force, stage, draft))
    return background_jobs.in_order(job, label)  # after any background save pending


def _register(
    path: str | os.PathLike[str],
    fragment: dict[str, Any],
    provenance: checkpoint.Provenance,
    flags: tuple[bool, bool, bool],
) -> Card:
    force, stage, draft = flags
    return checkpoint.add(
        path, fragments.prune(fragment), provenance=provenance, force=force, stage=stage,
        draft=draft, warn=_warn,
    )  # fmt: skip


def wait() -> list[Card]:
    """Block until every `save(..., background=True)` finished; returns their cards.

    Raises `BackgroundSaveError` naming every save that failed since the last `wait()`
    (the others landed: its `cards`); at process exit the same flush happens on its own
    and prints the failures as `error:` lines.
    """
    # Other background work (a callback's pruning) reports failures here too, not results.
    return [card for card in background_jobs.wait() if isinstance(card, Card)]


def load(
    reference: str,
    repo: str | os.PathLike[str] | None = None,
    *,
    allow_pickle: bool = False,
) -> Path:
    """A registered checkpoint's local path, by NAME or MODEL@STAGE, pulled and verified."""
    from dvcckpt.storage import load as loading

    return loading.load(reference, Path(repo) if repo else None, allow_pickle=allow_pickle)


def open_safetensors(
    reference: str,
    repo: str | os.PathLike[str] | None = None,
    *,
    file: str | None = None,
    framework: str = "pt",
) -> Any:
    """An open `safetensors.safe_open` handle on a checkpoint's verified weights (no pickle)."""
    from dvcckpt.storage import load as loading

    return loading.open_safetensors(
        reference, Path(repo) if repo else None, file=file, framework=framework
    )


def _warn(line: str) -> None:
    print(line, file=sys.stderr)


def load_card(
    reference: str | os.PathLike[str], repo: str | os.PathLike[str] | None = None
) -> Card:
    """A card by card path, checkpoint path or name; `NAME@REV` reads it from history."""
    project = Project.discover(Path(repo) if repo else None, require_dvc=False)
    return resolve.reference(project, os.fspath(reference))
