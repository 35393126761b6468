"""Evaluation commands: evaluate (append an evaluation to a committed card)."""

from __future__ import annotations

import click

from dvcckpt.cli.group import cli, emit_json


@cli.command("evaluate")
@click.argument("reference", metavar="NAME|PATH")
@click.option("--split", required=True, metavar="SPLIT",
              help="The split or benchmark evaluated, e.g. test or mnli_mismatched.")  # fmt: skip
@click.option(
    "-m",
    "--metric",
    "metrics",
    multiple=True,
    metavar="METRIC=VALUE",
    help="Metric of the split (repeatable), spelt as for `add -m` without the split: "
    "macro_f1=0.81, class_f1.neg=0.7, or f1=0.86:0.84:0.88 (value:low:high of a CI).",
)
@click.option("--step", type=click.IntRange(min=0),
              help="Training step of the evaluated weights, if not the checkpoint's.")  # fmt: skip
@click.option("--protocol", metavar="TEXT",
              help="How it was evaluated, e.g. 'greedy decoding, 5-shot'.")  # fmt: skip
@click.option("--notes", metavar="TEXT", help="Free-text notes, e.g. caveats.")
@click.option("--json", "as_json", is_flag=True, help="Print the appended record as JSON.")
def evaluate_command(
    reference: str,
    split: str,
    metrics: tuple[str, ...],
    step: int | None,
    protocol: str | None,
    notes: str | None,
    as_json: bool,
) -> None:
    """Append an evaluation to a checkpoint's card (its evaluations only grow).

    Records the split, its metrics, when and who (git user), and optionally the
    step, protocol and notes; the card is staged, so `git commit` records it and
    the pre-commit hook checks that earlier evaluations were left unchanged.

    \b
    Example:
      dvcckpt evaluate sentiment-train-full-3f9a1c-step000300 --split test \\
          -m macro_f1=0.81 -m class_f1.neg=0.78 --protocol 'bootstrap, 1000 resamples'
      git commit -m 'Evaluate step 300 on test'
    """
    from dvcckpt.cards import evaluate as evaluation
    from dvcckpt.project import Project

    project = Project.discover(require_dvc=False)
    values = evaluation.metrics_from_options(split, metrics)
    entry = evaluation.new_entry(
        project.root, split, values, step=step, protocol=protocol, notes=notes
    )
    done = evaluation.append(project, reference, entry)
    if as_json:
        emit_json(done.as_dict())
        return
    shown = ", ".join(f"{key}={value}" for key, value in _leaves(done.entry["metrics"]))
    click.echo(f"evaluated {done.name} on {split}: {shown}")
    click.echo(f"  card  {done.card_file} (evaluations[{done.index}], staged)")
    click.echo(f"next: git commit -m 'Evaluate {done.name} on {split}'")


def _leaves(metrics: dict[str, object]) -> list[tuple[str, object]]:
    from dvcckpt.core.fields import leaves

    return [(key, _value(value)) for key, value in leaves(metrics)]


def _value(value: object) -> object:
    if isinstance(value, dict) and "value" in value:
        ci = value.get("ci")
        return f"{value['value']} [{ci[0]}, {ci[1]}]" if isinstance(ci, list) else value["value"]
    return value
