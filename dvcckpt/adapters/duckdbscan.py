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
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dvcckpt.adapters import duckdbcache, iceberg
from dvcckpt.adapters.duckdbcache import Combined, Derived
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
    table: Table | Callable[[], Table],
    target: iceberg.Target,
    *,
    columns: Sequence[str],
    equals: Mapping[str, Sequence[Any]] | None = None,
    derived: Derived | None = None,
    planned_by: Sequence[str] | None = None,
    metadata: str | None = None,
    combined: tuple[Combined, str] | None = None,
) -> None:
    """`table`'s rows matching `equals` (column -> accepted values) as the view `name`,
    with the given columns (those the table lacks read null). `derived`: read each data
    file's slim copy from the local cache (`adapters.duckdbcache`), made on first use.
    `planned_by`: the columns of `equals` that planning uses to skip files (default all;
    a long list of names prunes nothing and costs planning time). `table` may be a
    function loading it: with `metadata` (the table's metadata file, from the catalog)
    and a cached plan it is never called. `combined`: (recipe, partition column): the
    recipe's rows of each partition's files (cached per partition) instead of every row."""
    loader = table if callable(table) else lambda: table
    asked = {k: tuple(v) for k, v in (equals or {}).items()}
    planned = {k: v for k, v in asked.items() if planned_by is None or k in planned_by}
    plan, loaded = _planned(loader, target, planned, metadata)
    kinds = plan.columns if plan is not None else _kinds(loaded or loader())
    wanted = {k: v for k, v in asked.items() if k in kinds}
    with translated(f"read {name}"):
        if plan is None or _globbed(plan.files):  # S3, delete files, odd names: pyiceberg reads
            read = {k: v for k, v in wanted.items() if k in planned} if combined else wanted
            relation = _through_arrow(db, loaded or loader(), target, read, columns, derived)
            if combined is not None:  # chosen among every row, then narrowed
                relation = _filtered(relation.query("data", combined[0].sql), wanted)
        elif plan.files:
            relation = _local(db, plan, wanted, derived, combined)
        else:
            relation = db.sql("SELECT 1 AS _empty WHERE false")
        relation.select(*_projection(relation.columns, columns, kinds)).create_view(name)


def _through_arrow(
    db: duckdb.DuckDBPyConnection, table: Table, target: iceberg.Target,
    wanted: Mapping[str, tuple[Any, ...]], columns: Sequence[str], derived: Derived | None,
) -> Any:  # fmt: skip
    present = set(_kinds(table))
    needed = {c for c in columns if c in present} | (set(derived.drop) if derived else set())
    needed |= set(wanted) & present
    arrow = iceberg.scan_to_arrow(table, target, equals=wanted, columns=sorted(needed))
    return _with_derived(db.from_arrow(arrow), derived)


def _local(
    db: duckdb.DuckDBPyConnection, plan: duckdbcache.Plan, wanted: Mapping[str, tuple[Any, ...]],
    derived: Derived | None, combined: tuple[Combined, str] | None,
) -> Any:  # fmt: skip
    """The planned local files (their slim copies, and the combined rows of each partition,
    from the cache when it can be used)."""
    files = plan.files
    slim = duckdbcache.derived_files(db, files, derived) if derived else None
    if slim is None or _globbed(slim):
        relation = _with_derived(db.read_parquet(files, union_by_name=True), derived)
        return _filtered(relation.query("data", combined[0].sql) if combined else relation, wanted)
    if combined is not None:
        groups: dict[str, list[str]] = {}
        for copy, group in zip(slim, plan.groups, strict=True):
            groups.setdefault(group or "", []).append(copy)
        usable = plan.partitioned_by == combined[1] and None not in plan.groups
        made = duckdbcache.combined_files(db, groups, *combined) if usable else None
        if made is None:
            relation = db.read_parquet(slim, union_by_name=True).query("data", combined[0].sql)
            return _filtered(relation, wanted)
        slim = made
    return _filtered(db.read_parquet(slim, union_by_name=True), wanted)


def _with_derived(relation: Any, derived: Derived | None) -> Any:
    """The derived columns computed while reading (when no cached copy can be used)."""
    return relation if derived is None else duckdbcache.with_added(relation, derived)


def _globbed(paths: Sequence[str]) -> bool:
    return any(char in path for path in paths for char in _GLOB)


def _kinds(table: Table) -> dict[str, str]:
    return {field.name: str(field.field_type) for field in table.schema().fields}


def _planned(
    loader: Callable[[], Table], target: iceberg.Target, equals: Mapping[str, tuple[Any, ...]],
    metadata: str | None,
) -> tuple[duckdbcache.Plan | None, Table | None]:  # fmt: skip
    """The data files the scan needs, as local paths (None when DuckDB cannot read them),
    and the table if it had to be loaded. A plan is cached per table commit (its
    metadata file), so it is made once; with the metadata file known, a cached plan
    needs no table at all."""
    scan_text = repr(sorted(equals.items()))
    if metadata and (known := duckdbcache.cached_plan(metadata, scan_text)) is not None:
        return known, None
    table = loader()
    metadata = str(getattr(table, "metadata_location", "") or "")
    if metadata and (known := duckdbcache.cached_plan(metadata, scan_text)) is not None:
        return known, table
    kinds = _kinds(table)
    with translated(f"plan the scan of {table.name()[-1]}", target):
        scan = table.scan(row_filter=row_filter({k: v for k, v in equals.items() if k in kinds}))
        tasks = list(scan.plan_files())
    paths, groups = [], []
    for task in tasks:
        if task.delete_files:
            return None, table
        location = task.file.file_path
        scheme = location.partition("://")[0] if "://" in location else ""
        if scheme not in ("", "file"):
            return None, table
        paths.append(location.removeprefix("file://"))  # kept as written (`%2F` is literal)
        groups.append(_partition(table, task))
    plan = duckdbcache.Plan(paths, [g[1] if g else None for g in groups], kinds,
                            _common([g[0] if g else None for g in groups]))  # fmt: skip
    if metadata:
        duckdbcache.store_plan(metadata, scan_text, plan)
    return plan, table


def _partition(table: Table, task: Any) -> tuple[str, str] | None:
    """(column, value) when the task's partition spec is the identity of one text column:
    every row of its file holds that value there."""
    spec = table.specs().get(task.file.spec_id)
    if spec is None or len(spec.fields) != 1 or str(spec.fields[0].transform) != "identity":
        return None
    column = table.schema().find_column_name(spec.fields[0].source_id)
    value = task.file.partition[0] if len(task.file.partition) == 1 else None
    return (column, value) if isinstance(column, str) and isinstance(value, str) else None


def _common(columns: list[str | None]) -> str | None:
    """The one column every file is partitioned by (None: none, or several)."""
    return columns[0] if columns and all(c == columns[0] for c in columns) else None


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


def _projection(
    found: Sequence[str], columns: Sequence[str], kinds: Mapping[str, str]
) -> list[Any]:
    """The requested columns; one no data file has yet is a typed null."""
    import duckdb

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
