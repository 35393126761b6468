"""Walking Git history for card versions: one `git log --raw` pass, no process per commit.

Yields every commit reachable from the given tips (parents before children)
with the card files it added, changed or deleted, and their blob ids; blob
contents are then read in one batch by `git.read_blobs`.

The output is NUL-framed (`-z`) and parsed by position: git never prints a NUL
inside a field (it refuses NULs in messages and identities), so no subject,
author or path, whatever bytes it holds (`\\x1e`, `\\x1f`, newlines), can shift a
field or forge a commit. The fixed fields (hashes, dates) are validated; a
record that does not parse is reported, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dvcckpt.adapters import git
from dvcckpt.core import layout
from dvcckpt.errors import StateError

NULL_BLOB = "0" * 40
# SQLite integers are signed 64-bit; git accepts dates far beyond (year 3 million).
_INT64 = (1 << 63) - 1
# One NUL-separated token of fixed fields per commit, then its free-text fields.
_FORMAT = "%x00%H %at %ct%x00%P%x00%an%x00%ae%x00%s"
_MAINLINE_FORMAT = "%x00%H%x00%P"
_HASH = r"[0-9a-f]{40}(?:[0-9a-f]{24})?"
_HEADER = re.compile(rf"({_HASH}) ?(-?\d*) ?(-?\d*)")
_PARENTS = re.compile(rf"(?:{_HASH}(?: {_HASH})*)?")
_RAW = re.compile(rf":\d{{6}} \d{{6}} ({_HASH}) ({_HASH}) ([A-Z])\d*")
# A finished DVC experiment: refs/exps/<2 hex>/<rest of the baseline commit>/<name>. DVC's
# other refs there (stash, celery, exec, temp, apply) hold queued or half-run work.
_EXPERIMENT = re.compile(r"refs/exps/[0-9a-f]{2}/(?:[0-9a-f]{38}|[0-9a-f]{62})/[^/]+")


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
    """Ref name -> commit for branches, tags (peeled), remotes, DVC experiments, detached HEAD.

    `dvc exp run` (and dvclive's `save_dvc_exp=True`) commits a run's results, cards
    included, under `refs/exps/...` rather than a branch: `--all` must see them.
    """
    out = git.run_git(
        root,
        "for-each-ref",
        "--format=%(refname)%00%(objectname)%00%(*objectname)",
        "refs/heads",
        "refs/tags",
        "refs/remotes",
        "refs/exps",
    )
    found: dict[str, str] = {}
    for line in out.splitlines():
        name, obj, peeled = line.split("\0")
        if name.startswith("refs/exps/") and not _EXPERIMENT.fullmatch(name):
            continue
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
    command = ["log", "--topo-order", "--reverse", "--raw", "--no-abbrev", "--no-renames", "-z",
               f"--format={_FORMAT}", *include]  # fmt: skip
    if exclude:
        command += ["--not", *exclude]
    command.append("--")
    done = git.run(root, command)
    if done.returncode != 0:
        raise git.failure("git log", done, "run `git fsck`")
    yield from parse_log(done.stdout.decode("utf-8", "replace"))


def parse_log(output: str) -> Iterator[Commit]:
    """Commits of `git log -z --raw --format=_FORMAT` output."""
    for head, fields, raw in _records(output, free_fields=3):
        sha, authored, committed = head
        author, email, subject = fields[1:]
        commit = Commit(sha, fields[0].split(), author, email, _timestamp(authored),
                        _timestamp(committed), subject)  # fmt: skip
        commit.changes = [(path, new, status) for path, _old, new, status in raw]
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
               "--no-abbrev", "--no-renames", "-z", f"--format={_MAINLINE_FORMAT}", branch, "--"]  # fmt: skip
    done = git.run(root, command)
    if done.returncode != 0:
        raise git.failure(
            f"git log {branch}", done, "check the branch name (promotion.main_branch)"
        )
    for head, fields, raw in _records(done.stdout.decode("utf-8", "replace"), free_fields=0):
        first = fields[0].split()
        commit = MainlineCommit(head[0], first[0] if first else None)
        commit.changes = [(path, old, new) for path, old, new, _status in raw]
        yield commit


_Raw = tuple[str, str, str, str]  # (path, old blob, new blob, status letter)


def _records(
    output: str, free_fields: int
) -> Iterator[tuple[tuple[str, ...], list[str], list[_Raw]]]:
    """(header fields, parents + free-text fields, card changes) per commit record.

    Tokens, by position: an empty token opens a record, then the header token, the
    parents token, `free_fields` free-text tokens, then `:meta`/path pairs of `--raw`.
    """
    tokens = output.split("\0")
    index, end = 0, len(tokens)
    while index < end:
        if tokens[index] in ("", "\n"):
            index += 1
            continue
        header = _HEADER.fullmatch(tokens[index])
        fields = tokens[index + 1 : index + 2 + free_fields]
        if header is None or len(fields) < 1 + free_fields or not _PARENTS.fullmatch(fields[0]):
            raise StateError(
                f"git log printed a record dvcckpt cannot read near {tokens[index][:80]!r}",
                hint="check the repository with `git fsck`",
            )
        index += 2 + free_fields
        raw: list[_Raw] = []
        while index + 1 < end and tokens[index].lstrip("\n").startswith(":"):
            meta, path = _RAW.fullmatch(tokens[index].lstrip("\n")), tokens[index + 1]
            if meta is not None and layout.is_card(path):  # (combined `::` merge diffs: none)
                raw.append((path, meta[1], meta[2], meta[3]))
            index += 2
        yield header.groups(), fields, raw


def _timestamp(text: str) -> int:
    """A git date as an integer SQLite can store (damaged or absurd dates are clamped)."""
    try:
        return max(-_INT64 - 1, min(_INT64, int(text)))
    except ValueError:
        return 0
