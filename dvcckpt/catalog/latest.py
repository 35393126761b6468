"""Scopes the catalog keeps ready: the commits reachable from HEAD, and the latest
version of every card path, for HEAD and over all refs.

Queries of the common case (`find`, `log` on HEAD) then read one row per card, or
join one small table, instead of walking the commit graph and ranking every version
of every card on each call. Both are maintained where history enters the catalog:
a rebuild fills them; an update moves them by what changed, so its cost follows
the size of the change, not of the history:

- HEAD: commits that became reachable (`git rev-list NEW --not OLD`) are added and
  those no longer reachable (`OLD --not NEW`: a reset, a rebase, another branch
  checked out) removed;
- the latest version is ranked again only for card paths that one of those commits,
  a new commit or a dropped (unreachable) commit touches.

"Latest" is what `find` always meant: the highest (generation, commit time, commit
id) among the versions in scope, a deletion included (`find` then skips the path).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from dvcckpt.adapters import gitlog as history

HEAD, ALL = "HEAD", "*"
SCHEMA = """
CREATE TABLE head_commits (id INTEGER PRIMARY KEY);
CREATE TABLE latest (
    ref TEXT NOT NULL, path_id INTEGER NOT NULL, commit_id INTEGER NOT NULL, card_id INTEGER,
    status TEXT NOT NULL, generation INTEGER NOT NULL, committed INTEGER NOT NULL,
    PRIMARY KEY (ref, path_id)) WITHOUT ROWID;
CREATE INDEX latest_card ON latest (card_id);
"""
TABLES = frozenset({"head_commits", "latest"})


def source(*, all_refs: bool, latest: bool) -> tuple[str, str]:
    """A FROM clause naming the card versions in scope `v`, and the condition it needs.

    `v` has the columns of `versions`: commit_id, path_id, card_id, status,
    generation, committed.
    """
    if latest:
        return "latest v", f"v.ref = '{ALL if all_refs else HEAD}'"
    if all_refs:
        return "versions v", "1"
    return "versions v JOIN head_commits s ON s.id = v.commit_id", "1"


def fill(db: sqlite3.Connection, root: Path, head: str | None) -> None:
    """Compute both scopes from scratch (a rebuild)."""
    db.execute("DELETE FROM head_commits")
    db.execute("DELETE FROM latest")
    if head:
        _add_head(db, history.rev_list(root, [head]))
    _rank(db, ALL, None)
    _rank(db, HEAD, None)


@dataclass
class Change:
    """What an update changes in the scopes, gathered before old commits are dropped."""

    old_head: str | None
    new_head: str | None
    gone_head: list[int] = field(default_factory=list)  # ids no longer reachable from HEAD
    head_paths: set[int] = field(default_factory=set)
    all_paths: set[int] = field(default_factory=set)
    first_new: int = 0  # ids from here on are commits the update adds


def prepare(
    db: sqlite3.Connection, root: Path, old_head: str | None, new_head: str | None, gone: list[str]
) -> Change:
    """Call before the unreachable commits `gone` are deleted from the catalog."""
    change = Change(old_head, new_head)
    change.all_paths = _paths_of(db, _ids(db, gone))
    if old_head and new_head and old_head != new_head:
        change.gone_head = _ids(db, history.rev_list(root, [old_head], [new_head]))
        change.head_paths = _paths_of(db, change.gone_head)
    return change


def finish(db: sqlite3.Connection, root: Path, change: Change) -> None:
    """Call after the new commits are indexed: move HEAD, re-rank the touched paths."""
    new_ids = [
        row[0] for row in db.execute("SELECT id FROM commits WHERE id >= ?", (change.first_new,))
    ]
    change.all_paths |= _paths_of(db, new_ids)
    _rank(db, ALL, change.all_paths)
    if change.old_head == change.new_head:
        return
    if not (change.old_head and change.new_head):  # HEAD born or gone: start over
        fill_head(db, root, change.new_head)
        return
    db.executemany("DELETE FROM head_commits WHERE id = ?", ((i,) for i in change.gone_head))
    added = history.rev_list(root, [change.new_head], [change.old_head])
    _add_head(db, added)
    _rank(db, HEAD, change.head_paths | _paths_of(db, _ids(db, added)))


def fill_head(db: sqlite3.Connection, root: Path, head: str | None) -> None:
    db.execute("DELETE FROM head_commits")
    db.execute("DELETE FROM latest WHERE ref = ?", (HEAD,))
    if head:
        _add_head(db, history.rev_list(root, [head]))
    _rank(db, HEAD, None)


def next_commit_id(db: sqlite3.Connection) -> int:
    """The id SQLite gives the next commit row (max + 1: no AUTOINCREMENT)."""
    return int(db.execute("SELECT coalesce(max(id), 0) + 1 FROM commits").fetchone()[0])


def _add_head(db: sqlite3.Connection, shas: list[str]) -> None:
    db.executemany(
        "INSERT OR IGNORE INTO head_commits SELECT id FROM commits WHERE sha = ?",
        ((sha,) for sha in shas),
    )


def _ids(db: sqlite3.Connection, shas: list[str]) -> list[int]:
    found = (db.execute("SELECT id FROM commits WHERE sha = ?", (sha,)).fetchone() for sha in shas)
    return [row[0] for row in found if row is not None]


def _paths_of(db: sqlite3.Connection, commit_ids: list[int]) -> set[int]:
    paths: set[int] = set()
    for commit_id in commit_ids:
        rows = db.execute("SELECT path_id FROM versions WHERE commit_id = ?", (commit_id,))
        paths.update(row[0] for row in rows)
    return paths


def _rank(db: sqlite3.Connection, ref: str, paths: set[int] | None) -> None:
    """The latest version per card path in scope `ref`: of every path (None), or only
    of `paths`."""
    if paths is not None and not paths:
        return
    join = "JOIN head_commits s ON s.id = v.commit_id" if ref == HEAD else ""
    only = ""
    if paths is not None:
        db.execute("CREATE TEMP TABLE IF NOT EXISTS touched (id INTEGER PRIMARY KEY)")
        db.execute("DELETE FROM temp.touched")
        db.executemany("INSERT INTO temp.touched VALUES (?)", ((p,) for p in paths))
        db.execute(
            "DELETE FROM latest WHERE ref = ? AND path_id IN (SELECT id FROM temp.touched)", (ref,)
        )
        only = "WHERE v.path_id IN (SELECT id FROM temp.touched)"
    db.execute(
        f"""INSERT INTO latest SELECT ?, path_id, commit_id, card_id, status, generation, committed
        FROM (SELECT v.*, ROW_NUMBER() OVER (PARTITION BY v.path_id
                  ORDER BY v.generation DESC, v.committed DESC, v.commit_id DESC) AS rn
              FROM versions v {join} {only})
        WHERE rn = 1""",
        (ref,),
    )
