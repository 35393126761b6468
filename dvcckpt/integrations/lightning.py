"""PyTorch Lightning: a `ModelCheckpoint` that registers every checkpoint it saves.

    from dvcckpt.integrations.lightning import DvcckptCallback
    trainer = lightning.Trainer(callbacks=[DvcckptCallback(
        dirpath="models/mnist", monitor="val_acc", mode="max", save_top_k=2, model="mnist")])

It is Lightning's own `ModelCheckpoint` (same arguments, same files, same top-k
bookkeeping). After each save it registers the `.ckpt` through `dvcckpt.save(...,
background=True)` with the step and epoch, the metrics logged so far
(`trainer.callback_metrics`, split by `lightningnames.split_metric`), the seed of
`seed_everything`, whether deterministic algorithms were on, and the module's (and
datamodule's) hyper-parameters. When top-k drops a file, the callback waits for that
file's registration, lets Lightning delete it, then marks its card pruned (reason
"save_top_k"), in the same worker as the registrations. Only the main process
registers. A failure never reaches the training loop: it is logged on the `dvcckpt`
logger and summarised at the end of training, where the callback also waits for the
registrations still running.

`last.ckpt` (`save_last=True`) is not registered: Lightning rewrites it at every save,
and writes it only at a step where it also saved a top-k checkpoint (or links it to
one, `save_last="link"`), so its state is registered under that checkpoint's name.
(With `save_top_k=0` only `last.ckpt` is written: `dvcckpt add` it after training.)
"""

from __future__ import annotations

import logging
import math
import os
import struct
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint

from dvcckpt import api
from dvcckpt.cards import background, retire
from dvcckpt.core import lightningnames
from dvcckpt.errors import StateError, describe

log = logging.getLogger("dvcckpt")
PRUNE_REASON = "save_top_k"
_MAX_TEXT = 200  # a hyper-parameter that is an object is recorded as its bounded text


