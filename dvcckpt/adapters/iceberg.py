"""Apache Iceberg tables through pyiceberg's SQL catalog: the only pyiceberg and pyarrow I/O.

A `Target` says where the catalog database (SQLite file or PostgreSQL) and the
warehouse (local folder or S3) are, with the storage settings pyiceberg needs;
its secrets are kept out of every message (`_translated` scrubs them). Tables are
created on first use and gain the columns a newer column list adds
(`ensure_tables`). Appends are optimistic commits: when another writer committed
first (`CommitFailedException`), the table is refreshed, the keys already there
are read again and the append retried, a bounded number of times with jitter,
so concurrent publishers lose nothing and never write a row twice.

Readers (`dvcckpt org`) take a table's scan as Arrow or as DuckDB views:
`scan_to_duckdb(catalog, ["card_versions", ...], equals={"repo_id": [...]},
columns={"card_versions": [...]})` returns an in-memory DuckDB connection with
one view per table, named like the table; `scan_to_arrow` returns one table.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dvcckpt.adapters.icebergschema import iceberg_schema, partitioning
from dvcckpt.errors import StateError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa  # type: ignore[import-untyped]
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

Column = tuple[str, str, bool]  # (name, type, required), as `publish.tables` lists them
CATALOG_NAME = "dvcckpt"  # the SQL catalog's `catalog_name` (Spark/Trino name it in config)
PARTITION_COLUMN = "repo_id"
ATTEMPTS = 12  # commits tried before giving up on a busy catalog
_BACKOFF = (0.05, 2.0)  # first and largest wait between attempts, seconds
T = TypeVar("T")
# A writer that lost a commit race must read the keys again before it appends: a blind
# retry (pyiceberg's and Spark's default) could write a row twice. Table properties, so
# every engine writing these tables learns it.
PROPERTIES = {"commit.retry.num-retries": "0"}


@dataclass(frozen=True)
class Target:
    """A catalog database and its warehouse; `properties` may hold credentials."""

    uri: str  # SQLAlchemy URL: sqlite:///... or postgresql+psycopg://...
    warehouse: str  # file:///... or s3://bucket/prefix
    shown: str  # how messages name it (no credentials)
    properties: dict[str, str] = field(default_factory=dict, repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)


def open_catalog(target: Target, *, existing: bool = False) -> Catalog:
    """The SQL catalog of `target` (its tables are created the first time it is used);
    `existing`: only existing tables are loaded and committed, so a SQLite catalog is
    opened without SQLAlchemy (`icebergsqlite`)."""
    with _translated(target, "open the catalog"):
        if existing and target.uri.startswith("sqlite:///"):
            from dvcckpt.adapters import icebergsqlite

            database = Path(target.uri.removeprefix("sqlite:///"))
            return icebergsqlite.open_tables(database, CATALOG_NAME, warehouse=target.warehouse,
                                             **target.properties)  # fmt: skip
        from pyiceberg.catalog.sql import SqlCatalog

        if target.uri.startswith("sqlite:///"):
            Path(target.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        if target.warehouse.startswith("file://"):
            Path(target.warehouse.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        return _first_use(
            lambda: SqlCatalog(
                CATALOG_NAME, uri=target.uri, warehouse=target.warehouse, **target.properties
            )
        )


def ensure_tables(
    catalog: Catalog, target: Target, namespace: str, tables: Mapping[str, Sequence[Column]]
) -> dict[str, Table]:
    """Each table, created (partitioned by repository) if missing, with every column listed.

    A column the list has and the table lacks is added (optional; older rows read
    null); columns only the table has (a newer dvcckpt wrote them) are kept.
    """
    with _translated(target, "prepare the tables"):
        _first_use(lambda: catalog.create_namespace_if_not_exists(namespace))
        found = {}
        for name, columns in tables.items():
            table = _load_or_create(catalog, f"{namespace}.{name}", columns)
            found[name] = _evolved(table, columns)
        return found


def _first_use(create: Callable[[], T]) -> T:
    """`create()`, again when another process created the same thing at the same moment
    (the catalog's own tables or the namespace, on a new database)."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for number in range(ATTEMPTS):
        try:
            return create()
        except (IntegrityError, ProgrammingError) as exc:
            racing = isinstance(exc, IntegrityError) or "already exists" in str(exc)
            if not racing or number == ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0, _BACKOFF[0] * 2))
    raise AssertionError("unreachable")


