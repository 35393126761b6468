"""Crash-safe file writes: readers see the old file or the new one, never half of one."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from dvcckpt.errors import StateError


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` via a temporary sibling, fsync and rename."""
    directory = path.parent
    fd, tmp = _create_sibling(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            if path.exists():
                # Keep the mode of the file being replaced (a new file gets 0o666 & ~umask
                # from os.open, without ever touching the process umask).
                os.chmod(handle.fileno(), path.stat().st_mode & 0o777)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(directory)


def _create_sibling(path: Path) -> tuple[int, Path]:
    """A new, exclusive temporary file beside `path` (created with 0o666 & ~umask)."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise StateError(
                f"cannot write {path}: {exc.strerror or exc}",
                hint=f"check that {path.parent} exists and is writable",
            ) from exc
    raise StateError(f"cannot write {path}: no free temporary name", hint="retry")


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
