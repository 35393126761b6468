"""Organisation commands: `catalog publish` (this repository into the organisation's
catalog), and org find, org log, org stages over every published repository."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from dvcckpt.cli.catalog import catalog_group
from dvcckpt.cli.group import cli, emit_json


@cli.group("org")
def org_group() -> None:
    """Query the organisation's catalog: every repository published with
    `dvcckpt catalog publish`, read from its Apache Iceberg tables by DuckDB.

    The query language is `find`'s; results name their repository.
    """


def _warehouse_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option(
        "--catalog-uri",
        metavar="URI",
        help="The Iceberg SQL catalog's database: sqlite:///PATH (default: catalog.db in a "
        "local warehouse) or postgresql://HOST/DB (a password only via DVCCKPT_CATALOG_URI).",
    )(command)
    return click.option(
        "--warehouse",
        metavar="DIR|URI",
        help="The organisation's warehouse: a folder, file:///PATH or s3://BUCKET/PREFIX"
        " (default: catalog.warehouse from dvcckpt.yaml or ~/.config/dvcckpt/config.yaml).",
    )(command)


@catalog_group.command("publish")
@_warehouse_options
@click.option(
    "--moved",
    is_flag=True,
    help="This repository now has another origin address than it published from (a fork "
    "or copy needs its own catalog.repository instead).",
)
@click.option("--json", "as_json", is_flag=True, help="Print rows added per table as JSON.")
def catalog_publish(
    warehouse: str | None, catalog_uri: str | None, moved: bool, as_json: bool
) -> None:
    """Append this repository's card versions, decisions and stage history to the
    organisation's Apache Iceberg tables (only what is not there yet).

    Example: dvcckpt catalog publish --warehouse s3://acme-lake/dvcckpt
    --catalog-uri postgresql://catalog.acme.internal/lake
    """
    from dvcckpt.project import Project
    from dvcckpt.publish import publishing

    progress = None if as_json else (lambda line: click.echo(line, err=True))
    project = Project.discover(require_dvc=False)
    summary = publishing.publish(project, warehouse, catalog_uri, progress=progress, moved=moved)
    if as_json:
        emit_json(summary.as_dict())
        return
    added = ", ".join(f"{count} {table}" for table, count in summary.rows.items())
    click.echo(f"published {summary.name} ({summary.commits} new commits): {added} "
               f"in {summary.seconds:.2f} s")  # fmt: skip


def _scope(warehouse: str | None, catalog_uri: str | None, repo: str | None) -> Any:
    from dvcckpt.errors import StateError
    from dvcckpt.project import Project
    from dvcckpt.publish import org
    from dvcckpt.publish.warehouse import open_warehouse

    try:  # inside a repository its dvcckpt.yaml may name the warehouse
        project = Project.discover(require_dvc=False)
    except StateError:
        project = None
    return org.open_scope(open_warehouse(project, warehouse, catalog_uri), repo)


MAX_ROWS = 2**62  # a row count DuckDB's 64-bit LIMIT takes
_REPO = click.option("--repo", metavar="ID|NAME", help="Only this repository (its id or name).")


@org_group.command("find")
@click.option(
    "--where",
    metavar="EXPR",
    help="Filter, as in find: 'test.macro_f1 >= 0.9 and data.dataset == \"tweets\"'.",
)
@click.option("--model", help="Only this model.")
@click.option("--phase", help="Only this phase.")
@click.option("--tag", help="Only cards with this tag.")
@click.option("--stage", metavar="STAGE", help="Only checkpoints holding STAGE now.")
@_REPO
@click.option("--sort", metavar="FIELDS", help="Sort keys, `-` for descending: -dev.f1,step.")
@click.option("--top", metavar="N|P%", help="Keep the best N, or the best P percent, by --by.")
@click.option("--by", metavar="METRIC", help="Ranking field for --top (+FIELD: lower is better).")
@click.option("--limit", type=click.IntRange(1, MAX_ROWS), help="Show at most N rows.")
@click.option("--json", "fmt", flag_value="json", help="Matches (with their cards) as JSON.")
@click.option("--csv", "fmt", flag_value="csv", help="Rows as CSV.")
@_warehouse_options
def find_command(
    warehouse: str | None, catalog_uri: str | None, repo: str | None, fmt: str | None,
    **options: Any,
) -> None:  # fmt: skip
    """Find checkpoints across every published repository.

    \b
    Examples:
      dvcckpt org find --stage production --where 'data.dataset == "tweets" and test.macro_f1 >= 0.9'
      dvcckpt org find --model sentiment --by dev.macro_f1 --top 5
    """
    from dvcckpt.present import orgtables
    from dvcckpt.publish import org

    scope = _scope(warehouse, catalog_uri, repo)
    columns = org.shown_columns(options.get("where"), options.get("by"), options.get("sort"))
    found = org.find(scope, columns=columns, cards=fmt == "json", **options)
    if fmt == "json":
        emit_json([m.as_dict() for m in found])
    else:
        click.echo(orgtables.find_rows(found, columns, fmt), nl=fmt != "csv")


@org_group.command("log")
@click.argument("target", metavar="MODEL|NAME")
@click.option("--metric", "metrics", multiple=True, metavar="SPLIT.METRIC",
              help="Metric column (repeatable).")  # fmt: skip
@_REPO
@click.option("-n", "--limit", type=click.IntRange(1, MAX_ROWS),
              help="Show the newest N rows only.")  # fmt: skip
@click.option("--json", "fmt", flag_value="json", help="Rows as JSON.")
@click.option("--csv", "fmt", flag_value="csv", help="Rows as CSV.")
@_warehouse_options
def log_command(
    target: str, metrics: tuple[str, ...], repo: str | None, limit: int | None,
    fmt: str | None, warehouse: str | None, catalog_uri: str | None,
) -> None:  # fmt: skip
    """Performance history of a model in every published repository, newest first.

    Example: dvcckpt org log sentiment --metric dev.macro_f1 -n 20
    """
    from dvcckpt.catalog.where import field_option
    from dvcckpt.present import orgtables
    from dvcckpt.publish import orghistory

    for spec in metrics:
        field_option("--metric", spec, "dev.macro_f1")
    rows = orghistory.log(_scope(warehouse, catalog_uri, repo), target, list(metrics), limit)
    if fmt == "json":
        emit_json([r.as_dict() for r in rows])
    else:
        click.echo(orgtables.log_rows(rows, list(metrics), fmt), nl=fmt != "csv")


@org_group.command("stages")
@click.option("--model", help="Only this model (or checkpoint name).")
@_REPO
@click.option(
    "--history", "show_history", is_flag=True, help="Also list every event, oldest first."
)
@click.option("--json", "as_json", is_flag=True, help="Holders and history as JSON.")
@_warehouse_options
def stages_command(
    model: str | None, repo: str | None, show_history: bool, as_json: bool,
    warehouse: str | None, catalog_uri: str | None,
) -> None:  # fmt: skip
    """Who holds each stage in every published repository (and, with --history, how)."""
    from dvcckpt.present import orgtables
    from dvcckpt.publish import orghistory

    history = orghistory.stage_history(_scope(warehouse, catalog_uri, repo), model)
    held = orghistory.holders(history)
    if as_json:
        emit_json({"holders": [h.as_dict() for h in held],
                   "history": [e.as_dict() for e in history]})  # fmt: skip
    else:
        click.echo(orgtables.stage_rows(held, history if show_history else None, None))
