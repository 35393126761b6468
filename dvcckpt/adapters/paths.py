"""Paths relative to the repository: the one rule every layer uses to name a file."""

from __future__ import annotations

from pathlib import Path


def repo_relative(path: Path, root: Path) -> str | None:
    """`path` as a POSIX path relative to `root` (symlinks resolved), or None if outside.

    A relative `path` is taken from the current directory, as a user typed it.
    """
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
