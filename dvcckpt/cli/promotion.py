"""Promotion commands (gate, promote, reject, archive, stages); registered on the main CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dvcckpt.cli.group import cli, emit_json

# Decisions are signed with this key (see the README's Trust model).
_KEY = click.option(
    "--key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SSH private key that signs the decision (default: git's user.signingkey).",
)


def _project() -> Any:
    from dvcckpt.project import Project

    return Project.discover(require_dvc=False)


def _write_or_echo(text: str, output: str | None) -> None:
    """A document to FILE (atomically) or to stdout."""
    if output is None:
        click.echo(text, nl=False)
        return
    from pathlib import Path

    from dvcckpt.adapters import atomic

    atomic.write_text(Path(output).resolve(), text)
    click.echo(f"wrote {output}", err=True)


def _default_stage(project: Any, stage: str | None) -> str:
    return stage or project.config.stages[-1]


@cli.command("gate")
@click.argument("reference", metavar="NAME")
@click.option(
    "--stage", help="Stage whose gates to evaluate (default: the last stage, e.g. production)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def gate_command(reference: str, stage: str | None, as_json: bool) -> None:
    """Evaluate a checkpoint against the quality gates of a stage (exit 1 if any fails)."""
    from dvcckpt.cards import resolve
    from dvcckpt.errors import CheckFailed
    from dvcckpt.present import text as render
    from dvcckpt.promotion import decisions

    project = _project()
    data = resolve.reference(project, reference).data
    evaluation = decisions.evaluate(project, data, _default_stage(project, stage))
    if as_json:
        emit_json(evaluation.as_dict())
    else:
        click.echo(render.gate_table(evaluation))
    if not evaluation.passed:
        failed = sum(not r.passed for r in evaluation.results)
        raise CheckFailed(
            f"{data['name']} fails {failed} gate(s) for {evaluation.stage}",
            hint="see the table above; `dvcckpt promote --override --reason` records an exception",
        )


@cli.command("promote")
@click.argument("reference", metavar="NAME")
@click.option(
    "--to", "stage", required=True, help="Stage to promote to, e.g. staging or production."
)
@click.option(
    "--rationale", required=True, help="Why this checkpoint (kept in the decision record)."
)
@click.option("--override", is_flag=True, help="Promote despite failing gates (needs --reason).")
@click.option("--reason", help="Why the failing gates are overridden.")
@_KEY
@click.option("--json", "as_json", is_flag=True, help="Print the decision's gate results as JSON.")
def promote_command(
    reference: str,
    stage: str,
    rationale: str,
    override: bool,
    reason: str | None,
    key: Path | None,
    as_json: bool,
) -> None:
    """Record a promotion on the card after its gates pass, and stage the card.

    Commit it on a branch and open a pull request: the promotion takes effect
    when the pull request is merged into the main branch.
    """
    from dvcckpt.errors import UsageError
    from dvcckpt.present import text as render
    from dvcckpt.promotion import decisions

    if override and not reason:
        raise UsageError("--override needs --reason", hint="say why the gates are overridden")
    project = _project()
    written, evaluation = decisions.promote(
        project, reference, stage, rationale, reason if override else None, key
    )
    if as_json:
        emit_json(evaluation.as_dict())
        return
    click.echo(render.gate_table(evaluation))
    flagged = " (OVERRIDE)" if written.data["decisions"][-1].get("override") else ""
    click.echo(
        f"promoted {written.name} to {stage}{flagged}; commit on a branch and open a pull request"
    )


@cli.command("reject")
@click.argument("reference", metavar="NAME")
@click.option("--reason", required=True, help="Why the checkpoint is rejected.")
@click.option("--stage", help="Stage it was considered for.")
@_KEY
def reject_command(reference: str, reason: str, stage: str | None, key: Path | None) -> None:
    """Record a rejection (with its reason) on the card."""
    from dvcckpt.promotion import decisions

    written = decisions.record(_project(), reference, "rejected", reason, stage, key)
    click.echo(f"rejected {written.name}; commit to record it")


@cli.command("archive")
@click.argument("reference", metavar="NAME")
@click.option("--reason", required=True, help="Why the run is archived.")
@_KEY
def archive_command(reference: str, reason: str, key: Path | None) -> None:
    """Archive a rejected run with its reason (it also leaves any stage it held)."""
    from dvcckpt.promotion import decisions

    written = decisions.record(_project(), reference, "archived", reason, key=key)
    click.echo(f"archived {written.name}; commit to record it")


@cli.command("stages")
@click.argument("model", required=False)
@click.option(
    "--history", "show_history", is_flag=True, help="Also list every decision, oldest first."
)
@click.option("--json", "as_json", is_flag=True, help="Print holders and history as JSON.")
def stages_command(model: str | None, show_history: bool, as_json: bool) -> None:
    """Who holds each stage on the main branch (latest decision in merge order)."""
    from dvcckpt.present import text as render
    from dvcckpt.promotion import stages

    project = _project()
    history = stages.decisions(project)
    if model:
        history = [d for d in history if d.model == model or d.name == model]
    holders = stages.holders(history)
    if as_json:
        emit_json(
            {
                "holders": {f"{m}@{s}": d.as_dict() for (m, s), d in holders.items()},
                "history": [d.as_dict() for d in history],
            }
        )
        return
    click.echo(
        render.stage_table(holders, project.config.stages, history if show_history else None)
    )


@cli.command("report")
@click.option("--base", metavar="REF", help="Base to compare with (default: the main branch).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "html"]),
    default="md",
    show_default=True,
    help="Markdown (for a PR comment) or a standalone HTML page.",
)
@click.option("--output", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
def report_command(base: str | None, fmt: str, output: str | None) -> None:
    """Review report of this branch: checkpoints, metrics vs production, gates, decisions, lineage."""
    from dvcckpt.present import report as render_report
    from dvcckpt.present import reporthtml
    from dvcckpt.promotion import report

    data = report.build(_project(), base)
    text = reporthtml.render(data) if fmt == "html" else render_report.markdown(data)
    _write_or_echo(text, output)


@cli.command("card")
@click.argument("reference", metavar="NAME")
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    help="Write to FILE (e.g. README.md) instead of stdout.",
)
def card_command(reference: str, output: str | None) -> None:
    """Model card (README with Hugging Face front matter) for a checkpoint or MODEL@STAGE."""
    from dvcckpt.cards import resolve
    from dvcckpt.present import modelcard

    text = modelcard.render(resolve.reference(_project(), reference).data)
    _write_or_echo(text, output)


@cli.command("tag")
@click.option("--dry-run", is_flag=True, help="Only list the tags that would be created.")
def tag_command(dry_run: bool) -> None:
    """Mirror merged promotions as GTO tags (MODEL@vX.Y.Z, MODEL#STAGE#N) with dvc.yaml artifacts.

    Run on the main branch after a promotion is merged; safe to re-run. A new
    version gets a small commit registering the checkpoint in dvc.yaml.
    """
    from dvcckpt.promotion import interop

    actions = interop.register(_project(), dry_run=dry_run)
    click.echo("\n".join(actions) if actions else "nothing to tag")


@cli.command("audit")
@click.argument("model", required=False)
@click.option(
    "--verify",
    "strict",
    is_flag=True,
    help="Exit 1 if any decision fails verification or a holder no longer matches its card.",
)
@click.option("--json", "as_json", is_flag=True, help="Print every decision as JSON.")
def audit_command(model: str | None, strict: bool, as_json: bool) -> None:
    """Every decision on the main branch: card, stage, verdict, signer, when, why, and status.

    Status is `verified` (validly signed by an owner), `unsigned` (counted only
    while promotion.require_signed is false) or `invalid` (ignored, with the reason).

    Example: dvcckpt audit sentiment --verify
    """
    from dvcckpt.errors import CheckFailed
    from dvcckpt.present import text as render
    from dvcckpt.promotion import audit

    result = audit.audit(_project(), model)
    if as_json:
        emit_json(result.as_dict())
    else:
        click.echo(render.audit_table(audit.rows(result), result.broken_holders))
    if strict and not result.ok:
        bad = [d for d in result.decisions if not d.counts]
        raise CheckFailed(
            f"audit of {result.branch}: {len(bad)} invalid decision(s), "
            f"{len(result.broken_holders)} broken stage holder(s)",
            hint="an invalid decision was merged without review or history was rewritten; "
            "`dvcckpt audit --json` shows each reason",
        )
