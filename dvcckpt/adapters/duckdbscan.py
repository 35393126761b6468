"""DuckDB over Apache Iceberg scans: the organisation's queries run here.

pyiceberg plans each scan (snapshot, manifests, the data files a `repo_id` or
`model` filter can skip); DuckDB then reads those Parquet files itself when
they are on the local disk: its reader projects only the columns a query
names, filters while it reads and uses both cores, which is several times
faster than materialising the scan through pyiceberg first. Tables on S3 (or
with delete files, which only pyiceberg applies) are scanned through
`adapters.iceberg` to Arrow and registered instead. Either way each table is a
view under its own name, holding every column of the table's current schema
(a column older data files lack reads null), so SQL never depends on how a
table was read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dvcckpt.adapters import duckdbcache, iceberg
from dvcckpt.adapters.duckdbcache import Derived
from dvcckpt.errors import StateError

if TYPE_CHECKING:
    import duckdb
    from pyiceberg.table import Table

_GLOB = frozenset("*?[]{}")
# Iceberg types (as `publish.tables` spells them) as DuckDB types, for absent columns.
_TYPES = {"string": "VARCHAR", "long": "BIGINT", "double": "DOUBLE", "boolean": "BOOLEAN",
          "timestamptz": "TIMESTAMPTZ", "list<string>": "VARCHAR[]"}  # fmt: skip


def connect() -> duckdb.DuckDBPyConnection:
    import duckdb

    with translated("start DuckDB"):
        # No extension is ever downloaded (none is needed, and none is reachable here).
        return duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                                  "autoload_known_extensions": False})  # fmt: skip


def register(
    db: duckdb.DuckDBPyConnection,
    name: str,
    table: Table,
    target: iceberg.Target,
    *,
    columns: Sequence[str],
    equals: Mapping[str, Sequence[Any]] | None = None,
    derived: Derived | None = None,
    planned_by: Sequence[str] | None = None,
) -> None:
    """`table`'s rows matching `equals` (column -> accepted values) as the view `name`,
    with the given columns (those the table lacks read null). `derived`: read each data
    file's slim copy from the local cache (`adapters.duckdbcache`), made on first use.
    `planned_by`: the columns of `equals` that planning uses to skip files (default all;
    a long list of names prunes nothing and costs planning time)."""
    present = {field.name: field for field in table.schema().fields}
    wanted = {k: tuple(v) for k, v in (equals or {}).items() if k in present}
    planned = {k: v for k, v in wanted.items() if planned_by is None or k in planned_by}
    files = _local_files(table, target, planned)
    with translated(f"read {name}"):
        if files is None:  # S3, or delete files: pyiceberg reads
            needed = {c for c in columns if c in present} | (
                set(derived.drop) if derived else set()
            )
            arrow = iceberg.scan_to_arrow(table, target, equals=wanted, columns=sorted(needed))
            relation = _with_derived(db.from_arrow(arrow), derived)
        elif files:
            slim = duckdbcache.derived_files(db, files, derived) if derived else None
            if slim is not None and not _globbed(files + slim):
                relation = _filtered(db.read_parquet(slim, union_by_name=True), wanted)
            else:
                relation = _with_derived(_filtered(_parquet(db, files, table), wanted), derived)
        else:
            relation = db.sql("SELECT 1 AS _empty WHERE false")
        relation.select(*_projection(relation.columns, columns, table)).create_view(name)


def _with_derived(relation: Any, derived: Derived | None) -> Any:
    """The derived columns computed while reading (when no cached copy can be used)."""
    import duckdb

    if derived is None:
        return relation
    added = [duckdb.SQLExpression(sql).alias(name) for name, sql in derived.add.items()]
    return relation.select(duckdb.StarExpression(), *added)


def _globbed(paths: Sequence[str]) -> bool:
    return any(char in path for path in paths for char in _GLOB)


def _local_files(
    table: Table, target: iceberg.Target, equals: Mapping[str, tuple[Any, ...]]
) -> list[str] | None:
    """The data files the scan needs, as local paths; None when DuckDB cannot read them.
    A plan is cached per table commit (its metadata file), so it is made once."""
    metadata = str(getattr(table, "metadata_location", "") or "")
    scan_text = repr(sorted(equals.items()))
    if metadata and (known := duckdbcache.cached_plan(metadata, scan_text)) is not None:
        return known
    with translated(f"plan the scan of {table.name()[-1]}", target):
        scan = table.scan(row_filter=row_filter(equals))
        tasks = list(scan.plan_files())
    paths = []
    for task in tasks:
        if task.delete_files:
            return None
        location = task.file.file_path
        scheme = location.partition("://")[0] if "://" in location else ""
        if scheme not in ("", "file"):
            return None
        paths.append(location.removeprefix("file://"))  # kept as written (`%2F` is literal)
    if metadata:
        duckdbcache.store_plan(metadata, scan_text, paths)
    return paths


def _parquet(db: duckdb.DuckDBPyConnection, files: list[str], table: Table) -> Any:
    """The files as one relation. DuckDB's reader takes each path as a glob pattern, so a
    path with a pattern character (a partition value may hold one) is read by pyarrow."""
    if not _globbed(files):
        return db.read_parquet(files, union_by_name=True)
    import pyarrow.dataset  # type: ignore[import-untyped]

    found = pyarrow.dataset.dataset(files, format="parquet", schema=table.schema().as_arrow())
    return db.from_arrow(found)


def row_filter(equals: Mapping[str, tuple[Any, ...]]) -> Any:
    """`column IN (values) AND ...` for pyiceberg's planning (values are literals)."""
    from pyiceberg import expressions

    made: Any = expressions  # its generated signatures confuse type checkers
    found = made.AlwaysTrue()
    for column, values in equals.items():
        found = made.And(found, made.In(column, values))
    return found


