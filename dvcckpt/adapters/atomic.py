"""Crash-safe file writes: readers see the old file or the new one, never half of one.

Temporary files go to the repository's scratch folder (`.git/dvcckpt/tmp`, which git
never shows or commits) when it is on the same file system as the target, else beside
the target (a dot-file); each carries its writer's process id, and those of processes
that no longer run (killed mid-write) are swept by the next write to that folder.

`commit` applies a multi-file change (a card with its `.dvc` file and `.gitignore`, a
decision, a tombstone) all-or-nothing as far as git can see: the new contents are staged
in one index update first, then each file is renamed into place. A failure before the
index update leaves nothing changed; a kill after it leaves a state that re-running the
same command completes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import signal
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

from dvcckpt.errors import StateError

_SUFFIX = ".tmp"
# Our temporary files only: a user's file never matches by accident.
_TEMPORARY = re.compile(r".+\.(\d+)-[0-9a-f]{8}\.tmp", re.S)
_swept: set[Path] = set()
_scratch: dict[Path, Path] = {}
# Test-only fault injection (the fault drills in tests/test_faults_add.py): a process whose
# DVCCKPT_FAULT_POINT names a point below SIGKILLs itself there (`NAME:SIGINT` interrupts
# it instead, like Ctrl-C). Points: `cache-copy` (mid-copy of a checkpoint into the DVC
# cache), `cached` (objects in the cache, nothing else written), `staged` (the index holds
# the change, the work tree does not yet), `written` (the first file of a change renamed
# into place, the others not yet).
FAULT_POINT = "DVCCKPT_FAULT_POINT"
# Temporaries outside `.git` (a cache on a shared file system) may belong to a process
# on another machine: swept only once this old.
_SHARED_MIN_AGE = 24 * 3600.0
# How long a writer waits for another one in the same work tree before giving up.
LOCK_TIMEOUT_SECONDS = 120.0


def fault_point(name: str) -> None:
    point, _, signal_name = os.environ.get(FAULT_POINT, "").partition(":")
    if point == name:
        os.kill(os.getpid(), signal.SIGINT if signal_name == "SIGINT" else signal.SIGKILL)


def write_text(path: Path, text: str, *, exclusive: bool = False) -> None:
    """Write `text` to `path` via a temporary file, fsync and rename.

    `exclusive`: fail with FileExistsError instead of replacing an existing file.
    """
    write_bytes(path, text.encode("utf-8"), exclusive=exclusive)


def write_bytes(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    path = Path(os.path.abspath(path))
    with temporary(path.parent, path.name) as tmp:
        try:
            with tmp.open("wb", buffering=0) as handle:
                write_all(handle, memoryview(data))
                if path.exists():
                    # Keep the mode of the file being replaced (a new file gets
                    # 0o666 & ~umask from os.open, without touching the process umask).
                    os.chmod(handle.fileno(), path.stat().st_mode & 0o777)
                os.fsync(handle.fileno())
            if exclusive:
                _link_new(tmp, path)
            else:
                os.replace(tmp, path)
        except FileExistsError:
            raise
        except OSError as exc:
            raise os_failure("write", path, exc) from exc
    _fsync_directory(path.parent)


@contextlib.contextmanager
def temporary(directory: Path, name: str) -> Iterator[Path]:
    """A new, exclusive, empty temporary file for a file `name` to be placed in `directory`;
    removed on exit unless renamed away."""
    scratch = scratch_for(directory)
    folder = scratch or directory
    if folder not in _swept:  # once per folder and process
        _swept.add(folder)
        _sweep(folder, min_age=0.0 if scratch is not None else _SHARED_MIN_AGE)
    for _ in range(100):
        prefix = "" if scratch is not None else "."
        tmp = folder / f"{prefix}{name[:80]}.{os.getpid()}-{os.urandom(4).hex()}{_SUFFIX}"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise os_failure("write", directory / name, exc) from exc
    else:
        raise StateError(f"cannot write {directory / name}: no free temporary name", hint="retry")
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def write_all(handle: IO[bytes], data: memoryview) -> None:
    """Write every byte: an unbuffered write may write less (the disk filling up) and
    only the next write raises."""
    while data:
        data = data[handle.write(data) or 0 :]


def os_failure(action: str, path: Path, exc: OSError) -> StateError:
    """A StateError for a failed file operation that names the file and what to do."""
    reason = exc.strerror or str(exc)
    folder = path if path.is_dir() else path.parent
    hints = {
        errno.ENOSPC: f"free space on the file system holding {folder}, then re-run",
        errno.EDQUOT: f"free space (disk quota) on the file system holding {folder}",
        errno.EROFS: f"{folder} is on a read-only file system; make it writable",
        errno.EACCES: f"make {folder} writable (chmod u+w), or work in a writable copy",
        errno.EPERM: f"make {folder} writable, or work in a writable copy",
        errno.ENAMETOOLONG: "use a shorter file or folder name",
        errno.ENOTDIR: f"a part of {folder} is a file, not a folder",
    }
    hint = hints.get(exc.errno or 0, "check that the folder exists and is writable, then re-run")
    return StateError(f"cannot {action} {path}: {reason.lower()}", hint=hint)


def commit(
    root: Path, files: Mapping[Path, bytes | None], *, stage: bool = True, new: Path | None = None
) -> None:
    """Write (bytes) or delete (None) several files as one change, staged together in git.

    `new`: a file that must not exist yet (a new card): another process creating it
    first makes this fail with FileExistsError before anything is written.
    """
    if new is not None and new.exists():
        raise FileExistsError(str(new))
    if stage:
        _stage(root, files)
        fault_point("staged")
    # In the order given (the caller puts the file a re-run checks for last), `new` last.
    for index, path in enumerate(sorted(files, key=lambda p: p == new)):
        data = files[path]
        if data is None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        else:
            write_bytes(path, data, exclusive=path == new)
        if index == 0:
            fault_point("written")


def _link_new(tmp: Path, path: Path) -> None:
    """Rename `tmp` to `path` only if `path` does not exist (atomically where links work)."""
    try:
        os.link(tmp, path)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        if path.exists():
            raise FileExistsError(str(path)) from exc
        os.replace(tmp, path)


def _stage(root: Path, files: Mapping[Path, bytes | None]) -> None:
    """Stage the new contents of `files` (None: remove from the index) in one index update."""
    from dvcckpt.adapters import git

    entries = []
    for path, data in files.items():
        relative = Path(os.path.realpath(path.parent), path.name).relative_to(root).as_posix()
        if data is None:
            entries.append(f"0 {'0' * 40}\t{relative}\0")
            continue
        done = git.run(root, ["hash-object", "-w", "--stdin", f"--path={relative}"], data)
        if done.returncode != 0:
            raise _git_failure(root, f"git hash-object {relative}", done.stderr)
        entries.append(f"100644 {done.stdout.decode().strip()}\t{relative}\0")
    done = git.run(root, ["update-index", "-z", "--index-info"], "".join(entries).encode())
    if done.returncode != 0:
        raise _git_failure(root, "git update-index", done.stderr)


def _git_failure(root: Path, what: str, stderr: bytes) -> StateError:
    text = stderr.decode(errors="replace")
    if "No space left" in text or "Disk quota" in text:
        return StateError(
            f"{what}: no space left on device (git could not write to {root / '.git'})",
            hint=f"free space on the file system holding {root}, then re-run; nothing was written",
        )
    if "Read-only file system" in text or "Permission denied" in text:
        return StateError(
            f"{what}: git could not write (the repository is not writable)",
            hint=f"make {root} and its .git folder writable, then re-run; nothing was written",
        )
    from dvcckpt.adapters import git

    return git.explain(what, stderr, "see git's message; nothing was written")


@contextlib.contextmanager
def repo_lock(root: Path) -> Iterator[None]:
    """Serialise dvcckpt's writers in one work tree (shared `.gitignore` files, the index)."""
    scratch = scratch_for(root)
    if scratch is None:
        yield
        return
    try:
        handle = (scratch.parent / "write.lock").open("a")
    except OSError:
        yield  # a read-only repository: the write itself will say so
        return
    with handle:
        deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StateError(
                        f"another dvcckpt command has been writing in {root} for over "
                        f"{LOCK_TIMEOUT_SECONDS:.0f} s (it holds {handle.name})",
                        hint="wait for it to finish, or stop it; the lock goes with it",
                    ) from None
                time.sleep(0.05)
        yield


