"""The options of `dvcckpt add` (and their help), kept apart from the command itself."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from dvcckpt.core.fields import KINDS

F = TypeVar("F", bound=Callable[..., Any])

ADD_OPTIONS = [
    click.argument("path", type=click.Path()),
    click.option("--model", help="Model name (default: the checkpoint's folder name)."),
    click.option(
        "--phase", help="Training phase: pretrain, train, finetune, distill, ... (default: train)."
    ),
    click.option(
        "--kind",
        type=click.Choice(KINDS),
        help="What the checkpoint holds (default: full).",
    ),
    click.option(
        "--step",
        type=click.IntRange(min=0),
        help="Optimizer step (inferred from names like checkpoint-500); without one, a "
        "named run's checkpoint is its final model.",
    ),
    click.option("--epoch", type=click.FloatRange(min=0), help="Epoch at which it was saved."),
    click.option(
        "--name", help="Checkpoint name (default: from the naming pattern in dvcckpt.yaml)."
    ),
    click.option("--run", "run_name", help="Run name (default: from the run naming pattern)."),
    click.option(
        "--run-id",
        help="Short id of the run, e.g. a tracker's run id; fills {run_id} in names (default: "
        "derived from --run, so one run's checkpoints share it, or random without --run).",
    ),
    click.option("--task", help="Task, e.g. text_classification."),
    click.option("--group", help="Experiment group, e.g. ner_tokenizer_ablation."),
    click.option("--hypothesis", help="What this run tests."),
    click.option("--owner", help="Who is responsible for the run."),
    click.option(
        "-p",
        "--param",
        "params",
        multiple=True,
        metavar="KEY=VALUE",
        help="Hyperparameter (repeatable; dotted keys nest).",
    ),
    click.option(
        "--params",
        "params_file",
        type=click.Path(path_type=Path),
        metavar="FILE",
        help="Hyperparameters from a YAML or JSON file.",
    ),
    click.option(
        "-m",
        "--metric",
        "metrics",
        multiple=True,
        metavar="SPLIT.METRIC=VALUE",
        help="Metric value (repeatable), e.g. dev.macro_f1=0.84 or dev.class_f1.neg=0.8; with a"
        " confidence interval VALUE:LOW:HIGH[:METHOD], e.g. test.f1=0.86:0.84:0.88:bootstrap.",
    ),
    click.option(
        "--metrics",
        "metrics_file",
        type=click.Path(path_type=Path),
        metavar="FILE",
        help="Metrics from a YAML/JSON file, e.g. dvclive's metrics.json.",
    ),
    click.option(
        "-r",
        "--resource",
        "resources",
        multiple=True,
        metavar="KEY=VALUE",
        help="Resource use (repeatable): gpu_hours, peak_vram_mb, latency_ms_p95, ...",
    ),
    click.option("--data", "dataset", metavar="NAME=VERSION", help="Dataset name and version."),
    click.option(
        "--split",
        "splits",
        multiple=True,
        metavar="NAME=HASH|FILE",
        help="Data split hash, or a file/folder that dvcckpt hashes (repeatable).",
    ),
    click.option(
        "--seed",
        "seeds",
        multiple=True,
        metavar="SEED|NAME=SEED",
        help="Random seed; NAME=SEED for extra seeds such as data_shuffle=7 (repeatable).",
    ),
    click.option(
        "--deterministic/--no-deterministic",
        default=None,
        help="Whether deterministic algorithms were enforced.",
    ),
    click.option(
        "--parent",
        "parents",
        multiple=True,
        metavar="RELATION=NAME",
        help="Lineage: resumed_from, finetuned_from or distilled_from (repeatable).",
    ),
    click.option(
        "--artifact",
        "artifacts",
        multiple=True,
        metavar="PATH",
        help="Auxiliary file to record with its hash: tokenizer, confusion matrix (repeatable).",
    ),
    click.option("--tag", "tags", multiple=True, help="Tag (repeatable)."),
    click.option("--notes", help="Free-text notes."),
    click.option(
        "--config",
        "config_file",
        type=click.Path(path_type=Path),
        metavar="FILE",
        help="Training config file; its path and sha256 are recorded.",
    ),
    click.option("--script", help="Training script that produced the checkpoint."),
    click.option("--command", "command_line", help="Command line that produced the checkpoint."),
    click.option(
        "--from",
        "run_record",
        type=click.Path(path_type=Path),
        metavar="RUN.json",
        help="Import a run record (run_name, dataset, code, env, params, metrics, ...); "
        "a record without a step registers the run's final model.",
    ),
    click.option(
        "--draft",
        is_flag=True,
        help="Write the card even if it lacks fields dvcckpt.yaml requires (e.g. seeds.seed); "
        "warns which ones, since the pre-commit check refuses it until they are given.",
    ),
    click.option("--force", is_flag=True, help="Replace an existing, uncommitted card."),
    click.option("--no-stage", is_flag=True, help="Do not `git add` the card and .dvc file."),
    click.option("--json", "as_json", is_flag=True, help="Print the card as JSON."),
]


def add_options(command: F) -> F:
    """Apply every `add` option, in the order `--help` lists them."""
    for option in reversed(ADD_OPTIONS):
        command = option(command)
    return command
