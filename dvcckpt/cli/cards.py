"""Card commands: add, show, check, install-hook, doctor, init, migrate, retire, schema, quickstart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dvcckpt.cli.group import cli, emit_json
from dvcckpt.cli.options import add_options


@cli.command("add")
@add_options
def add_command(path: str, **options: Any) -> None:
    """Register the checkpoint at PATH (file or directory).

    Runs `dvc add`, hashes the content with sha256, captures code, data and
    environment provenance, writes PATH.ckpt.yaml and stages it for commit.
    A card the pre-commit check would refuse (a field dvcckpt.yaml requires is
    missing, a name that breaks the pattern or is taken) is refused before
    anything is written; --draft writes one that only lacks required fields.

    \b
    Example:
      dvcckpt add models/bert/checkpoint-500 --run-id 3kd9x2 --seed 42 \\
        --split test=data/test.csv -m dev.macro_f1=0.84
      dvcckpt add models/bert/checkpoint-900 --run-id 3kd9x2 --draft
    """
    from dvcckpt.cards import inputs
    from dvcckpt.cards import register as checkpoint
    from dvcckpt.present import text as render

    fragment, replaced = inputs.from_add_options(options, Path(path))
    warnings: list[str] = []
    provenance = checkpoint.Provenance(
        script=options["script"],
        command=options["command_line"],
        config_file=options["config_file"],
    )
    written = checkpoint.add(
        path,
        fragment,
        provenance=provenance,
        replaced_sections=replaced,
        force=options["force"],
        stage=not options["no_stage"],
        draft=options["draft"],
        warn=warnings.append,
    )
    if options["as_json"]:
        emit_json(written.data)
    else:
        summary = render.added_summary(written.data, written.path)
        if warnings:  # a draft: the commit is not the next step yet
            summary = "\n".join(
                line for line in summary.splitlines() if not line.startswith("next:")
            )
        click.echo(summary)
    for line in warnings:
        click.echo(line, err=True)


@cli.command("show")
@click.argument("reference", metavar="NAME|PATH")
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
def show_command(reference: str, as_json: bool) -> None:
    """Show one checkpoint card, by name, checkpoint path or card path.

    NAME@REV shows the card as committed at a revision (from the catalog).
    """
    from dvcckpt import api
    from dvcckpt.present import text as render

    found = api.load_card(reference)
    if as_json:
        emit_json(found.data)
    else:
        click.echo(render.card_text(found.data), nl=False)


@cli.command("check")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--all", "all_cards", is_flag=True, help="Check every card in the index, not only staged ones."
)
@click.option(
    "--base",
    default="HEAD",
    show_default=True,
    metavar="REV",
    help="Revision to compare against (CI: origin/main). Other than HEAD, every decision the "
    "change adds is also re-verified under that revision's gates, config and signers.",
)
@click.option("--json", "as_json", is_flag=True, help="Print findings as JSON.")
def check_command(files: tuple[Path, ...], all_cards: bool, base: str, as_json: bool) -> None:
    """Check cards before they are committed (the pre-commit hook).

    Without FILES, checks what is staged. Reports every finding: schema
    violations by field path, naming, consistency with the .dvc pointer,
    required fields from dvcckpt.yaml, changes to immutable fields and
    deleted cards. Exits 1 if anything is wrong.
    """
    from dvcckpt.cards import check as hook
    from dvcckpt.errors import CheckFailed

    report = hook.check(
        [str(f) for f in files] if files else None,
        all_cards=all_cards,
        base=base,
        verify_decisions=base != "HEAD",
    )
    if as_json:
        emit_json(
            {
                "ok": report.ok,
                "cards": report.cards,
                "findings": [f.as_dict() for f in report.findings],
            }
        )
    else:
        for finding in report.findings:
            click.echo(str(finding))
    if not report.ok:
        count = len({f.file for f in report.findings})
        changed_history = any(f.history for f in report.findings)
        raise CheckFailed(
            f"{len(report.findings)} problem(s) in {count} file(s)",
            hint="committed fields cannot change: restore them, or register a new checkpoint"
            if changed_history
            else "fix the problems listed above, then stage the files again",
        )
    if not as_json:
        click.echo(f"ok: {len(report.cards)} card(s) checked", err=True)


@cli.command("install-hook")
@click.option(
    "--force", is_flag=True, help="Replace an existing pre-commit hook not written by dvcckpt."
)
def install_hook_command(force: bool) -> None:
    """Install a native git pre-commit hook running `dvcckpt check`.

    For teams without the pre-commit framework. Never overwrites another hook
    unless --force is given.
    """
    from dvcckpt.adapters import git
    from dvcckpt.cards import check as hook

    path = hook.install(git.toplevel(Path.cwd()), force=force)
    click.echo(f"installed {path}")


@cli.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--strict", is_flag=True, help="Exit 1 when any recommended field is missing.")
def doctor_command(as_json: bool, strict: bool) -> None:
    """List the recommended fields each card is missing (seeds, split hashes, ...)."""
    from dvcckpt.cards import doctor
    from dvcckpt.errors import CheckFailed
    from dvcckpt.present import text as render
    from dvcckpt.project import Project

    results = doctor.diagnose(Project.discover(require_dvc=False))
    if as_json:
        emit_json([r.as_dict() for r in results])
    else:
        click.echo(render.doctor_table(results, doctor.fix_for))
    if strict and any(r.missing or r.error for r in results):
        raise CheckFailed("some cards miss recommended fields", hint="see the fixes listed above")


@cli.command("init")
@click.argument("directory", type=click.Path(path_type=Path), default=".")
@click.option(
    "--project", "project_name", help="Project name for dvcckpt.yaml (default: folder name)."
)
@click.option(
    "--install-source",
    metavar="REQUIREMENT",
    help="What the workflows install, exactly pinned: dvcckpt==X.Y.Z or "
    "git+https://HOST/PATH@COMMIT (default: where this dvcckpt came from).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
def init_command(
    directory: Path, project_name: str | None, install_source: str | None, as_json: bool
) -> None:
    """Set up a repository for dvcckpt (safe to re-run).

    Runs git init / dvc init when needed and writes dvcckpt.yaml, an example
    gates.yaml, the pre-commit hook (merged into an existing
    .pre-commit-config.yaml), GitHub workflows and a pull request template.

    \b
    Example:
      dvcckpt init --install-source 'git+https://github.com/acme/dvcckpt@<commit>'
    """
    from dvcckpt.setup import scaffold

    actions = scaffold.init(directory, project_name, install_source=install_source)
    if as_json:
        emit_json([a.as_dict() for a in actions])
        return
    for action in actions:
        click.echo(f"{action.what:>11}  {action.path}")
    click.echo("next: pip install pre-commit && pre-commit install")


@cli.command("migrate")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Only list the cards that would be upgraded.")
def migrate_command(files: tuple[Path, ...], dry_run: bool) -> None:
    """Upgrade cards written under an older card schema (all cards without FILES)."""
    from dvcckpt.cards import migrate, resolve
    from dvcckpt.project import Project

    project = Project.discover(require_dvc=False)
    paths = list(files) or resolve.card_files(project)
    changed = migrate.upgrade_files(project, paths, dry_run=dry_run)
    for path, steps in changed:
        click.echo(f"{'would migrate' if dry_run else 'migrated'} {path}: {', '.join(steps)}")
    click.echo(
        f"{len(changed)} of {len(paths)} card(s) {'need' if dry_run else 'needed'} migration"
    )


@cli.command("retire")
@click.argument("reference", metavar="NAME|PATH", required=False)
@click.option("--reason", required=True, help="Why the checkpoint is retired (kept in history).")
@click.option("--keep-pointer", is_flag=True, help="Keep the .dvc pointer (data stays reachable).")
@click.option(
    "--missing",
    is_flag=True,
    help="Mark every checkpoint deleted from the work tree (by save_total_limit, save_top_k) "
    "as pruned, in one change, and release its DVC cache copy.",
)
@click.option("--dry-run", is_flag=True, help="With --missing: only say what would be pruned.")
@click.option(
    "--json", "as_json", is_flag=True, help="With --missing: print what was done as JSON."
)
def retire_command(
    reference: str | None,
    reason: str,
    keep_pointer: bool,
    missing: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Retire a checkpoint: its card becomes a tombstone instead of being deleted.

    With --missing, every live card whose checkpoint a training framework deleted is
    marked pruned instead, and the DVC cache copies no live checkpoint uses are released.

    \b
    Example:
      dvcckpt retire models/bert/checkpoint-500 --reason 'diverged after warm-up'
      dvcckpt retire --missing --reason save_total_limit
    """
    from dvcckpt.cards import retire as tombstone
    from dvcckpt.errors import UsageError
    from dvcckpt.project import Project

    if missing == (reference is not None) or (keep_pointer and missing):
        raise UsageError(
            "name one checkpoint, or pass --missing (without --keep-pointer)",
            hint="dvcckpt retire NAME --reason TEXT, or dvcckpt retire --missing --reason TEXT",
        )
    if (dry_run or as_json) and not missing:
        raise UsageError("--dry-run and --json go with --missing", hint="add --missing")
    project = Project.discover(require_dvc=False)
    if not missing:
        written = tombstone.retire(project, str(reference), reason, keep_pointer)
        click.echo(f"retired {written.name}; commit the change to record it")
        return
    from dvcckpt.present import pruning

    result = tombstone.prune_batch(project, None, reason, dry_run=dry_run)
    if as_json:
        emit_json({**result.as_dict(), "dry_run": dry_run})
        return
    click.echo("\n".join(pruning.summary(result, dry_run)))


@cli.command("schema")
@click.option("--config", "which", flag_value="config.v1", help="The dvcckpt.yaml schema instead.")
@click.option("--gates", "which", flag_value="gates.v1", help="The gates.yaml schema instead.")
@click.option("--path", "show_path", is_flag=True, help="Print the schema file's path only.")
def schema_command(which: str | None, show_path: bool) -> None:
    """Print the JSON Schema of cards (for editors and validators)."""
    from dvcckpt.core import resources

    path = resources.schema_path(which or "checkpoint.v1")
    click.echo(str(path) if show_path else path.read_text(encoding="utf-8"))


@cli.command("quickstart")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--epochs",
    type=click.IntRange(1, 50),
    default=4,
    show_default=True,
    help="Training epochs (one checkpoint each).",
)
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed.")
def quickstart_command(directory: Path, epochs: int, seed: int) -> None:
    """Demo: train a tiny model in a new git+DVC repo, registering a checkpoint per epoch."""
    from dvcckpt.setup.quickstart import run

    run(directory, epochs=epochs, seed=seed, echo=click.echo)
