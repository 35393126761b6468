"""The git plumbing dvcckpt needs, run as `git` subprocesses.

A subprocess per call costs a few milliseconds and avoids loading a git
library on the fast paths (`--help`, the pre-commit hook).
"""

from __future__ import annotations

import hashlib
import re
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
    return explain(what, done.stderr, hint)


def explain(what: str, stderr: bytes, hint: str) -> StateError:
    """git's failure as one error: its `fatal:`/`error:` line (git's last line is often
    advice), and for a held index lock the lock's path and how to clear it."""
    text = stderr.decode(errors="replace")
    lines = text.strip().splitlines()
    reason = next((line for line in lines if line.startswith(("fatal:", "error:"))), None)
    reason = reason or (lines[-1] if lines else "failed")
    if "index.lock" in text:
        found = re.search(r"'([^']*index\.lock)'", text)
        lock = found.group(1) if found else ".git/index.lock"
        return StateError(
            f"{what}: cannot update the git index: {lock} exists (nothing was written)",
            hint=f"another git command is running, or one crashed: once none runs, "
            f"remove the lock (rm '{lock}') and re-run",
        )
    return StateError(f"{what}: {reason}", hint=hint)


def toplevel(start: Path) -> Path:
    """Root of the git work tree containing `start`."""
    directory = start if start.is_dir() else start.parent
    # Only git's own newline is removed: a folder name may end in a space.
    out = run_git(directory, "rev-parse", "--show-toplevel", check=False).removesuffix("\n")
    if not out:
        raise StateError(
            f"{start.resolve()} is not inside a git repository",
            hint="run `git init && dvc init` there, or `dvcckpt quickstart DIR` for a demo",
        )
    return Path(out)


def commit_of(root: Path, rev: str) -> str | None:
    """The commit a revision names, or None if it names none."""
    out = run_git(
        root,
        "rev-parse",
        "--verify",
        "--quiet",
        "--end-of-options",
        f"{rev}^{{commit}}",
        check=False,
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
    entries = iter(out.split("\0"))
    changed = []
    for entry in entries:
        if len(entry) > 3:
            changed.append(entry[3:])
            if {"R", "C"} & set(entry[:2]):  # a rename or copy: the next field is the old path
                next(entries, None)
    return any(not path.endswith(_BOOKKEEPING_SUFFIXES) for path in changed)


def remote_url(root: Path) -> str | None:
    out = run_git(root, "remote", check=False).split()
    if not out:
        return None
    name = "origin" if "origin" in out else out[0]
    return run_git(root, "remote", "get-url", name, check=False).strip() or None


def config_value(root: Path, key: str) -> str | None:
    return run_git(root, "config", "--get", key, check=False).strip() or None


_OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# With this format a found object's header never contains its name, so a name holding
# spaces (or looking like a header) cannot be misread; only a missing one is echoed.
_BATCH_FORMAT = "%(objectname) %(objecttype) %(objectsize)"


def read_blobs(root: Path, specs: list[str]) -> dict[str, bytes | None]:
    """Contents of many `REV:path` / `:path` (index) / blob-id objects through one
    `git cat-file`; None for what is missing or not a file.

    Any path is read correctly: spaces, quotes, non-ASCII and leading dashes travel
    as they are; a name git's line-based input cannot carry (a newline, a trailing
    carriage return) is first resolved to its object id.
    """
    if not specs:
        return {}
    names = {spec: _batch_name(root, spec) for spec in dict.fromkeys(specs)}
    wanted = [name for name in names.values() if name is not None]
    out = b""
    if wanted:
        done = run(
            root,
            ["cat-file", f"--batch={_BATCH_FORMAT}"],
            "".join(f"{name}\n" for name in wanted).encode("utf-8", "surrogateescape"),
        )
        if done.returncode != 0:
            raise failure(
                "git cat-file", done, "check that the repository is not corrupted (`git fsck`)"
            )
        out = done.stdout
    contents: dict[str, bytes | None] = {}
    offset = 0
    for name in wanted:
        contents[name], offset = _batch_entry(out, offset, name)
    return {spec: None if name is None else contents[name] for spec, name in names.items()}


def _batch_name(root: Path, spec: str) -> str | None:
    """What to send `git cat-file --batch` for `spec` (None: it names no object)."""
    if "\n" not in spec and not spec.endswith("\r"):
        return spec
    out = run_git(root, "rev-parse", "--verify", "--quiet", "--end-of-options", spec, check=False)
    return out.strip() or None


def _batch_entry(out: bytes, offset: int, name: str) -> tuple[bytes | None, int]:
    """The object at `offset` of `cat-file --batch` output, and the offset after it."""
    for status in ("missing", "ambiguous"):
        echoed = f"{name} {status}\n".encode("utf-8", "surrogateescape")
        if out.startswith(echoed, offset):
            return None, offset + len(echoed)
    end = out.index(b"\n", offset)
    _oid, kind, size = out[offset:end].split(b" ")
    start, stop = end + 1, end + 1 + int(size)
    return (out[start:stop] if kind == b"blob" else None), stop + 1


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
    out = run_git(root, "rev-parse", "--git-path", "hooks").removesuffix("\n")
    path = Path(out)
    return path if path.is_absolute() else root / path


def existing_objects(root: Path, shas: list[str]) -> set[str]:
    """The subset of `shas` present in the object database (one `git cat-file` call)."""
    shas = [sha for sha in shas if _OBJECT_ID.fullmatch(sha)]  # anything else names no object
    if not shas:
        return set()
    done = run(root, ["cat-file", "--batch-check"], "".join(f"{sha}\n" for sha in shas).encode())
    lines = done.stdout.decode("utf-8", "replace").splitlines()
    return {line.split()[0] for line in lines if not line.endswith("missing")}


def blob_id(content: bytes) -> str:
    """Git's blob id of a file's content (what `git hash-object` prints), without a process."""
    header = b"blob %d\0" % len(content)
    return hashlib.sha1(header + content, usedforsecurity=False).hexdigest()
