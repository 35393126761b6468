"""The git plumbing dvcckpt needs, run as `git` subprocesses.

A subprocess per call costs a few milliseconds and avoids loading a git
library on the fast paths (`--help`, the pre-commit hook).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from dvcckpt.errors import StateError

# Registry bookkeeping that `add` writes itself; changes to these do not make
# the code "dirty" (otherwise a second save in the same run would look dirty).
_BOOKKEEPING_SUFFIXES = (".ckpt.yaml", ".dvc", ".gitignore")


def git(root: Path, *args: str, check: bool = True) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise StateError("git is not installed", hint="install git and retry") from exc
    if check and done.returncode != 0:
        message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
        raise StateError(f"git {' '.join(args)}: {message}", hint="see the git message above")
    return done.stdout


def toplevel(start: Path) -> Path:
    """Root of the git work tree containing `start`."""
    directory = start if start.is_dir() else start.parent
    out = git(directory, "rev-parse", "--show-toplevel", check=False).strip()
    if not out:
        raise StateError(
            f"{start.resolve()} is not inside a git repository",
            hint="run `git init && dvc init` there, or `dvcckpt quickstart DIR` for a demo",
        )
    return Path(out)


def head_commit(root: Path) -> str | None:
    out = git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False).strip()
    return out or None


def current_branch(root: Path) -> str | None:
    out = git(root, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip()
    return out or None


def is_dirty(root: Path) -> bool:
    """Whether tracked code differs from HEAD (registry bookkeeping files excluded)."""
    out = git(root, "status", "--porcelain=v1", "-z", "--untracked-files=no", check=False)
    changed = [entry[3:] for entry in out.split("\0") if len(entry) > 3]
    return any(not path.endswith(_BOOKKEEPING_SUFFIXES) for path in changed)


def remote_url(root: Path) -> str | None:
    out = git(root, "remote", check=False).split()
    if not out:
        return None
    name = "origin" if "origin" in out else out[0]
    return git(root, "remote", "get-url", name, check=False).strip() or None


def config_value(root: Path, key: str) -> str | None:
    return git(root, "config", "--get", key, check=False).strip() or None


def stage(root: Path, paths: list[Path]) -> None:
    existing = [str(p.resolve().relative_to(root)) for p in paths if p.exists()]
    if existing:
        git(root, "add", "--", *existing)
