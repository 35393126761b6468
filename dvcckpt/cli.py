"""Command line: each command parses options, calls the library, renders the result.

`main` is the one boundary that maps exceptions to `error:`/`hint:` lines and
exit codes (0 ok, 1 check failed, 2 usage, 3 config, 4 repository/state,
70 internal bug). Library modules are imported inside commands so `--help`
starts fast and never loads dvc or jsonschema.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from dvcckpt import __version__
from dvcckpt.errors import DvcckptError, UsageError

EXIT_INTERNAL = 70
EXIT_USAGE = 2


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="dvcckpt")
def cli() -> None:
    """Git-native checkpoint registry built on DVC.

    Each checkpoint is a DVC output with a YAML card committed beside it that
    records its code, data, params, seeds, environment and metrics.
    """


@cli.command("add")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--model", help="Model name (default: the checkpoint's folder name).")
@click.option(
    "--phase", help="Training phase: pretrain, train, finetune, distill, ... (default: train)."
)
@click.option(
    "--kind",
    type=click.Choice(["full", "weights", "optimizer", "ema"]),
    help="What the checkpoint holds (default: full).",
)
@click.option(
    "--step",
    type=click.IntRange(min=0),
    help="Optimizer step (inferred from names like checkpoint-500).",
)
@click.option("--epoch", type=click.FloatRange(min=0), help="Epoch at which it was saved.")
@click.option("--name", help="Checkpoint name (default: from the naming pattern in dvcckpt.yaml).")
@click.option("--run", "run_name", help="Run name (default: from the run naming pattern).")
@click.option("--task", help="Task, e.g. text_classification.")
@click.option("--group", help="Experiment group, e.g. ner_tokenizer_ablation.")
@click.option("--hypothesis", help="What this run tests.")
@click.option("--owner", help="Who is responsible for the run.")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Hyperparameter (repeatable; dotted keys nest).",
)
@click.option(
    "--params",
    "params_file",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Hyperparameters from a YAML or JSON file.",
)
@click.option(
    "-m",
    "--metric",
    "metrics",
    multiple=True,
    metavar="SPLIT.METRIC=VALUE",
    help="Metric value (repeatable), e.g. dev.macro_f1=0.84 or dev.class_f1.neg=0.8.",
)
@click.option(
    "--metrics",
    "metrics_file",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Metrics from a YAML/JSON file, e.g. dvclive's metrics.json.",
)
@click.option(
    "-r",
    "--resource",
    "resources",
    multiple=True,
    metavar="KEY=VALUE",
    help="Resource use (repeatable): gpu_hours, peak_vram_mb, latency_ms_p95, ...",
)
@click.option("--data", "dataset", metavar="NAME=VERSION", help="Dataset name and version.")
@click.option(
    "--split",
    "splits",
    multiple=True,
    metavar="NAME=HASH|FILE",
    help="Data split hash, or a file/folder that dvcckpt hashes (repeatable).",
)
@click.option(
    "--seed",
    "seeds",
    multiple=True,
    metavar="SEED|NAME=SEED",
    help="Random seed; NAME=SEED for extra seeds such as data_shuffle=7 (repeatable).",
)
@click.option(
    "--deterministic/--no-deterministic",
    default=None,
    help="Whether deterministic algorithms were enforced.",
)
@click.option(
    "--parent",
    "parents",
    multiple=True,
    metavar="RELATION=NAME",
    help="Lineage: resumed_from, finetuned_from or distilled_from (repeatable).",
)
@click.option(
    "--artifact",
    "artifacts",
    multiple=True,
    metavar="PATH",
    help="Auxiliary file to record with its hash: tokenizer, confusion matrix (repeatable).",
)
@click.option("--tag", "tags", multiple=True, help="Tag (repeatable).")
@click.option("--notes", help="Free-text notes.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Training config file; its path and sha256 are recorded.",
)
@click.option("--script", help="Training script that produced the checkpoint.")
@click.option("--command", "command_line", help="Command line that produced the checkpoint.")
@click.option(
    "--from",
    "run_record",
    type=click.Path(path_type=Path),
    metavar="RUN.json",
    help="Import a run record (run_name, dataset, code, env, params, metrics, ...).",
)
@click.option("--force", is_flag=True, help="Replace an existing, uncommitted card.")
@click.option("--no-stage", is_flag=True, help="Do not `git add` the card and .dvc file.")
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
def add_command(path: Path, **options: Any) -> None:
    """Register the checkpoint at PATH (file or directory).

    Runs `dvc add`, hashes the content with sha256, captures code, data and
    environment provenance, writes PATH.ckpt.yaml and stages it for commit.
    """
    from dvcckpt import checkpoint, inputs, render

    fragment, replaced = inputs.from_add_options(options)
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
    )
    if options["as_json"]:
        emit_json(written.data)
    else:
        click.echo(render.added_summary(written.data, written.path))


@cli.command("show")
@click.argument("reference", metavar="NAME|PATH")
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
def show_command(reference: str, as_json: bool) -> None:
    """Show one checkpoint card, by name, checkpoint path or card path.

    NAME@REV shows the card as committed at a revision (from the catalog).
    """
    from dvcckpt import api, render

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
    help="Revision to compare against for immutability and deletions (CI: origin/main).",
)
@click.option("--json", "as_json", is_flag=True, help="Print findings as JSON.")
def check_command(files: tuple[Path, ...], all_cards: bool, base: str, as_json: bool) -> None:
    """Check cards before they are committed (the pre-commit hook).

    Without FILES, checks what is staged. Reports every finding: schema
    violations by field path, naming, consistency with the .dvc pointer,
    required fields from dvcckpt.yaml, changes to immutable fields and
    deleted cards. Exits 1 if anything is wrong.
    """
    from dvcckpt import hook
    from dvcckpt.errors import CheckFailed

    report = hook.check([str(f) for f in files] if files else None, all_cards=all_cards, base=base)
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
        raise CheckFailed(
            f"{len(report.findings)} problem(s) in {count} file(s)",
            hint="fix the fields listed above; immutable fields cannot change once committed "
            "(register a new checkpoint instead)",
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
    from dvcckpt import hook, vcs

    path = hook.install(vcs.toplevel(Path.cwd()), force=force)
    click.echo(f"installed {path}")


@cli.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--strict", is_flag=True, help="Exit 1 when any recommended field is missing.")
def doctor_command(as_json: bool, strict: bool) -> None:
    """List the recommended fields each card is missing (seeds, split hashes, ...)."""
    from dvcckpt import doctor, render
    from dvcckpt.errors import CheckFailed
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
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
def init_command(directory: Path, project_name: str | None, as_json: bool) -> None:
    """Set up a repository for dvcckpt (safe to re-run).

    Runs git init / dvc init when needed and writes dvcckpt.yaml, an example
    gates.yaml, the pre-commit hook (merged into an existing
    .pre-commit-config.yaml), a GitHub workflow and a pull request template.
    """
    from dvcckpt import scaffold

    actions = scaffold.init(directory, project_name)
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
    from dvcckpt import lookup, migrations
    from dvcckpt.project import Project

    project = Project.discover(require_dvc=False)
    paths = list(files) or lookup.card_files(project)
    changed = migrations.upgrade_files(project, paths, dry_run=dry_run)
    for path, steps in changed:
        click.echo(f"{'would migrate' if dry_run else 'migrated'} {path}: {', '.join(steps)}")
    click.echo(
        f"{len(changed)} of {len(paths)} card(s) {'need' if dry_run else 'needed'} migration"
    )


@cli.command("retire")
@click.argument("reference", metavar="NAME|PATH")
@click.option("--reason", required=True, help="Why the checkpoint is retired (kept in history).")
@click.option("--keep-pointer", is_flag=True, help="Keep the .dvc pointer (data stays reachable).")
def retire_command(reference: str, reason: str, keep_pointer: bool) -> None:
    """Retire a checkpoint: its card becomes a tombstone instead of being deleted."""
    from dvcckpt import tombstone
    from dvcckpt.project import Project

    written = tombstone.retire(Project.discover(require_dvc=False), reference, reason, keep_pointer)
    click.echo(f"retired {written.name}; commit the change to record it")


@cli.group("catalog")
def catalog_group() -> None:
    """Manage the index of card versions built from Git history.

    The catalog lives in the git directory; commands that read it update it
    first, so these are for scripting, debugging and benchmarks.
    """


@catalog_group.command("rebuild")
@click.option("--json", "as_json", is_flag=True, help="Print statistics as JSON.")
def catalog_rebuild(as_json: bool) -> None:
    """Index all history from scratch."""
    from dvcckpt.catalog import Catalog

    _print_stats(Catalog(refresh=False).rebuild(), as_json)


@catalog_group.command("update")
@click.option("--json", "as_json", is_flag=True, help="Print statistics as JSON.")
def catalog_update(as_json: bool) -> None:
    """Index new commits only (repairs itself after a rebase or force-push)."""
    from dvcckpt.catalog import Catalog

    _print_stats(Catalog(refresh=False).update(), as_json)


@catalog_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def catalog_status(as_json: bool) -> None:
    """Where the catalog is and what it holds."""
    from dvcckpt.catalog import Catalog

    status = Catalog().status()
    if as_json:
        emit_json(status)
    else:
        for key, value in status.items():
            click.echo(f"{key:>16}  {value}")


def _print_stats(stats: Any, as_json: bool) -> None:
    if as_json:
        emit_json(stats.as_dict())
        return
    verb = "rebuilt" if stats.rebuilt else "updated"
    click.echo(
        f"{verb}: +{stats.commits_added} commits, -{stats.commits_removed} commits, "
        f"{stats.versions_added} card versions, {stats.cards_parsed} cards parsed "
        f"in {stats.seconds:.2f} s"
    )


@cli.command("log")
@click.argument("target", required=False, metavar="[MODEL|NAME]")
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="SPLIT.METRIC",
    help="Metric column (repeatable; default: primary_metric from dvcckpt.yaml).",
)
@click.option("--rev", metavar="A..B", help="Only commits in this revision range.")
@click.option(
    "--all", "all_refs", is_flag=True, help="Commits of all branches and tags, not only HEAD."
)
@click.option("-n", "limit", type=click.IntRange(min=1), help="Show at most N rows.")
@click.option("--json", "fmt", flag_value="json", help="Rows as JSON.")
@click.option("--csv", "fmt", flag_value="csv", help="Rows as CSV.")
@click.option("--md", "fmt", flag_value="md", help="Rows as a Markdown table.")
@click.option(
    "--plot",
    "plot_to",
    is_flag=False,
    flag_value="-",
    default=None,
    metavar="[FILE]",
    help="Chart the first metric: in the terminal, or to FILE.html/.svg/.png.",
)
def log_command(
    target: str | None,
    metrics: tuple[str, ...],
    rev: str | None,
    all_refs: bool,
    limit: int | None,
    fmt: str | None,
    plot_to: str | None,
) -> None:
    """Performance history across commits, newest first.

    One row per commit that added or changed a card of MODEL (or of the
    checkpoint NAME): commit, date, author, checkpoint, step, the chosen
    metrics and their change against the previous row.
    """
    from dvcckpt import render
    from dvcckpt.catalog import Catalog
    from dvcckpt.config import load

    catalog = Catalog()
    chosen = list(metrics) or [m for m in [load(catalog.root).primary_metric] if m]
    rows = catalog.log(target, metrics=chosen, rev=rev, all_refs=all_refs, limit=limit)
    if plot_to is not None:
        from dvcckpt import plot

        if not chosen:
            raise UsageError("--plot needs a metric", hint="pass --metric SPLIT.METRIC")
        if plot_to == "-":
            click.echo(plot.terminal(rows, chosen[0]))
        else:
            click.echo(f"wrote {plot.write(rows, chosen[0], Path(plot_to))}")
        return
    click.echo(render.log_rows(rows, chosen, fmt), nl=fmt != "csv")


@cli.command("find")
@click.option(
    "--where",
    metavar="EXPR",
    help='Filter, e.g. \'metrics.test.macro_f1 >= 0.85 and (phase == "finetune" or "baseline" in tags)\'.',
)
@click.option("--model", help="Only this model.")
@click.option("--phase", help="Only this phase.")
@click.option("--tag", help="Only cards with this tag.")
@click.option("--owner", help="Only runs with this owner.")
@click.option("--since", metavar="DATE", help="Created on or after DATE (YYYY-MM-DD).")
@click.option("--until", metavar="DATE", help="Created on or before DATE (YYYY-MM-DD).")
@click.option(
    "--sort",
    metavar="FIELDS",
    help="Sort keys, `-` for descending: -metrics.dev.f1,resources.latency_ms_p95.",
)
@click.option("--top", metavar="N|P%", help="Keep the best N, or the best P percent, by --by.")
@click.option(
    "--by", metavar="METRIC", help="Ranking field for --top (higher is better; +FIELD: lower)."
)
@click.option(
    "--all-versions", is_flag=True, help="Every version of each card, not only the latest."
)
@click.option(
    "--all", "all_refs", is_flag=True, help="Search all branches and tags, not only HEAD."
)
@click.option("--json", "fmt", flag_value="json", help="Matching cards as JSON.")
@click.option("--csv", "fmt", flag_value="csv", help="Rows as CSV.")
def find_command(fmt: str | None, **options: Any) -> None:
    """Find checkpoints by metrics, phase, tags, owner and dates."""
    from dvcckpt import render
    from dvcckpt.catalog import Catalog
    from dvcckpt.config import load
    from dvcckpt.performance import metric_path

    catalog = Catalog()
    primary = load(catalog.root).primary_metric
    columns = [metric_path(primary)] if primary else []
    for spec in filter(None, [options.get("by"), *(options.get("sort") or "").split(",")]):
        field = spec.strip().lstrip("-+")
        if field and field not in columns:
            columns.append(field)
    found = catalog.find(columns=columns, **options)
    if fmt == "json":
        emit_json([render.version_json(v) for v in found])
    else:
        click.echo(render.find_rows(found, columns, fmt), nl=fmt != "csv")


@cli.command("diff")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("--all-fields", is_flag=True, help="Show equal fields too.")
@click.option("--md", "fmt", flag_value="md", help="Markdown tables (for pull requests).")
@click.option("--json", "fmt", flag_value="json", help="Differences as JSON.")
def diff_command(a: str, b: str, all_fields: bool, fmt: str | None) -> None:
    """Compare params, data, seeds, env, code and metrics of two checkpoints.

    A and B are checkpoint names, NAME@REV, or two revisions (then every card
    that differs between them is compared).
    """
    from dvcckpt import comparison, render
    from dvcckpt.catalog import Catalog

    results = comparison.compare(Catalog(), a, b, everything=all_fields)
    if fmt == "json":
        emit_json([r.as_dict() for r in results])
    else:
        click.echo(render.comparisons(results, markdown=fmt == "md"))


@cli.command("schema")
@click.option("--config", "which", flag_value="config.v1", help="The dvcckpt.yaml schema instead.")
@click.option("--gates", "which", flag_value="gates.v1", help="The gates.yaml schema instead.")
@click.option("--path", "show_path", is_flag=True, help="Print the schema file's path only.")
def schema_command(which: str | None, show_path: bool) -> None:
    """Print the JSON Schema of cards (for editors and validators)."""
    from dvcckpt import resources

    path = resources.schema_path(which or "checkpoint.v1")
    click.echo(
        str(path) if show_path else path.read_text(encoding="utf-8"), nl=not show_path or True
    )


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
    from dvcckpt.quickstart import run

    run(directory, epochs=epochs, seed=seed, echo=click.echo)


# Command groups kept in their own modules register themselves on `cli` (click only).
from dvcckpt import promotion_cli, storage_cli  # noqa: E402, F401


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn every failure into a message and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    show_traceback = "--traceback" in args
    args = [a for a in args if a != "--traceback"]
    try:
        result = cli.main(args=args, prog_name="dvcckpt", standalone_mode=False)
    except DvcckptError as exc:
        _report(exc.message, exc.hint, exc.details, show_traceback)
        return exc.exit_code
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "dvcckpt"
        _report(exc.format_message(), f"see `{command} --help`", [], show_traceback)
        return EXIT_USAGE
    except click.Abort:
        _report("aborted", None, [], show_traceback)
        return 130
    except KeyboardInterrupt:
        _report("interrupted", None, [], show_traceback)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the boundary: anything else is our bug
        _report(
            f"internal error: {type(exc).__name__}: {exc}",
            "re-run with --traceback and report it at the dvcckpt issue tracker",
            [],
            show_traceback,
        )
        return EXIT_INTERNAL
    return result if isinstance(result, int) else 0


def _report(message: str, hint: str | None, details: list[str], show_traceback: bool) -> None:
    if show_traceback:
        traceback.print_exc()
    click.echo(f"error: {message}", err=True)
    for line in details:
        click.echo(f"  {line}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
