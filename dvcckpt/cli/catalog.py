"""Catalog commands: catalog rebuild/update/status/publish, log, find, diff."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dvcckpt.cli.group import cli, emit_json
from dvcckpt.errors import UsageError


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

    catalog = Catalog(refresh=False)
    _print_stats(catalog.rebuild(), as_json)
    _note_memory(catalog)


@catalog_group.command("update")
@click.option("--json", "as_json", is_flag=True, help="Print statistics as JSON.")
def catalog_update(as_json: bool) -> None:
    """Index new commits only (repairs itself after a rebase or force-push)."""
    from dvcckpt.catalog import Catalog

    catalog = Catalog(refresh=False)
    _print_stats(catalog.update(), as_json)
    _note_memory(catalog)


def _note_memory(catalog: Any) -> None:
    if catalog.in_memory:
        click.echo(f"note: {catalog.in_memory}: the catalog was built in memory only", err=True)


@catalog_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def catalog_status(as_json: bool) -> None:
    """Where the catalog is, what it holds, and the card versions it could not index."""
    from dvcckpt.catalog import Catalog

    status = Catalog().status()
    if as_json:
        emit_json(status)
        return
    problems = status.pop("index_errors")
    for key, value in status.items():
        if value is not None:
            click.echo(f"{key:>16}  {value}")
    if problems:
        click.echo(f"\n{len(problems)} card version(s) could not be indexed and are skipped:")
    for problem in problems:
        click.echo(f"  {problem['path']} @ {problem['commit'][:10]}: {problem['message'][:300]}")


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


LOG_ROWS = 100  # rows the `log` table shows unless -n says otherwise


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
@click.option(
    "-n",
    "limit",
    type=click.IntRange(min=0),
    help=f"Show at most N rows (the table: {LOG_ROWS} unless given; 0: every row).",
)
@click.option(
    "--by",
    "by",
    type=click.Choice(["run", "run.id"]),
    help="Follow runs: the table lists each run's checkpoints together (runs newest first)"
    " and --plot draws one line per run, by run name (`run`) or run id (`run.id`).",
)
@click.option(
    "--evaluations",
    is_flag=True,
    help="Evaluation history instead: one row per evaluation (split, when, by whom, metrics);"
    " --metric SPLIT.METRIC reads that split's evaluations.",
)
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
    by: str | None,
    evaluations: bool,
    fmt: str | None,
    plot_to: str | None,
) -> None:
    """Performance history across commits, newest first.

    One row per commit that added or changed a card of MODEL (or of the
    checkpoint NAME): commit, date, author, checkpoint, run, step, the chosen
    metrics and their change against the run's previous checkpoint. A metric
    recorded with an interval reads `0.86 [0.84, 0.88]`.

    \b
    Examples:
      dvcckpt log sentiment --metric dev.macro_f1 --by run --plot runs.html
      dvcckpt log sentiment --evaluations --metric test.macro_f1
    """
    from dvcckpt.catalog import Catalog
    from dvcckpt.catalog.where import field_option
    from dvcckpt.present import queries as tables
    from dvcckpt.project import load_config

    for spec in metrics:
        field_option("--metric", spec, "dev.macro_f1")
    catalog = Catalog()
    # Evaluations are listed whole unless a --metric picks splits; a primary metric
    # from dvcckpt.yaml would silently hide every other split's evaluations.
    primary = None if evaluations else load_config(catalog.root).primary_metric
    chosen = list(metrics) or [m for m in [primary] if m]
    # A primary metric from dvcckpt.yaml that this model lacks is an empty column; only
    # a --metric the user typed is refused as unknown.
    options: dict[str, Any] = {"evaluations": evaluations, "check_metrics": bool(metrics)}
    # The terminal table shows the newest rows; files, JSON and plots get every row.
    shown = LOG_ROWS if limit is None and fmt is None and plot_to is None else limit or None
    asked = shown + 1 if shown and limit is None else shown  # one more: are there older?
    rows = catalog.log(target, metrics=chosen, rev=rev, all_refs=all_refs, limit=asked, **options)
    if shown and len(rows) > shown:
        rows = rows[:shown]
        click.echo(f"(newest {shown} rows; -n N shows more, -n 0 every row)", err=True)
    if plot_to is not None:  # one line per run, in the order runs appear in history
        _plot(rows, chosen, plot_to, by or "run", "evaluation" if evaluations else "commit")
        return
    if by is not None:
        rows = _runs_together(rows, by)
    render = tables.evaluation_rows if evaluations else tables.log_rows
    click.echo(render(rows, chosen, fmt), nl=fmt != "csv")


def _runs_together(rows: list[Any], by: str) -> list[Any]:
    """Rows of one run next to each other, runs in the order of their newest row (a
    stable sort, so each run keeps the log's order)."""
    from dvcckpt.present.plot import run_of

    first: dict[str, int] = {}
    for index, row in enumerate(rows):
        first.setdefault(run_of(row, by), index)
    return sorted(rows, key=lambda row: first[run_of(row, by)])


def _plot(rows: list[Any], chosen: list[str], plot_to: str, by: str, sequence: str) -> None:
    from dvcckpt.present import plot

    if not chosen:
        raise UsageError("--plot needs a metric", hint="pass --metric SPLIT.METRIC")
    if plot_to == "-":
        click.echo(plot.terminal(rows, chosen[0], by=by, sequence=sequence))
    else:
        click.echo(f"wrote {_write_chart(rows, chosen[0], plot_to, by, sequence)}")


def _write_chart(rows: Any, metric: str, target: str, by: str, sequence: str) -> Path:
    """Write a chart file atomically. A missing folder is an error, never created: a typo
    in the path must not scatter new folders through the repository."""
    from dvcckpt.adapters import atomic
    from dvcckpt.present import plot

    path = Path(target)
    folder = path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise UsageError(
            f"--plot {target}: the folder {folder} {what}",
            hint=f"create it first (mkdir -p {folder}) or write the chart elsewhere",
        )
    if path.is_dir():
        raise UsageError(f"--plot {target} is a folder", hint="name a .html, .svg or .png file")
    atomic.write_bytes(path, plot.render(rows, metric, path, by, sequence))
    return path


@cli.command("find")
@click.option(
    "--where",
    metavar="EXPR",
    help='Filter, e.g. \'test.macro_f1 >= 0.85 and (phase == "finetune" or "baseline" in tags)\'.'
    " A dotted path outside the card sections is a metric (dev.f1 = metrics.dev.f1); a field"
    " no card has is an error.",
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
    help="Sort keys, `-` for descending: -dev.f1,resources.latency_ms_p95.",
)
@click.option("--top", metavar="N|P%", help="Keep the best N, or the best P percent, by --by.")
@click.option(
    "--by",
    metavar="METRIC",
    help="Ranking field for --top, e.g. dev.f1 (higher is better; +FIELD: lower).",
)
@click.option(
    "--all-versions", is_flag=True, help="Every version of each card, not only the latest."
)
@click.option(
    "--all", "all_refs", is_flag=True, help="Search all branches and tags, not only HEAD."
)
@click.option(
    "--group-by",
    metavar="FIELD",
    help="Aggregate per run (`run`) or per any field (`run.group`, `params.lr`): count, best,"
    " last, and mean ± std over the runs' seeds of --by METRIC (default: primary_metric),"
    " best group first; --top keeps the best groups, --json prints the groups.",
)
@click.option(
    "--per-run",
    type=click.Choice(["best", "last"]),
    default="best",
    show_default=True,
    help="With --group-by: the checkpoint each run contributes to its group's mean ± std.",
)
@click.option("--json", "fmt", flag_value="json", help="Matching cards as JSON.")
@click.option("--csv", "fmt", flag_value="csv", help="Rows as CSV.")
def find_command(fmt: str | None, group_by: str | None, per_run: str, **options: Any) -> None:
    """Find checkpoints by metrics, phase, tags, owner and dates.

    \b
    Examples:
      dvcckpt find --where 'dev.macro_f1 >= 0.85' --sort -dev.macro_f1
      dvcckpt find --by test.macro_f1 --top 10%
      dvcckpt find --group-by run.group --by dev.macro_f1   # robust across seeds?
    """
    from dvcckpt.catalog import Catalog
    from dvcckpt.catalog.log import metric_path
    from dvcckpt.core.fields import card_path
    from dvcckpt.present import queries as tables
    from dvcckpt.project import load_config

    catalog = Catalog()
    primary = load_config(catalog.root).primary_metric
    if group_by is not None:
        _find_groups(catalog, group_by, per_run, primary, fmt, options)
        return
    columns = [metric_path(primary)] if primary else []
    for spec in filter(None, [options.get("by"), *(options.get("sort") or "").split(",")]):
        field = spec.strip().lstrip("-+")
        if field and card_path(field) not in {card_path(c) for c in columns}:
            columns.append(field)  # one column per field, however it is spelt
    found = catalog.find(columns=columns, cards=fmt == "json", **options)
    if fmt == "json":
        emit_json([tables.version_json(v) for v in found])
    else:
        click.echo(tables.find_rows(found, columns, fmt), nl=fmt != "csv")


def _find_groups(
    catalog: Any,
    group_by: str,
    per_run: str,
    primary: str | None,
    fmt: str | None,
    options: dict[str, Any],
) -> None:
    """`find --group-by`: the matching checkpoints aggregated per run or per field value."""
    import dataclasses
    import math

    from dvcckpt.catalog.where import parse_top
    from dvcckpt.present import queries as tables

    by = options.get("by") or primary
    if not by:
        raise UsageError(
            "--group-by needs a metric to aggregate",
            hint="pass --by SPLIT.METRIC (e.g. --by dev.macro_f1) or set primary_metric in dvcckpt.yaml",
        )
    metric = by.lstrip("+-")
    count, percent = parse_top(options.pop("top", None))  # --top keeps the best groups
    grouping = catalog.groups(  # first: it brings the catalog up to date (healing it if need be)
        group_by, metric, higher_is_better=not by.startswith("+"), per_run=per_run,
        **{**options, "by": by},
    )  # fmt: skip
    kept = grouping.groups
    if count is not None:
        kept = kept[:count]
    elif percent is not None:
        kept = kept[: max(1, math.ceil(len(kept) * percent / 100))] if kept else []
    grouping = dataclasses.replace(grouping, groups=kept)
    if fmt == "json":
        emit_json(grouping.as_dict())
    else:
        click.echo(tables.group_rows(grouping, fmt), nl=fmt != "csv")


@cli.command("diff")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("--all-fields", is_flag=True, help="Show equal fields too.")
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="FIELD",
    help="Only this field and what it holds (repeatable), spelt as in find: dev.f1 ="
    " metrics.dev.f1, step, params, evaluations.",
)
@click.option("--md", "fmt", flag_value="md", help="Markdown tables (for pull requests).")
@click.option("--json", "fmt", flag_value="json", help="Differences as JSON.")
def diff_command(
    a: str, b: str, all_fields: bool, fields: tuple[str, ...], fmt: str | None
) -> None:
    """Compare two checkpoints: every section of their cards.

    Params, data, seeds, env, code, metrics and resources come first, then
    evaluations, decisions, tags, notes and the rest. A and B are checkpoint
    names, NAME@REV, or two revisions (then every card that differs between
    them is compared).

    \b
    Examples:
      dvcckpt diff sentiment-finetune-full-3f9a1c-step000300@main sentiment-finetune-full-3f9a1c-step000300
      dvcckpt diff A B --field dev.macro_f1 --field params
    """
    from dvcckpt.catalog import Catalog
    from dvcckpt.catalog import diff as comparison
    from dvcckpt.present import queries as tables

    results = comparison.compare(Catalog(), a, b, everything=all_fields, fields=fields)
    if fmt == "json":
        emit_json([r.as_dict() for r in results])
    else:
        click.echo(tables.comparisons(results, markdown=fmt == "md"))
