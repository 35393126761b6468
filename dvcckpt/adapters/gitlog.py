"""Walking Git history for card versions: one `git log --raw` pass, no process per commit.

Yields every commit reachable from the given tips (parents before children)
with the card files it added, changed or deleted, and their blob ids; blob
contents are then read in one batch by `git.read_blobs`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dvcckpt.adapters import git
from dvcckpt.core import layout

NULL_BLOB = "0" * 40
_FORMAT = "%x1e%H%x1f%P%x1f%an%x1f%ae%x1f%at%x1f%ct%x1f%s"


@dataclass
class Commit:
    sha: str
    parents: list[str]
    author: str
    email: str
    authored: int
    committed: int
    subject: str
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # (path, blob, status)


def tips(root: Path) -> dict[str, str]:
    """Ref name -> commit for branches, tags (peeled), remotes and a detached HEAD."""
    out = git.run_git(
        root,
        "for-each-ref",
        "--format=%(refname)%00%(objectname)%00%(*objectname)",
        "refs/heads",
        "refs/tags",
        "refs/remotes",
    )
    found: dict[str, str] = {}
    for line in out.splitlines():
        name, obj, peeled = line.split("\0")
        found[name] = peeled or obj
    head = git.head_commit(root)
    if head:
        found["HEAD"] = head
    return found


def rev_list(root: Path, include: list[str], exclude: list[str] | None = None) -> list[str]:
    """Commits reachable from `include` and not from `exclude`."""
    if not include:
        return []
    return git.run_git(root, "rev-list", *include, "--not", *(exclude or []), "--").split()


def walk(root: Path, include: list[str], exclude: list[str] | None = None) -> Iterator[Commit]:
    """Commits reachable from `include` but not `exclude`, parents first, with card changes."""
    if not include:
        return
    command = [
        "log",
        "--topo-order",
        "--reverse",
        "--raw",
        "--no-abbrev",
        "--no-renames",
        "-z",
        f"--format={_FORMAT}",
        *include,
    ]
    if exclude:
        command += ["--not", *exclude]
    command.append("--")
    done = git.run(root, command)
    if done.returncode != 0:
        raise git.failure("git log", done, "run `git fsck`")
    yield from parse_log(done.stdout.decode("utf-8", "replace"))


def parse_log(output: str) -> Iterator[Commit]:
    for record in output.split("\x1e")[1:]:
        header, _, raw = record.partition("\0")
        sha, parents, author, email, authored, committed, subject = header.split("\x1f")
        commit = Commit(sha, parents.split(), author, email, int(authored), int(committed), subject)
        entries = raw.lstrip("\n").split("\0")
        for meta, path in zip(entries[0::2], entries[1::2], strict=False):
            if layout.is_card(path) and meta.startswith(":"):
                parts = meta.split()
                commit.changes.append((path, parts[3], parts[4][0]))
        yield commit


@dataclass
class MainlineCommit:
    """A first-parent commit and the net change it made to cards against its first parent."""

    sha: str
    parent: str | None
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # (path, old, new blob)


def mainline(root: Path, branch: str) -> Iterator[MainlineCommit]:
    """The first-parent chain of `branch`, oldest first, with each commit's net card changes.

    A merge counts by its diff against the first parent (what a reviewer approved):
    what exists only inside a merged branch's own commits never appears here.
    """
    command = ["log", "--first-parent", "--diff-merges=first-parent", "--reverse", "--raw",
               "--no-abbrev", "--no-renames", "-z", "--format=%x1e%H%x1f%P", branch, "--"]  # fmt: skip
    done = git.run(root, command)
    if done.returncode != 0:
        raise git.failure(
            f"git log {branch}", done, "check the branch name (promotion.main_branch)"
        )
    for record in done.stdout.decode("utf-8", "replace").split("\x1e")[1:]:
        header, _, raw = record.partition("\0")
        sha, _, parents = header.partition("\x1f")
        first = parents.split()
        commit = MainlineCommit(sha, first[0] if first else None)
        entries = raw.lstrip("\n").split("\0")
        for meta, path in zip(entries[0::2], entries[1::2], strict=False):
            if layout.is_card(path) and meta.startswith(":"):
                parts = meta.split()
                commit.changes.append((path, parts[2], parts[3]))
        yield commit
