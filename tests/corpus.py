"""Shared assertions for the bad-input corpora and the fault drills.

Every corpus case asserts the same contract: a user mistake or a fault exits with a
user exit code (never 70), prints exactly one `error:` line that names the file or
field and a `hint:`, prints no traceback, and leaves the repository as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

USER_EXIT_CODES = frozenset({1, 2, 3, 4, 130})


# Scratch state a refused command may legitimately touch: git's stat cache, DVC's
# temporary folder and lock files, and dvcckpt's own rebuildable catalog.
SCRATCH = (".git/index", ".dvc/tmp/", ".git/dvcckpt/")


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` (the .git folder and DVC's scratch folders included) mapped
    to a digest of its bytes, so a test can assert that a refused command changed nothing.

    `SCRATCH` is skipped; compare `git diff --cached` too where staging matters.
    """
    found: dict[str, str] = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            key = path.relative_to(root).as_posix()
            if key.startswith(SCRATCH):
                continue
            if path.is_symlink() or not path.is_file():
                found[key] = "special"
                continue
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Paths added, removed or rewritten between two snapshots."""
    keys = set(before) | set(after)
    return sorted(k for k in keys if before.get(k) != after.get(k))


def assert_user_error(code: int, err: str, *, names: tuple[str, ...] = ()) -> None:
    """A clean refusal: user exit code, one `error:` line, a `hint:`, no traceback,
    and the error line mentions every string in `names` (the file or field at fault)."""
    assert code in USER_EXIT_CODES, f"exit {code}, stderr:\n{err[:2000]}"
    assert "Traceback" not in err, err[:2000]
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, f"expected one error: line, got:\n{err[:2000]}"
    assert any(line.startswith("hint:") for line in lines), f"no hint: line in:\n{err[:2000]}"
    assert len(err) < 20_000, f"error output is {len(err)} characters"
    for name in names:
        assert name in errors[0] or name in err, f"{name!r} not named in:\n{err[:2000]}"


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A small tmpfs mounted at `folder` (a full disk, or a volume to remount read-only);
    skips the test where mounting is not permitted, and always unmounts."""
    folder.mkdir(parents=True, exist_ok=True)
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root on Linux")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@contextlib.contextmanager
def remounted_read_only(mount: Path) -> Iterator[None]:
    """The tmpfs at `mount` read-only for the block, writable again after it."""
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
    try:
        yield
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(mount)], check=True)
