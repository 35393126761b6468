"""The catalog's file: where it lives, opening and validating it, and what its failures mean.

The catalog is a derived cache, so every damaged state of the file (truncated,
zero bytes, garbage, a damaged page, another format version, a dropped table) is
treated the same way: thrown away and rebuilt from Git history. Failures that a
rebuild cannot fix are told apart: a full disk is a clear error, a folder that
cannot be written makes the catalog live in memory for the command.

One catalog per worktree: it is kept in the worktree's own git directory, since
each worktree has its own HEAD, and `find` answers for this worktree only.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from dvcckpt.adapters import git
from dvcckpt.catalog import latest, numbers
from dvcckpt.errors import StateError

FILE_NAME = "catalog.sqlite"
TABLES = (
    frozenset({"meta", "commits", "paths", "cards", "bodies", "versions"})
    | latest.TABLES
    | numbers.TABLES
)
# errno values meaning "this place cannot be written": the catalog then lives in memory.
_UNWRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.EISDIR, errno.ENOTDIR})
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
T = TypeVar("T")
_DAMAGE_TEXTS = ("no such table", "no such column", "Could not decode to UTF-8", "malformed JSON",
                 "database disk image is malformed")  # fmt: skip


@dataclass(frozen=True)
class Location:
    path: Path  # the catalog file (in the worktree's git directory)
    common: Path  # the repository's common git directory (shallow, grafts)


def locate(root: Path) -> Location:
    out = git.run_git(root, "rev-parse", "--git-dir", "--git-common-dir").split("\n")
    own, common = (Path(p) if Path(p).is_absolute() else root / p for p in out[:2])
    return Location(own / "dvcckpt" / FILE_NAME, common)


def history_fingerprint(common: Path) -> str:
    """What makes the same refs mean another history: shallow boundaries and grafts.

    `git fetch --unshallow` changes no ref but gives boundary commits their parents.
    """
    digest = hashlib.sha256()
    for name in ("shallow", "info/grafts"):
        with contextlib.suppress(OSError):
            digest.update(name.encode() + b"\0" + (common / name).read_bytes() + b"\0")
    return digest.hexdigest()


def connect(path: Path | str) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA synchronous = NORMAL")
    # Queries read the file through a memory map: a new process per command starts with
    # an empty page cache, and mapped pages cost no read call and no copy.
    db.execute("PRAGMA mmap_size = 1073741824")
    return db


def open_valid(path: Path, format_version: str) -> sqlite3.Connection | None:
    """The catalog file, or None when missing, damaged or of another format version.

    Checks the format and that every table is there (cheap: the schema page only);
    a damaged data page shows up later as a query error (see `is_damage`).
    """
    if not path.is_file():
        return None
    db: sqlite3.Connection | None = None
    try:
        db = connect(path)
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        if tables >= TABLES and row is not None and row[0] == format_version:
            return db
    except sqlite3.DatabaseError:
        pass
    if db is not None:
        db.close()
    return None


def seed(path: Path, common: Path, format_version: str) -> bool:
    """Start a new worktree's catalog as a copy of the main worktree's (SQLite's backup,
    so a consistent one), leaving only what differs to index. Under the write lock."""
    source = common / "dvcckpt" / FILE_NAME
    if path.exists() or source == path or (original := open_valid(source, format_version)) is None:
        return False
    copy = temporary(path)
    try:
        with contextlib.closing(connect(copy)) as target:
            original.backup(target)
        os.replace(copy, path)
        return True
    except (OSError, sqlite3.Error):
        copy.unlink(missing_ok=True)
        return False
    finally:
        original.close()


def checked(db: sqlite3.Connection) -> sqlite3.Connection:
    """`db` after SQLite read every page of it (`catalog status`); damage raises."""
    found = db.execute("PRAGMA quick_check").fetchone()
    if found is None or found[0] != "ok":
        raise sqlite3.DatabaseError("database disk image is malformed")
    return db


def is_damage(exc: BaseException) -> bool:
    """A failure that a rebuild from history repairs: the file is damaged or incomplete."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_IOERR_SHORT_READ")):
        return True
    # A table or column missing, text that is not UTF-8, JSON that does not parse: the
    # catalog only ever writes complete tables, UTF-8 text and valid JSON.
    return str(exc).startswith(_DAMAGE_TEXTS)


def is_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in _FULL
    return getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL"


def is_unwritable(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in _UNWRITABLE
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM"))


def full_disk(path: Path) -> StateError:
    return StateError(
        f"cannot write the catalog {path}: no space left on the device",
        hint=f"free space on the file system holding {path.parent}, then re-run "
        "(the catalog is a cache: deleting it loses nothing)",
    )


def heals(method: Callable[..., T]) -> Callable[..., T]:
    """Run a query; if the catalog file turns out damaged, rebuild it and run it once more.

    Only the outermost call heals (a query made of several calls re-runs whole), and it
    ends the read transaction the query opened (filling a temporary table opens one),
    so no lock on the file outlives the query and blocks a writer.
    """

    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> T:
        if self._depth:
            return method(self, *args, **kwargs)
        self._depth += 1
        try:
            try:
                return method(self, *args, **kwargs)
            except sqlite3.DatabaseError as exc:
                self._repair(exc)
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            failure = failure_of(self.path, exc)
            if failure is exc:
                raise
            raise failure from exc
        finally:
            self._depth -= 1
            if not self._depth and self._connection is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._connection.commit()

    return run


def failure_of(path: Path, exc: sqlite3.DatabaseError) -> BaseException:
    """What to raise when a query failed again after a repair: a clear error, or the bug."""
    if is_full(exc):
        return full_disk(path)
    if is_damage(exc):
        return StateError(
            f"the catalog {path} is damaged again right after a rebuild: {exc}",
            hint="check the disk holding the repository; deleting the file is safe",
        )
    return exc


def fault_point(name: str) -> None:
    """A kill point of the fault drills (`adapters.atomic.fault_point`), imported late."""
    from dvcckpt.adapters import atomic

    atomic.fault_point(name)


def temporary(path: Path) -> Path:
    """Where a rebuild writes, beside the catalog (same file system: the rename is atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def sweep(path: Path) -> None:
    """Remove temporaries of killed rebuilds (called under the write lock: none is live)."""
    with contextlib.suppress(OSError):
        for leftover in path.parent.glob(f".{path.name}.*.tmp*"):
            leftover.unlink(missing_ok=True)


def sweep_stale(path: Path) -> None:
    """Remove leftovers of killed rebuilds, if no writer is running now (cheap when none)."""
    try:
        if not any(path.parent.glob(f".{path.name}.*.tmp*")):
            return
        with open(path.with_name("catalog.lock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a live rebuild: leave it
            sweep(path)
    except OSError:
        pass


@contextlib.contextmanager
def write_lock(path: Path) -> Iterator[None]:
    """Serialise writers. Raises OSError when the folder cannot be written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name("catalog.lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
