"""The git plumbing dvcckpt needs, run as `git` subprocesses.

A subprocess per call costs a few milliseconds and avoids loading a git
library on the fast paths (`--help`, the pre-commit hook).
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from dvcckpt.core import layout
from dvcckpt.errors import StateError

# Registry bookkeeping that `add` writes itself; changes to these do not make
# the code "dirty" (otherwise a second save in the same run would look dirty).
_BOOKKEEPING_SUFFIXES = (layout.CARD_SUFFIX, layout.POINTER_SUFFIX, ".gitignore")


def run(
    root: Path, args: list[str], stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """The one place dvcckpt starts git: `git -C ROOT ARGS`, output captured as bytes."""
    try:
        return subprocess.run(
            ["git", "-C", str(root), *args], input=stdin, capture_output=True, check=False
        )
    except FileNotFoundError as exc:
        raise StateError("git is not installed", hint="install git and retry") from exc


def run_git(root: Path, *args: str, check: bool = True) -> str:
    """Text output of a git command; a failure names the command and git's last line."""
    done = run(root, list(args))
    if check and done.returncode != 0:
        raise failure(f"git {' '.join(args)}", done, "see the git message above")
    return done.stdout.decode("utf-8", "replace")


def failure(what: str, done: subprocess.CompletedProcess[bytes], hint: str) -> StateError:
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    return StateError(f"{what}: {lines[-1] if lines else 'failed'}", hint=hint)


def toplevel(start: Path) -> Path:
    """Root of the git work tree containing `start`."""
    directory = start if start.is_dir() else start.parent
    out = run_git(directory, "rev-parse", "--show-toplevel", check=False).strip()
    if not out:
        raise StateError(
            f"{start.resolve()} is not inside a git repository",
            hint="run `git init && dvc init` there, or `dvcckpt quickstart DIR` for a demo",
        )
    return Path(out)


def commit_of(root: Path, rev: str) -> str | None:
    """The commit a revision names, or None if it names none."""
    out = run_git(
        root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False
    ).strip()
    return out or None


def head_commit(root: Path) -> str | None:
    return commit_of(root, "HEAD")


def current_branch(root: Path) -> str | None:
    out = run_git(root, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip()
    return out or None


def is_dirty(root: Path) -> bool:
    """Whether tracked code differs from HEAD (registry bookkeeping files excluded)."""
    out = run_git(root, "status", "--porcelain=v1", "-z", "--untracked-files=no", check=False)
    changed = [entry[3:] for entry in out.split("\0") if len(entry) > 3]
    return any(not path.endswith(_BOOKKEEPING_SUFFIXES) for path in changed)


def remote_url(root: Path) -> str | None:
    out = run_git(root, "remote", check=False).split()
    if not out:
        return None
    name = "origin" if "origin" in out else out[0]
    return run_git(root, "remote", "get-url", name, check=False).strip() or None


def config_value(root: Path, key: str) -> str | None:
    return run_git(root, "config", "--get", key, check=False).strip() or None


def stage(root: Path, paths: list[Path]) -> None:
    existing = [str(p.resolve().relative_to(root)) for p in paths if p.exists()]
    if existing:
        run_git(root, "add", "--", *existing)


def read_blobs(root: Path, specs: list[str]) -> dict[str, bytes | None]:
    """Contents of many `REV:path` / `:path` (index) objects through one `git cat-file`."""
    if not specs:
        return {}
    done = run(root, ["cat-file", "--batch"], "".join(f"{spec}\n" for spec in specs).encode())
    if done.returncode != 0:
        raise failure(
            "git cat-file", done, "check that the repository is not corrupted (`git fsck`)"
        )
    out = done.stdout
    blobs: dict[str, bytes | None] = {}
    offset = 0
    for spec in specs:
        end = out.index(b"\n", offset)
        header = out[offset:end].split()
        offset = end + 1
        if len(header) != 3 or header[1] != b"blob":
            blobs[spec] = None  # missing, or not a file
            if len(header) == 3:
                offset += int(header[2]) + 1
            continue
        size = int(header[2])
        blobs[spec] = out[offset : offset + size]
        offset += size + 1
    return blobs


def staged_changes(root: Path, base: str | None = "HEAD") -> dict[str, str]:
    """Path -> status letter (A, M, D, T) of what the index changes against `base`.

    With no base (a repository before its first commit) everything staged is new.
    """
    args = ["diff", "--cached", "--name-status", "-z", "--no-renames"]
    if base is not None:
        args.append(base)
    fields = run_git(root, *args).split("\0")
    return {fields[i + 1]: fields[i][0] for i in range(0, len(fields) - 1, 2)}


def tracked_files(root: Path) -> list[str]:
    """Paths in the index."""
    return [path for path in run_git(root, "ls-files", "-z", "--cached").split("\0") if path]


def hooks_path(root: Path) -> Path:
    """Where git looks for hooks (honours core.hooksPath)."""
    out = run_git(root, "rev-parse", "--git-path", "hooks").strip()
    path = Path(out)
    return path if path.is_absolute() else root / path


def existing_objects(root: Path, shas: list[str]) -> set[str]:
    """The subset of `shas` present in the object database (one `git cat-file` call)."""
    if not shas:
        return set()
    done = run(root, ["cat-file", "--batch-check"], "".join(f"{sha}\n" for sha in shas).encode())
    lines = done.stdout.decode("utf-8", "replace").splitlines()
    return {line.split()[0] for line in lines if not line.endswith("missing")}


def blob_id(content: bytes) -> str:
    """Git's blob id of a file's content (what `git hash-object` prints), without a process."""
    header = b"blob %d\0" % len(content)
    return hashlib.sha1(header + content, usedforsecurity=False).hexdigest()
