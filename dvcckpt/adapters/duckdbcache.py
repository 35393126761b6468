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


def cached_plan(metadata: str, scan: str) -> list[str] | None:
    """The data files planned for `scan` (a filter's text) at this metadata file, if known."""
    path = folder() / "plans" / f"{_key(scan, metadata)}.json"
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict):  # a damaged or foreign file: planned again
        return None
    files = found.get("files")
    if found.get("metadata") != metadata or not isinstance(files, list):
        return None
    return [str(f) for f in files]


def store_plan(metadata: str, scan: str, files: Sequence[str]) -> None:
    text = json.dumps({"metadata": metadata, "files": list(files)})
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


def _derive(db: duckdb.DuckDBPyConnection, source: str, target: Path, recipe: Derived) -> None:
    relation = db.read_parquet(source)
    kept = [c for c in relation.columns if c not in recipe.drop]
    import duckdb as ddb

    columns: list[Any] = [ddb.ColumnExpression(c) for c in kept]
    columns += [ddb.SQLExpression(sql).alias(name) for name, sql in recipe.add.items()]
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    os.close(handle)
    try:
        relation.select(*columns).write_parquet(temporary, compression="zstd")
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


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