def _load_or_create(catalog: Catalog, identifier: str, columns: Sequence[Column]) -> Table:
    from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError

    try:
        return catalog.load_table(identifier)
    except NoSuchTableError:
        pass
    schema = iceberg_schema(columns)
    try:
        return catalog.create_table(
            identifier,
            schema,
            partition_spec=partitioning(schema, PARTITION_COLUMN),
            properties=PROPERTIES,
        )
    except TableAlreadyExistsError:  # another publisher created it just now
        return catalog.load_table(identifier)


def _evolved(table: Table, columns: Sequence[Column]) -> Table:
    def evolve() -> Table:
        if any(table.properties.get(k) != v for k, v in PROPERTIES.items()):
            with table.transaction() as change:
                change.set_properties(PROPERTIES)
        known = set(table.schema().column_names)
        if all(name in known for name, _, _ in columns):
            return table
        with table.update_schema() as update:
            update.union_by_name(iceberg_schema(columns))
        return table

    return _retrying(table, evolve)


# -- writing -------------------------------------------------------------------------------


def read_keys(
    table: Table,
    target: Target,
    repo_id: str,
    columns: Sequence[str],
) -> set[tuple[Any, ...]]:
    """The values of `columns` in every row of one repository (the keys already written)."""
    with _translated(target, f"read the keys of {table.name()[-1]}"):
        found = table.scan(
            row_filter=_filter({PARTITION_COLUMN: [repo_id]}), selected_fields=tuple(columns)
        )
        arrow = found.to_arrow()
    return set(zip(*(arrow.column(name).to_pylist() for name in columns), strict=True))


def append_new(
    table: Table,
    target: Target,
    rows: Mapping[str, list[Any]],
    key: Sequence[str],
    repo_id: str,
    known: set[tuple[Any, ...]] | None = None,
) -> int:
    """Append the rows (one repository's, by column) whose `key` is not in the table yet.

    `known`: the keys already read (else read here); after a lost commit race they
    are read again, so a row another writer added meanwhile is not added twice.
    Returns how many rows were added.
    """
    if not next(iter(rows.values()), []):
        return 0  # nothing to add: no need to read the keys
    own = [k for k in key if k != PARTITION_COLUMN]
    state: dict[str, set[tuple[Any, ...]] | None] = {"known": known}

    def attempt() -> int:
        if state["known"] is None:
            state["known"] = read_keys(table, target, repo_id, own)
        fresh = _new_rows(rows, key, state["known"] or set())
        state["known"] = None  # a retry reads them again
        if not fresh or not next(iter(fresh.values())):
            return 0
        table.append(arrow_rows(table, fresh))
        return len(next(iter(fresh.values())))

    with _translated(target, f"append to {table.name()[-1]}"):
        return _retrying(table, attempt)


def replace_rows(
    table: Table,
    target: Target,
    rows: Mapping[str, list[Any]],
    summary: Mapping[str, str] | None = None,
) -> None:
    """Replace the rows of the repositories in `rows` by them, in one commit (`repositories`:
    each repository is a partition, replaced whole without reading the others); `summary`:
    properties of the commit's snapshots."""

    def attempt() -> None:
        import warnings

        with warnings.catch_warnings():  # a repository's first publish replaces nothing
            warnings.filterwarnings("ignore", "Delete operation did not match any records")
            table.dynamic_partition_overwrite(arrow_rows(table, rows), dict(summary or {}))

    with _translated(target, f"replace rows of {table.name()[-1]}"):
        _retrying(table, attempt)


def _new_rows(
    rows: Mapping[str, list[Any]], key: Sequence[str], known: set[tuple[Any, ...]]
) -> dict[str, list[Any]]:
    """The rows whose key (without the repository) is new, each key once."""
    own = [k for k in key if k != PARTITION_COLUMN]
    seen = set(known)
    keep = []
    for index, value in enumerate(zip(*(rows[k] for k in own), strict=True)):
        if value not in seen:
            seen.add(value)
            keep.append(index)
    if len(keep) == len(next(iter(rows.values()), [])):
        return dict(rows)
    return {name: [values[i] for i in keep] for name, values in rows.items()}


def arrow_rows(table: Table, rows: Mapping[str, list[Any]]) -> pa.Table:
    """Columns as an Arrow table of `table`'s current schema (columns not given: null)."""
    import pyarrow as pa

    schema = table.schema().as_arrow()
    count = len(next(iter(rows.values()), []))
    data = {f.name: rows.get(f.name, [None] * count) for f in schema}
    return pa.Table.from_pydict(data, schema=schema)


