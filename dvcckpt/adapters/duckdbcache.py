"""A local cache of what never changes in an Iceberg table: scan plans and slim data files.

Both are keyed by what makes them immutable, so they are never stale:

- a scan plan (which data files a filter needs) by the table's metadata file,
  which every commit replaces: pyiceberg's planning reads one manifest per
  publish, and a warehouse that 100 repositories published to has hundreds;
- a *derived* copy of a data file (some columns left out, some computed once,
  e.g. the few card sections queries read, instead of the whole card's JSON)
  by the data file's path: Iceberg never rewrites a data file in place.

The cache lives in `$XDG_CACHE_HOME/dvcckpt/warehouse` (`~/.cache` by default);
deleting it only costs the next query the time to rebuild what it needs. It stays
bounded: slim copies beyond `DVCCKPT_WAREHOUSE_CACHE_MB` (default 2048) go least
recently used first (never one used in the last hour: another query may be reading
it), and plans beyond `MAX_PLANS` oldest first.
Files are written to a temporary name and moved into place, so a reader never
sees half of one, and two processes building the same file both succeed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

CACHE_ENV = "XDG_CACHE_HOME"
LIMIT_ENV = "DVCCKPT_WAREHOUSE_CACHE_MB"
DEFAULT_LIMIT_MB = 2048
MAX_PLANS = 2000  # plan files kept (each names the data files of one table commit)
IN_USE_SECONDS = 3600  # a slim copy used this recently is never removed


@dataclass(frozen=True)
class Derived:
    """How each data file's slim copy is made: `drop` left out, `add` computed once.

    `add` maps a column to a DuckDB expression over the file's columns (constant text
    from the caller, never user input); `version` names the recipe, so a new recipe
    makes new files instead of reading old ones.
    """

    version: str
    drop: tuple[str, ...]
    add: Mapping[str, str]


def folder(environ: Mapping[str, str] = os.environ) -> Path:
    base = environ.get(CACHE_ENV) or str(Path("~/.cache").expanduser())
    return Path(base) / "dvcckpt" / "warehouse"


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Plan:
    """A scan planned at one table commit: the data files (local paths), the partition
    value of each (None: not partitioned by one column's value), the table's columns
    and the column every file is partitioned by (if one)."""

    files: list[str]
    groups: list[str | None]
    columns: dict[str, str]  # name -> Iceberg type, as pyiceberg spells it
    partitioned_by: str | None


def cached_plan(metadata: str, scan: str) -> Plan | None:
    """The plan for `scan` (a filter's text) at this metadata file, if known (a damaged or
    foreign file is no plan: planned again)."""
    path = folder() / "plans" / f"{_key(scan, metadata)}.json"
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or found.get("metadata") != metadata:
        return None
    files, groups, columns = found.get("files"), found.get("groups"), found.get("columns")
    partitioned_by = found.get("partitioned_by")
    if not (isinstance(files, list) and isinstance(groups, list) and len(files) == len(groups)
            and isinstance(columns, dict) and all(isinstance(f, str) for f in files)
            and all(g is None or isinstance(g, str) for g in groups)
            and all(isinstance(v, str) for v in columns.values())
            and (partitioned_by is None or isinstance(partitioned_by, str))):  # fmt: skip
        return None
    return Plan(files, groups, columns, partitioned_by)


def store_plan(metadata: str, scan: str, plan: Plan) -> None:
    text = json.dumps({"metadata": metadata, "files": plan.files, "groups": plan.groups,
                       "columns": plan.columns, "partitioned_by": plan.partitioned_by})  # fmt: skip
    _write(folder() / "plans" / f"{_key(scan, metadata)}.json", text.encode())
    _prune(folder() / "plans", ".json", count=MAX_PLANS)


def derived_files(
    db: duckdb.DuckDBPyConnection, files: Sequence[str], recipe: Derived
) -> list[str] | None:
    """The slim copy of each data file, made now if missing (None if the cache cannot be
    written: the caller derives the columns as it reads instead)."""
    made = []
    for source in files:
        target = folder() / "files" / f"{_key(recipe.version, source)}.parquet"
        if target.exists():
            _touch(target)  # recently used: pruned last
        else:
            try:
                _derive(db, source, target, recipe)
            except OSError:
                return None
        made.append(str(target))
    _prune(folder() / "files", ".parquet", size=_limit_bytes())  # a scan of one folder
    return made


def _limit_bytes() -> int:
    try:
        megabytes = float(os.environ.get(LIMIT_ENV) or DEFAULT_LIMIT_MB)
    except ValueError:
        megabytes = DEFAULT_LIMIT_MB
    return max(0, int(megabytes * 1024 * 1024))


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        return


def _prune(base: Path, suffix: str, *, size: int | None = None, count: int | None = None) -> None:
    """Remove the least recently used files of `base` until they fit `size` bytes and
    `count` files (best effort; a file used within IN_USE_SECONDS is kept)."""
    try:
        entries = []
        for entry in os.scandir(base):
            if entry.name.endswith(suffix) and entry.is_file(follow_symlinks=False):
                info = entry.stat(follow_symlinks=False)
                entries.append((info.st_mtime, info.st_size, entry.path))
    except OSError:
        return
    total, number = sum(e[1] for e in entries), len(entries)
    recent = time.time() - IN_USE_SECONDS
    for mtime, bytes_, path in sorted(entries):  # oldest first
        over = (size is not None and total > size) or (count is not None and number > count)
        if not over or (size is not None and mtime > recent):
            break
        try:
            os.unlink(path)
        except OSError:
            continue
        total, number = total - bytes_, number - 1


def with_added(relation: Any, recipe: Derived) -> Any:
    """`relation` and the recipe's columns, each computed after those before it (so one
    may read another), its `drop` columns left out."""
    import duckdb

    kept = [duckdb.ColumnExpression(c) for c in relation.columns if c not in recipe.drop]
    for name, sql in recipe.add.items():
        relation = relation.select(duckdb.StarExpression(), duckdb.SQLExpression(sql).alias(name))
    return relation.select(*kept, *(duckdb.ColumnExpression(name) for name in recipe.add))


def _derive(db: duckdb.DuckDBPyConnection, source: str, target: Path, recipe: Derived) -> None:
    _store(with_added(db.read_parquet(source), recipe), target)


def _store(relation: Any, target: Path) -> None:
    """`relation` written to `target` as Parquet (whole, or not at all)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    os.close(handle)
    try:
        relation.write_parquet(temporary, compression="zstd")
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


