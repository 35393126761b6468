"""Hugging Face Transformers: a `TrainerCallback` that registers every checkpoint the Trainer saves.

    from dvcckpt.integrations.transformers import DvcckptCallback
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=dev,
                      callbacks=[DvcckptCallback(model="sentiment")])

At each save it registers `output_dir/checkpoint-N` with `dvcckpt.save(...,
background=True)`; the card's step, epoch, the metrics logged at that step, the best
metric so far, the seed and the training arguments come from the folder's own
`trainer_state.json` and `training_args.bin` (`cards.hfstate`, as `dvcckpt add
checkpoint-N/` reads them). Every card of one `train()` carries the same run id.

Folders the Trainer deletes (`save_total_limit`) are marked pruned with the reason
"save_total_limit": at each save when registering synchronously, and in one batch at
the end of training otherwise. A folder always outlives its registration: before a
save that may delete folders, the callback waits for theirs.

Only the main process registers. Nothing raises into the training loop: a failure
(a NaN metric, a card already committed) is logged on the `dvcckpt` logger and
summarised when training ends, where the callback waits for the registrations still
running (`dvcckpt.wait()`); `callback.failures` lists them, `callback.cards` the cards.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from dvcckpt import api
from dvcckpt.cards import retire
from dvcckpt.core import layout
from dvcckpt.errors import BackgroundSaveError, DvcckptError

log = logging.getLogger("dvcckpt")
PRUNE_REASON = "save_total_limit"
_CHECKPOINT_PREFIX = "checkpoint-"
# `dvcckpt.save` arguments a caller may fix for every card of the run.
_CARD_OPTIONS = frozenset({"kind", "data", "parents", "artifacts", "notes", "extra", "params"})


class DvcckptCallback(TrainerCallback):
    """Registers each `checkpoint-N/` the Trainer saves as a dvcckpt card.

    `model` names the model (default: the output folder's name); `phase`, `tags` and
    `run` (a run name; default the Trainer's `run_name`) go on every card, and so do
    `card_options` (`data`, `parents`, `notes`, ... as `dvcckpt.save` takes them).
    `run_id` fixes the run id (default: a fresh one per `train()`, e.g. to keep a
    resumed run's). `background` (default True) registers off the training loop.
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        phase: str | None = None,
        tags: Sequence[str] | None = None,
        run: str | None = None,
        run_id: str | None = None,
        background: bool = True,
        **card_options: Any,
    ) -> None:
        unknown = sorted(set(card_options) - _CARD_OPTIONS)
        if unknown:
            raise TypeError(
                f"DvcckptCallback: unknown option {unknown[0]!r} "
                f"(card options: {', '.join(sorted(_CARD_OPTIONS))})"
            )
        self.model, self.phase, self.run, self.run_id = model, phase, run, run_id
        self.tags = list(tags) if tags else None
        self.background = background
        self.card_options = card_options
        self.cards: list[Any] = []  # the cards registered (and pruned) during training
        self.failures: list[str] = []
        self._errors: list[BaseException] = []  # the exceptions behind `failures`
        self._saves: list[tuple[Path, Future[Any]]] = []  # in save order
        self._watched: dict[Path, None] = {}  # folders with a card that should stay
        self._pruned: set[Path] = set()
        self._run_id = run_id

    # The Trainer's events ----------------------------------------------------------

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        self._run_id = self.run_id or secrets.token_hex(3)
        self._saves, self.cards, self.failures, self._pruned = [], [], [], set()
        self._errors = []
        # Folders of earlier runs that already have cards: the Trainer may rotate them out.
        self._watched = dict.fromkeys(_registered_folders(Path(str(args.output_dir))))

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        self._before_save(args, state, control)

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        self._before_save(args, state, control)

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        folder = Path(str(args.output_dir)) / f"{_CHECKPOINT_PREFIX}{state.global_step}"
        self._guarded(f"registering {folder}", lambda: self._register(folder, args))
        if control.should_training_stop and args.save_total_limit:
            # After the last save the Trainer may delete all but the best folder.
            self._settle(len(self._saves))
        if not self.background:
            self._prune_deleted(args)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        self._settle(len(self._saves))  # each failure named by its folder
        self._guarded("waiting for checkpoint registrations", self._wait_for_the_rest)
        self._prune_deleted(args)
        self._summarise()

    # Registration -------------------------------------------------------------------

    def _register(self, folder: Path, args: TrainingArguments) -> None:
        run = self.run or (args.run_name if args.run_name != args.output_dir else None)
        saved = api.save(
            folder,
            model=self.model or Path(os.path.abspath(str(args.output_dir))).name,
            phase=self.phase,
            run={key: value for key, value in (("name", run), ("id", self._run_id)) if value},
            tags=self.tags,
            background=self.background,
            **self.card_options,
        )
        self._saves.append((folder, _as_future(saved)))
        self._watched[folder] = None

    def _before_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl
    ) -> None:
        """Before a save that may delete folders, wait for those folders' registrations."""
        limit = args.save_total_limit
        may_save = control.should_save or (
            str(args.save_strategy) in ("best", "SaveStrategy.BEST") and control.should_evaluate
        )
        if state.is_world_process_zero and limit and may_save:
            # The save keeps the newest `limit` folders, counting the one it writes.
            self._settle(len(self._saves) - (limit - 1))

    def _settle(self, count: int) -> None:
        """Wait for the first `count` registrations; record each outcome once."""
        while self._saves and count > 0:
            folder, future = self._saves.pop(0)
            count -= 1
            self._guarded(f"registering {folder}", partial(_collect, self.cards, future))

    def _prune_deleted(self, args: TrainingArguments) -> None:
        """Mark the cards of registered folders the Trainer deleted as pruned."""
        pending = {folder for folder, _ in self._saves}
        gone = [
            folder
            for folder in self._watched
            if folder not in pending and folder not in self._pruned and not folder.exists()
        ]
        if not gone or not args.save_total_limit:
            return  # without a limit, the Trainer deletes nothing: leave it to the user
        self._pruned.update(gone)
        self._guarded(
            f"marking {len(gone)} deleted checkpoint(s) pruned", lambda: self._prune(gone)
        )

    def _prune(self, gone: list[Path]) -> None:
        from dvcckpt.project import Project

        absolute = [Path(os.path.abspath(folder)) for folder in gone]
        project = Project.discover(absolute[0].parent)
        self.cards.extend(retire.prune(project, absolute, PRUNE_REASON))

    def _wait_for_the_rest(self) -> None:
        """`dvcckpt.wait()` (the exit flush then reports nothing twice); failures of other
        background saves of the program are logged, ours were already."""
        try:
            api.wait()
        except BackgroundSaveError as exc:
            for label, error in exc.failures:
                if not any(error is seen for seen in self._errors):
                    self._guarded(f"saving {label}", partial(_reraise, error))

    # Failures never reach the training loop ----------------------------------------

    def _guarded(self, what: str, action: Callable[[], Any]) -> bool:
        try:
            action()
        except Exception as exc:  # the training run must go on whatever failed
            message = f"{what}: {_describe(exc)}"
            self.failures.append(message)
            self._errors.append(exc)
            log.error("dvcckpt: %s", message, exc_info=not isinstance(exc, DvcckptError))
            return False
        return True

    def _summarise(self) -> None:
        if self.failures:
            log.error(
                "dvcckpt: %d checkpoint registration problem(s) during training: %s",
                len(self.failures),
                "; ".join(self.failures),
            )
        else:
            log.info("dvcckpt: %d card(s) written, staged for commit", len(self.cards))


def _registered_folders(output_dir: Path) -> list[Path]:
    """`checkpoint-N` folders in `output_dir` that have a card beside them."""
    if not output_dir.is_dir():
        return []
    names = sorted(os.listdir(output_dir))
    carded = {found for name in names for found in layout.checkpoints_of_card(name)}
    return [
        output_dir / name
        for name in names
        if name.startswith(_CHECKPOINT_PREFIX) and name in carded and (output_dir / name).is_dir()
    ]


def _reraise(error: BaseException) -> None:
    raise error


def _collect(cards: list[Any], future: Future[Any]) -> None:
    cards.append(future.result())


def _as_future(saved: Any) -> Future[Any]:
    """`dvcckpt.save`'s result as a Future (a synchronous save returns the card itself)."""
    if isinstance(saved, Future):
        return saved
    done: Future[Any] = Future()
    done.set_result(saved)
    return done


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DvcckptError):
        return f"{exc.message} (hint: {exc.hint})" if exc.hint else exc.message
    return f"{type(exc).__name__}: {exc}"