class DvcckptCallback(ModelCheckpoint):
    """`ModelCheckpoint` that registers each saved checkpoint with dvcckpt.

    Takes every `ModelCheckpoint` argument, plus: `model`, `phase`, `run` (a run name)
    and `tags` for the cards; `background` (default True: registration runs in a
    worker, off the training loop).
    """

    def __init__(
        self,
        *args: Any,
        model: str | None = None,
        phase: str | None = None,
        run: str | None = None,
        tags: Sequence[str] | None = None,
        background: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.card_options: dict[str, Any] = {
            "model": model,
            "phase": phase,
            "run": run,
            "tags": list(tags) if tags else None,
        }
        self.background = background
        # Absolute checkpoint path -> its save: a Future (background) or the card itself.
        self.registered: dict[str, Future[Any] | Any] = {}
        self.failures: list[str] = []

    # Lightning's hooks -------------------------------------------------------------

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        if trainer.is_global_zero and not self._is_last(filepath):
            self._guarded(f"registering {filepath}", lambda: self._register(trainer, filepath))

    def _remove_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        registration = self.registered.pop(os.path.abspath(filepath), None)
        # The file must outlive its registration, which reads it in the background.
        registered = registration is not None and self._guarded(
            f"registering {filepath}", lambda: _settled(registration)
        )
        super()._remove_checkpoint(trainer, filepath)
        if trainer.is_global_zero and registered:
            self._guarded(f"marking {filepath} pruned", lambda: self._prune(filepath))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        if trainer.is_global_zero:
            self.wait()

    def wait(self) -> None:
        """Wait for the registrations still running; log what failed, with a summary."""
        # `dvcckpt.wait()` names every failed background save (and stops the exit flush
        # reporting them a second time).
        self._guarded("waiting for checkpoint registrations", api.wait)
        self.registered.clear()
        if self.failures:
            log.error(
                "dvcckpt: %d checkpoint registration problem(s) during training: %s",
                len(self.failures),
                "; ".join(self.failures),
            )

    # Registration -------------------------------------------------------------------

    def _is_last(self, filepath: str) -> bool:
        """Whether this save is `last.ckpt` (Lightning names it before it saves it)."""
        return bool(self.last_model_path) and filepath == self.last_model_path

    def _register(self, trainer: pl.Trainer, filepath: str) -> None:
        saved = api.save(filepath, background=self.background, **self._record(trainer))
        self.registered[os.path.abspath(filepath)] = saved

    def _prune(self, filepath: str) -> None:
        """Mark the card of a file top-k deleted as pruned: in the background worker, after
        the registrations before it, so it never races one for the git index or the DVC
        cache (a failure is named by `dvcckpt.wait()` at the end of training)."""
        if self.background:
            background.submit(partial(_prune, filepath), f"pruning {filepath}")
        else:
            _prune(filepath)

    def _record(self, trainer: pl.Trainer) -> dict[str, Any]:
        """What `dvcckpt.save` gets for a checkpoint saved now."""
        position = self._monitor_candidates(trainer)  # the epoch and step the name shows
        metrics = _finite_metrics(trainer.callback_metrics)
        module = trainer.lightning_module
        datamodule = getattr(trainer, "datamodule", None)
        params = {**_hparams(datamodule), **_hparams(module)}
        record: dict[str, Any] = {
            **self.card_options,
            "step": int(position["step"]),
            "epoch": int(position["epoch"]),
            "kind": "weights" if self.save_weights_only else "full",
            "metrics": lightningnames.grouped(metrics.items()) or None,
            "params": params or None,
            "seeds": _seeds(),
            "extra": {"x-lightning": self._checkpointing()},
        }
        return record

    def _checkpointing(self) -> dict[str, Any]:
        """The top-k settings, the monitored metric as a card field and the best so far."""
        section: dict[str, Any] = {"save_top_k": self.save_top_k}
        if self.monitor:
            where = lightningnames.split_metric(self.monitor)
            section["monitor"] = ".".join(where) if where else self.monitor
            section["mode"] = self.mode
            best = _number(self.best_model_score)
            if best is not None:
                section["best_score"] = best
        return section

    def _guarded(self, what: str, action: Callable[[], Any]) -> bool:
        """Run `action`; a failure is logged and kept, never raised into training."""
        try:
            action()
        except Exception as exc:  # the training run matters more than its registration
            message, hint = describe(exc)
            message = f"{message} (hint: {hint})"
            self.failures.append(f"{what}: {message}")
            log.error("dvcckpt: %s failed: %s", what, message)
            return False
        return True


def _settled(saved: Any) -> Any:
    """The card of a save, waiting for it if it runs in the background."""
    return saved.result() if isinstance(saved, Future) else saved


def _prune(filepath: str) -> None:
    from dvcckpt.project import Project

    checkpoint = Path(os.path.abspath(filepath))
    if not retire.prune(Project.discover(checkpoint.parent), [checkpoint], PRUNE_REASON):
        raise StateError(
            f"the card of {checkpoint.name} was left live",
            hint=f"`dvcckpt retire --missing --reason {PRUNE_REASON}` marks it pruned",
        )


def _number(value: Any) -> float | None:
    """A logged value (a one-element tensor or a number) as a finite float."""
    try:
        if hasattr(value, "numel"):
            if value.numel() != 1:
                return None
            single = value.dtype == value.new_zeros(()).float().dtype  # float32
            value = value.item()
            if single:
                value = _shortest_single(float(value))
        number = float(value)
    except (TypeError, ValueError, RuntimeError):
        return None
    return number if math.isfinite(number) else None


def _shortest_single(value: float) -> float:
    """The shortest decimal that is the same float32: 0.84 logged as float32 reads
    0.8399999737739563 as a double, and the card should say 0.84, as it was logged."""
    single = struct.pack("<f", value)
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.pack("<f", candidate) == single:
            return candidate
    return value


def _finite_metrics(logged: Mapping[str, Any]) -> dict[str, float]:
    """Logged scalar metrics by name; the position keys and non-finite values left out."""
    metrics: dict[str, float] = {}
    for name, value in logged.items():
        number = _number(value)
        if name in lightningnames.POSITION_KEYS:
            continue
        if number is None:
            log.warning("dvcckpt: metric %r = %r is not a finite scalar: not recorded", name, value)
            continue
        metrics[name] = number
    return metrics


def _hparams(holder: Any) -> dict[str, Any]:
    hparams = getattr(holder, "hparams", None)
    if not isinstance(hparams, Mapping):
        return {}
    return {str(key): _plain(value) for key, value in hparams.items()}


def _plain(value: Any) -> Any:
    """A hyper-parameter as card data: numbers, text, lists and mappings of them."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    text = str(value)
    return text if len(text) <= _MAX_TEXT else f"{text[: _MAX_TEXT - 3]}..."


def _seeds() -> dict[str, Any] | None:
    """`seed_everything`'s seed (Lightning exports it as PL_GLOBAL_SEED) and determinism."""
    import torch

    seeds: dict[str, Any] = {"deterministic": torch.are_deterministic_algorithms_enabled()}
    seed = os.environ.get("PL_GLOBAL_SEED", "")
    if seed.lstrip("-").isdigit():
        seeds["seed"] = int(seed)
    if os.environ.get("PL_SEED_WORKERS") == "1":
        seeds["flags"] = {"seed_workers": True}
    return seeds