@dataclass(frozen=True)
class Combined:
    """Rows chosen among a group of files (e.g. each card's current version in one
    repository's data files): `sql` is a SELECT over the view `data` (the group's rows),
    constant text from the caller; `version` names it, as `Derived.version` does."""

    version: str
    sql: str


def combined_files(
    db: duckdb.DuckDBPyConnection,
    groups: Mapping[str, Sequence[str]],
    recipe: Combined,
    column: str,
) -> list[str] | None:
    """One file per group of (immutable) files: `recipe.sql` over the group's rows, made now
    if missing. A group is named by the value `column` holds in every row of its files;
    None (the caller computes it as it reads) if a row says otherwise or the cache
    cannot be written."""
    made = []
    for value, files in sorted(groups.items()):
        target = folder() / "files" / f"{_key(recipe.version, value, *sorted(files))}.parquet"
        if target.exists():
            _touch(target)
        else:
            relation = db.read_parquet(list(files), union_by_name=True)
            if _stray(relation, column, value):
                return None
            try:
                _store(relation.query("data", recipe.sql), target)
            except OSError:
                return None
        made.append(str(target))
    _prune(folder() / "files", ".parquet", size=_limit_bytes())
    return made


def _stray(relation: Any, column: str, value: str) -> bool:
    """Whether a row's `column` is not `value` (the group is not what its files claim)."""
    import duckdb

    held = duckdb.ColumnExpression(column)
    other = (held != duckdb.ConstantExpression(value)) | held.isnull()
    return bool(relation.filter(other).limit(1).fetchall())


def _write(path: Path, data: bytes) -> None:
    """Best effort: a cache that cannot be written is only slower next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except OSError:
        return