def _retrying(table: Table, attempt: Callable[[], T]) -> T:
    """`attempt()`, again after a lost commit race (table refreshed first), with jitter."""
    from pyiceberg.exceptions import CommitFailedException

    for number in range(ATTEMPTS):
        try:
            return attempt()
        except CommitFailedException:
            if number == ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0, min(_BACKOFF[1], _BACKOFF[0] * 2**number)))
            table.refresh()
    raise AssertionError("unreachable")


# -- reading -------------------------------------------------------------------------------


def load_tables(
    catalog: Catalog, target: Target, namespace: str, names: Sequence[str]
) -> dict[str, Table]:
    """Existing tables by name (StateError naming the first one missing: nothing published)."""
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    found = {}
    with _translated(target, "read the tables"):
        for name in names:
            try:
                found[name] = catalog.load_table(f"{namespace}.{name}")
            except (NoSuchTableError, NoSuchNamespaceError) as exc:
                raise StateError(
                    f"the warehouse {target.shown} has no table {namespace}.{name}",
                    hint="publish a repository into it first: dvcckpt catalog publish",
                ) from exc
    return found


def scan_to_arrow(
    table: Table,
    target: Target,
    *,
    equals: Mapping[str, Sequence[Any]] | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """One table's rows as Arrow: only `columns` (default all), only rows whose column
    values are among `equals[column]` (pushed into the scan: files of other
    repositories are never read)."""
    with _translated(target, f"scan {table.name()[-1]}"):
        scan = table.scan(
            row_filter=_filter(equals or {}), selected_fields=tuple(columns or ("*",))
        )
        return scan.to_arrow()


def scan_to_duckdb(
    tables: Mapping[str, Table],
    target: Target,
    *,
    equals: Mapping[str, Sequence[Any]] | None = None,
    columns: Mapping[str, Sequence[str]] | None = None,
    connection: duckdb.DuckDBPyConnection | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with each table's scan registered under its name.

    `equals` filters every table that has the column; `columns[name]` projects one.
    """
    import duckdb

    db = connection or duckdb.connect(database=":memory:")
    for name, table in tables.items():
        present = set(table.schema().column_names)
        wanted = {k: v for k, v in (equals or {}).items() if k in present}
        arrow = scan_to_arrow(table, target, equals=wanted, columns=(columns or {}).get(name))
        db.register(name, arrow)
    return db


def _filter(equals: Mapping[str, Sequence[Any]]) -> Any:
    """`column IN (values) AND ...` as a pyiceberg expression (values are literals, never parsed)."""
    from pyiceberg import expressions

    made: Any = expressions  # its classes' generated signatures confuse type checkers
    found = made.AlwaysTrue()
    for column, values in equals.items():
        values = tuple(values)
        test = made.EqualTo(column, values[0]) if len(values) == 1 else made.In(column, values)
        found = made.And(found, test)
    return found


# -- errors --------------------------------------------------------------------------------


@contextlib.contextmanager
def _translated(target: Target, doing: str) -> Iterator[None]:
    """Failures of the catalog database, the storage and pyiceberg as StateError, secrets
    scrubbed; anything else (a bug) passes through."""
    try:
        yield
    except _failures() as exc:
        raise StateError(
            f"cannot {doing} in {target.shown}: {scrub(str(exc) or type(exc).__name__, target)}",
            hint=_hint_for(exc),
        ) from None


def _failures() -> tuple[type[BaseException], ...]:
    import inspect
    import sqlite3

    import pyarrow as pa
    import pyiceberg.exceptions
    from sqlalchemy.exc import SQLAlchemyError

    own = tuple(
        kind
        for kind in vars(pyiceberg.exceptions).values()
        if inspect.isclass(kind) and issubclass(kind, Exception)
    )
    return (*own, SQLAlchemyError, sqlite3.Error, OSError, pa.ArrowException)


def scrub(text: str, target: Target) -> str:
    """`text` without any of the target's secrets (passwords, keys), bounded in length."""
    for secret in target.secrets:
        if secret:
            text = text.replace(secret, "***")
    return text.splitlines()[0][:400] if text else text


def _hint_for(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "CommitFailedException":
        return "other publishers kept committing to the same table: run it again"
    if "AWS Error" in str(exc) or "S3" in name:
        return "check the S3 endpoint and keys (AWS_* or the DVC remote's .dvc/config.local)"
    if name in ("OperationalError", "InterfaceError"):
        return "check that the catalog database is reachable and the URI is right (--catalog-uri)"
    return "check the warehouse and catalog settings (--warehouse, --catalog-uri)"
