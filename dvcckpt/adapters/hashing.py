"""Content hashes recorded on cards (sha256; DVC itself only keeps md5).

A directory checkpoint is hashed through the manifest of `core.manifest`, so
the digest is independent of walk order and file-system metadata, and anyone
can recompute it with standard tools.

Every file dvcckpt hashes (registering, verifying, checking cache objects) is
read by `feed`: one loop that runs on Python 3.10 (no `hashlib.file_digest`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from dvcckpt.core import manifest
from dvcckpt.errors import UsageError


def _cpus() -> int:
    # The CPUs this process may run on (a container or taskset may allow fewer than exist).
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# Threads hashing local files: one per core, at most 4, since beyond that they only
# contend for the same disk.
LOCAL_WORKERS = max(1, min(4, _cpus()))
_thread = threading.local()


@contextlib.contextmanager
def on_one_core() -> Iterator[None]:
    """Hash on the calling thread only while in this block.

    A background registration runs beside a training loop: finishing sooner on a second
    core would only take that core from the loop, which is what it must not slow.
    """
    before = getattr(_thread, "one_core", False)
    _thread.one_core = True
    try:
        yield
    finally:
        _thread.one_core = before


def workers() -> int:
    """How many threads may hash local files for the calling thread."""
    return 1 if getattr(_thread, "one_core", False) else LOCAL_WORKERS


# Few GIL hand-offs per GB, little memory per thread.
_CHUNK = 8 << 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Digest(Protocol):
    """What `feed` needs of a hashlib object."""

    def update(self, data: memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


@dataclass(frozen=True)
class ContentDigest:
    sha256: str
    size: int
    files: int
    names: list[str] | None = None  # relative paths, for directories


def feed(
    handle: IO[bytes],
    digest: Digest,
    count: Callable[[int], None] | None = None,
    size: int | None = None,
) -> None:
    """Hash a binary stream in large chunks through one buffer, reused for every chunk.

    hashlib releases the GIL while it hashes a large buffer, so several threads
    hash at once and overlap with the main thread's work (DVC's, during `add`).
    `count` is told each chunk's length (for progress bars); `size`, when known,
    keeps the buffer of a small file small.
    """
    length = _CHUNK if size is None else max(1, min(_CHUNK, size))
    buffer = memoryview(bytearray(length))
    readinto = getattr(handle, "readinto", None)
    while True:
        chunk = buffer[: readinto(buffer)] if readinto else memoryview(handle.read(length))
        if not chunk.nbytes:
            return
        digest.update(chunk)
        if count is not None:
            count(chunk.nbytes)


def hash_file(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file (md5 for DVC cache objects, sha256 for cards).

    Opened non-blocking and checked to be a regular file: a FIFO put in its place
    is refused instead of blocking for ever.
    """
    digest = hashlib.new(algorithm)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    # Unbuffered: the chunks are large, so a Python-side buffer would only add a copy.
    with open(fd, "rb", buffering=0) as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            _refuse_special(path, info.st_mode, "")
        feed(handle, digest, size=info.st_size)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    return hash_file(path, "sha256")


def content_digest(path: Path, workers: int = LOCAL_WORKERS) -> ContentDigest:
    """sha256, total size and file count of a checkpoint file or directory."""
    refuse_unsupported(path)
    if path.is_file():
        return ContentDigest(sha256_file(path), path.stat().st_size, 1)
    files = _tree_files(path)
    if not files:
        raise UsageError(f"{path} is an empty directory", hint="save the checkpoint files first")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        digests = list(pool.map(sha256_file, (path / rel for rel in files)))
    size = sum((path / rel).stat().st_size for rel in files)
    sha256 = manifest.manifest_sha256(zip(files, digests, strict=True))
    return ContentDigest(sha256, size, len(files), files)


def _tree_files(root: Path) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        found += [Path(dirpath, name).relative_to(root).as_posix() for name in filenames]
    return sorted(found)


def refuse_unsupported(path: Path) -> None:
    """Refuse, before opening anything, what cannot be hashed as a checkpoint: FIFOs,
    sockets and devices (opening one can block for ever), symbolic links, and a
    directory holding any of them or a file name with control characters."""
    info = _lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise UsageError(
            f"{path} is a symbolic link", hint="register the file or directory it points to"
        )
    _refuse_special(path, info.st_mode, "")
    if not stat.S_ISDIR(info.st_mode):
        return
    for folder, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            full = Path(folder, name)
            mode = _lstat(full).st_mode
            if stat.S_ISLNK(mode):
                raise UsageError(
                    f"{full} is a symbolic link inside a directory checkpoint",
                    hint="replace it with the file it points to",
                )
            _refuse_special(full, mode, " inside a directory checkpoint")
            if _CONTROL.search(name):
                raise UsageError(
                    f"{full!s:.300}: file name with control characters in a directory checkpoint",
                    hint="rename the file (such names make manifests ambiguous)",
                )


def _refuse_special(path: Path, mode: int, where: str) -> None:
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    kind = (
        "a FIFO (named pipe)"
        if stat.S_ISFIFO(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "not a regular file"
    )
    raise UsageError(
        f"{path} is {kind}{where}", hint="only regular files and directories can be registered"
    )


def _lstat(path: Path) -> os.stat_result:
    try:
        return os.lstat(path)
    except OSError as exc:
        raise UsageError(
            f"{path}: {(exc.strerror or str(exc)).lower()}", hint="check the checkpoint path"
        ) from exc