def scratch_for(directory: Path) -> Path | None:
    """`<git dir>/dvcckpt/tmp` of the repository holding `directory`, when it is on the same
    file system (a rename must not cross file systems); None otherwise."""
    key = Path(os.path.abspath(directory))
    found = _scratch.get(key) or _find_scratch(key)
    if found is not None:  # found once per folder and process (a directory checkpoint: many)
        _scratch[key] = found
    return found


def _find_scratch(directory: Path) -> Path | None:
    git_dir = _git_dir(Path(os.path.abspath(directory)))
    if git_dir is None:
        return None
    scratch = git_dir / "dvcckpt" / "tmp"
    try:
        scratch.mkdir(parents=True, exist_ok=True)
        if scratch.stat().st_dev != directory.stat().st_dev:
            return None
    except OSError:
        return None
    return scratch


def _git_dir(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        dot_git = folder / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():  # a linked worktree or submodule: "gitdir: PATH"
            try:
                line = dot_git.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                return None
            if line.startswith("gitdir:"):
                target = Path(line.removeprefix("gitdir:").strip())
                return target if target.is_absolute() else (folder / target).resolve()
            return None
    return None


def _sweep(folder: Path, min_age: float) -> None:
    """Remove temporary files left by processes that were killed (and, outside the
    repository's own scratch folder, which another machine may share, old ones only)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        pid = _writer_pid(entry.name)
        if pid is None or pid == os.getpid() or process_alive(pid):
            continue
        with contextlib.suppress(OSError):
            if min_age and time.time() - entry.stat(follow_symlinks=False).st_mtime < min_age:
                continue
            os.unlink(entry.path)


def _writer_pid(name: str) -> int | None:
    """The writer of one of our temporary files (`NAME.PID-TOKEN.tmp`), else None."""
    found = _TEMPORARY.fullmatch(name)
    return int(found.group(1)) if found else None


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs (the owner of a temporary file or folder)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
