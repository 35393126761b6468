"""Hugging Face Trainer's own records of a checkpoint (`trainer_state.json`, `training_args.bin`).

A `checkpoint-N/` folder holds the Trainer's state at step N: `global_step`, `epoch`,
the log history (train loss and every evaluation so far), the best metric so far, and
the pickled `TrainingArguments` (read inertly by `cards.hfargs`). `fragment` turns them
into the card: the step, the epoch, the metrics logged *at that step*, the seed, the
training arguments that matter, gradient accumulation, early stopping and the best
checkpoint so far (`training.x-best_model`).

Both files are the framework's record of the checkpoint, so a malformed one is an
error naming it (a card built from half of them would be wrong), never skipped.

Evaluation entries name their split by prefix: `eval_loss` is `eval.loss`;
`eval_dev_loss` (a dict of eval datasets) is `dev.loss`; `test_loss` is `test.loss`.
Throughput figures (`eval_runtime`, `*_per_second`) are not metrics and are left out.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeGuard

from dvcckpt.cards import hfargs
from dvcckpt.core import fragments
from dvcckpt.errors import UsageError

STATE_NAME = "trainer_state.json"
ARGS_NAME = "training_args.bin"
MAX_STATE_BYTES = 64 << 20  # a million log entries; far beyond any real run
# TrainingArguments fields that describe the optimisation (recorded as params).
PARAMS = (
    "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps",
    "num_train_epochs", "max_steps", "weight_decay", "warmup_steps", "warmup_ratio",
    "lr_scheduler_type", "optim", "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm",
    "label_smoothing_factor", "fp16", "bf16", "gradient_checkpointing",
)  # fmt: skip
_THROUGHPUT = ("_runtime", "_samples_per_second", "_steps_per_second", "_jit_compilation_time",
               "_model_preparation_time")  # fmt: skip
_TRAIN_METRICS = ("loss",)


def fragment(checkpoint: Path) -> dict[str, Any]:
    """Step, epoch, metrics at that step, best metric, seed and training arguments."""
    state_file = checkpoint / STATE_NAME
    if not checkpoint.is_dir() or not state_file.is_file():
        return {}
    state = read_state(state_file)
    step = state["global_step"]
    args = hfargs.read(checkpoint / ARGS_NAME) if (checkpoint / ARGS_NAME).is_file() else {}
    position: dict[str, Any] = {"step": step, "epoch": state.get("epoch")}
    if args.get("save_only_model") is True:
        position["kind"] = "weights"  # no optimizer state: not resumable
    if not (_integer(args.get("max_steps")) and args["max_steps"] > 0):
        args.pop("max_steps", None)  # -1: the epochs decide
    return fragments.prune({
        "checkpoint": position,
        "metrics": _metrics(state_file, state["log_history"], step, latest=False),
        "params": {key: args[key] for key in PARAMS if args.get(key) is not None},
        "seeds": _seeds(args),
        "training": _training(state, args),
        "run": {"name": args["run_name"]} if _real_run_name(args) else {},
    })  # fmt: skip


def metrics_at(source: Path, step: int | None) -> dict[str, Any] | None:
    """Metrics of a `trainer_state.json` given as `--metrics`; None if `source` is not one.

    Recognised by content (a JSON object with `global_step` and `log_history`), or by
    its name, or as a folder holding one. Each split takes its evaluation at `step`, or
    else its latest one before `step` (a checkpoint saved between evaluations carries
    the last evaluation it had seen); without a step, the file's `global_step` is the
    step, and it is recorded with its epoch.
    """
    state_file = source / STATE_NAME if source.is_dir() else source
    if not _looks_like_state(state_file):
        return None
    state = read_state(state_file)
    found: dict[str, Any] = {}
    if step is None:
        step = state["global_step"]
        found["checkpoint"] = {"step": step, "epoch": state.get("epoch")}
    metrics = _metrics(state_file, state["log_history"], step, latest=True)
    if not metrics:
        raise UsageError(
            f"--metrics {state_file}: no metrics logged at or before step {step}",
            hint="pass the trainer_state.json of a later checkpoint, or --step STEP",
        )
    found["metrics"] = metrics
    return found


def read_state(path: Path) -> dict[str, Any]:
    """`trainer_state.json`, checked: a clear error naming the file and field if malformed."""
    try:
        if path.stat().st_size > MAX_STATE_BYTES:
            raise _malformed(path, f"over {MAX_STATE_BYTES} bytes")
        state = json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError) as exc:
        raise _malformed(
            path, f"cannot be read ({getattr(exc, 'strerror', None) or exc})"
        ) from None
    except json.JSONDecodeError as exc:
        raise _malformed(path, f"invalid JSON at line {exc.lineno}: {exc.msg}") from None
    except RecursionError:
        raise _malformed(path, "nested too deeply") from None
    if not isinstance(state, dict):
        raise _malformed(path, "not a JSON object")
    _check_fields(path, state)
    return state


def _check_fields(path: Path, state: dict[str, Any]) -> None:
    step = state.get("global_step")
    if not _integer(step) or step < 0:
        raise _malformed(path, f"global_step is {_shown(step)}, not a step number")
    if state.get("epoch") is not None and not _finite(state["epoch"]):
        raise _malformed(path, f"epoch is {_shown(state['epoch'])}, not a number")
    history = state.setdefault("log_history", [])
    if not isinstance(history, list) or not all(isinstance(e, dict) for e in history):
        raise _malformed(path, "log_history is not a list of log entries")
    for index, entry in enumerate(history):
        if not _integer(entry.get("step")):
            raise _malformed(path, f"log_history[{index}].step is {_shown(entry.get('step'))}")
    for key, check in (("best_metric", _finite), ("best_global_step", _integer)):
        if state.get(key) is not None and not check(state[key]):
            raise _malformed(path, f"{key} is {_shown(state[key])}")
    if not isinstance(state.get("best_model_checkpoint") or "", str):
        raise _malformed(path, "best_model_checkpoint is not a path")
    if not isinstance(state.get("stateful_callbacks") or {}, dict):
        raise _malformed(path, "stateful_callbacks is not an object")


def _metrics(
    path: Path, history: list[dict[str, Any]], step: int, latest: bool
) -> dict[str, dict[str, float]]:
    """split -> metric -> value at `step` (or, if `latest`, each split's last one up to it)."""
    found: dict[str, dict[str, float]] = {}
    for entry in history:
        if entry["step"] > step or (not latest and entry["step"] != step):
            continue
        for split, values in _entry_metrics(path, entry).items():
            found[split] = values  # later entries (closer to `step`) replace earlier ones
    return found


def _entry_metrics(path: Path, entry: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """One log entry's metrics by split: an evaluation's by prefix, a training log's loss."""
    ends = [key.removesuffix("_runtime") for key in entry if key.endswith("_runtime")]
    if not ends and any(key.startswith("eval_") for key in entry):
        ends = ["eval"]  # an evaluation logged without timing
    if "train" in ends:
        return {}  # the end-of-training summary: whole-run averages and throughput
    if not ends:
        return _checked(path, entry, {"train": {k: entry[k] for k in _TRAIN_METRICS if k in entry}})
    prefixes = sorted(ends, key=len, reverse=True)  # `eval_dev_loss` is dev's, not eval's
    found: dict[str, dict[str, Any]] = {}
    for key, value in entry.items():
        prefix = next((p for p in prefixes if key.startswith(f"{p}_")), None)
        if prefix is not None and not key.endswith(_THROUGHPUT):
            found.setdefault(_split(prefix), {})[key[len(prefix) + 1 :]] = value
    return _checked(path, entry, found)


def _split(prefix: str) -> str:
    return prefix.removeprefix("eval_") if prefix.startswith("eval_") else prefix


def _checked(
    path: Path, entry: Mapping[str, Any], found: dict[str, dict[str, Any]]
) -> dict[str, dict[str, float]]:
    """Numbers only (strings and lists are not metrics a card holds); non-finite refused."""
    result: dict[str, dict[str, float]] = {}
    for split, values in found.items():
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if not math.isfinite(value):
                raise UsageError(
                    f"{path}: log_history at step {entry['step']}: {split}.{name} is {value}",
                    hint="a card records finite metrics only; the run diverged at this step, "
                    "so register a checkpoint from before it",
                )
            result.setdefault(split, {})[name] = value
    return result


def _seeds(args: Mapping[str, Any]) -> dict[str, Any]:
    seeds: dict[str, Any] = {}
    for field, key in (("seed", "seed"), ("data_seed", "data_seed")):
        if _integer(args.get(field)):
            seeds[key] = args[field]
    if args.get("full_determinism") is True:
        seeds["deterministic"] = True  # False only means HF did not enforce it
    return seeds


def _training(state: Mapping[str, Any], args: Mapping[str, Any]) -> dict[str, Any]:
    """Early stopping (if its callback ran) and the best checkpoint so far."""
    training: dict[str, Any] = {}
    monitor = _monitored(args.get("metric_for_best_model"))
    mode = "max" if args.get("greater_is_better") is True else "min"
    stopping = (state.get("stateful_callbacks") or {}).get("EarlyStoppingCallback")
    settings = stopping.get("args") if isinstance(stopping, dict) else None
    if isinstance(settings, dict) and monitor:
        early = {"monitor": monitor, "mode": mode}
        if _integer(settings.get("early_stopping_patience")):
            early["patience"] = settings["early_stopping_patience"]
        if _finite(settings.get("early_stopping_threshold")):
            early["min_delta"] = settings["early_stopping_threshold"]
        training["early_stopping"] = early
    if state.get("best_metric") is not None:
        best: dict[str, Any] = {"metric": monitor, "mode": mode if monitor else None}
        best["value"] = state["best_metric"]
        best["step"] = state.get("best_global_step")
        # Only the folder's name: the Trainer records a path that may hold a home folder.
        checkpoint = state.get("best_model_checkpoint")
        best["checkpoint"] = os.path.basename(os.path.normpath(checkpoint)) if checkpoint else None
        training["x-best_model"] = {key: value for key, value in best.items() if value is not None}
    return training


def _monitored(name: Any) -> str | None:
    """HF's `metric_for_best_model` (`accuracy`, `eval_loss`) as the card's `eval.accuracy`."""
    if not isinstance(name, str) or not name:
        return None
    return f"eval.{name.removeprefix('eval_')}"


def _real_run_name(args: Mapping[str, Any]) -> bool:
    """A run name the user gave (older versions default it to the output folder)."""
    name = args.get("run_name")
    return isinstance(name, str) and bool(name.strip()) and name != args.get("output_dir")


def _looks_like_state(path: Path) -> bool:
    """A `trainer_state.json` by name, or by content: a small JSON object with its keys."""
    if not path.is_file():
        return False
    if path.name == STATE_NAME:
        return True
    try:
        if path.suffix != ".json" or path.stat().st_size > MAX_STATE_BYTES:
            return False
        with path.open("rb") as stream:
            if not stream.read(4096).lstrip().startswith(b"{"):
                return False
        document = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return False  # not ours: the plain metrics reader reports it
    return isinstance(document, dict) and {"global_step", "log_history"} <= document.keys()


def _integer(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _malformed(path: Path, why: str) -> UsageError:
    return UsageError(
        f"{path}: not a readable Hugging Face trainer state: {why}",
        hint="the Trainer writes this file at every save; restore it from the run, "
        "or copy the weights without it to register them on their own",
    )