def _filtered(relation: Any, equals: Mapping[str, tuple[Any, ...]]) -> Any:
    """Rows whose column holds one of the values (planning only skipped whole files)."""
    import duckdb

    for column, values in equals.items():
        if column in relation.columns:
            accepted = [duckdb.ConstantExpression(value) for value in values]
            relation = relation.filter(duckdb.ColumnExpression(column).isin(*accepted))
    return relation


def _projection(found: Sequence[str], columns: Sequence[str], table: Table) -> list[Any]:
    """The requested columns; one no data file has yet is a typed null."""
    import duckdb

    kinds = {field.name: str(field.field_type) for field in table.schema().fields}
    chosen = []
    for column in columns:
        if column in found:
            chosen.append(duckdb.ColumnExpression(column))
        else:
            kind = _TYPES.get(_type_name(kinds.get(column, "string")), "VARCHAR")
            chosen.append(duckdb.ConstantExpression(None).cast(kind).alias(column))
    return chosen


def _type_name(iceberg_type: str) -> str:
    """pyiceberg's `str(type)` (`string`, `list<string>`...) as `publish.tables` spells it."""
    return "list<string>" if iceberg_type.startswith("list<") else iceberg_type


def rows(
    db: duckdb.DuckDBPyConnection, statement: str, params: Sequence[Any] = ()
) -> list[tuple[Any, ...]]:
    """The result of one parameterised statement."""
    with translated("run the query"):
        return db.execute(statement, list(params)).fetchall()


@contextlib.contextmanager
def translated(doing: str, target: iceberg.Target | None = None) -> Iterator[None]:
    """DuckDB's and the file system's failures as StateError (the query's own bugs too:
    they show as one error line, never as a traceback of SQL)."""
    import duckdb

    try:
        yield
    except (duckdb.Error, OSError) as exc:
        text = str(exc).splitlines()[0][:400] if str(exc) else type(exc).__name__
        if target is not None:
            text = iceberg.scrub(text, target)
        raise StateError(
            f"cannot {doing}: {text}",
            hint="check the warehouse (--warehouse) and that it was published to",
        ) from None
