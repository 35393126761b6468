"""Indexing: commits from one `git log` walk, card blobs read in one batch, rows inserted.

Untrusted history goes in here: every card blob that cannot be read or stored
(not UTF-8, invalid YAML, over a limit, not a mapping, values SQLite or JSON
cannot hold) becomes a `cards` row with its error instead of stopping the index.
A blob over the size limit is never read into memory.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from dvcckpt.adapters import git
from dvcckpt.adapters import gitlog as history
from dvcckpt.catalog import numbers, rows
from dvcckpt.core.limits import HARD_MAX_BYTES

BULK = 2_000  # keys past which reading a whole table beats one lookup per key


def commits(
    db: sqlite3.Connection, root: Path, include: list[str], exclude: list[str]
) -> tuple[int, int, int]:
    """Index the commits reachable from `include` and not `exclude`: (commits, versions, cards)."""
    walked = list(history.walk(root, include, exclude))
    outside = {p for c in walked for p in c.parents} - {c.sha for c in walked}
    generations = _lookup(db, "commits", "sha", "generation", outside)
    commit_rows: list[tuple[Any, ...]] = []
    for commit in walked:
        generation = 1 + max((generations.get(p, 0) for p in commit.parents), default=0)
        generations[commit.sha] = generation
        commit_rows.append((commit.sha, generation, " ".join(commit.parents), commit.author,
                            commit.email, commit.authored, commit.committed, commit.subject))  # fmt: skip
    db.executemany(
        "INSERT INTO commits (sha, generation, parents, author, email, authored, committed,"
        " subject) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        commit_rows,
    )
    changes = [(c, path, blob, status) for c in walked for path, blob, status in c.changes]
    db.executemany("INSERT OR IGNORE INTO paths (path) VALUES (?)", ((c[1],) for c in changes))
    parsed = _parse_new_blobs(db, root, {c[2] for c in changes} - {history.NULL_BLOB})
    commit_ids = _lookup(db, "commits", "sha", "id", {c.sha for c in walked})
    path_ids = _lookup(db, "paths", "path", "id", {c[1] for c in changes})
    card_ids = _lookup(db, "cards", "blob", "id", {c[2] for c in changes})
    # Each version carries its card's model and run (NULL for a deletion), read from the
    # `cards` row by its primary key: `log MODEL` walks them through an index.
    db.executemany(
        "INSERT OR REPLACE INTO versions SELECT ?, ?, ?, ?, ?, ?, k.model, k.run_name, k.run_id"
        " FROM (SELECT ? AS id) o LEFT JOIN cards k ON k.id = o.id",
        (
            (
                commit_ids[c.sha],
                path_ids[path],
                card_ids.get(blob),
                status,
                generations[c.sha],
                c.committed,
                card_ids.get(blob),
            )
            for c, path, blob, status in changes
        ),
    )
    return len(commit_rows), len(changes), parsed


def _parse_new_blobs(db: sqlite3.Connection, root: Path, blobs: set[str]) -> int:
    # Blobs are content-addressed: a card already parsed (other branch, rebase) is reused.
    todo = sorted(blobs - set(_lookup(db, "cards", "blob", "id", blobs)))
    sizes = _sizes(root, todo)
    readable = [b for b in todo if sizes.get(b, 0) <= HARD_MAX_BYTES]
    contents = git.read_blobs(root, readable)
    for blob in todo:
        hot: dict[str, Any] = {}
        size = sizes.get(blob, 0)
        if size > HARD_MAX_BYTES:
            message = f"{size} bytes is over the {HARD_MAX_BYTES}-byte limit for a card"
            row, body = rows.error_row(blob, message), None
        else:
            row, body, hot = rows.card_row(blob, contents.get(blob))
        cursor = db.execute(
            "INSERT INTO cards (blob, name, model, phase, kind, step, created_at, error, hot,"
            " run_name, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )
        if body is not None:
            card_id = int(cursor.lastrowid or 0)
            db.execute("INSERT INTO bodies VALUES (?, ?)", (card_id, body))
            numbers.store(db, card_id, hot)
    return len(todo)


def _lookup(
    db: sqlite3.Connection, table: str, key: str, value: str, keys: set[str]
) -> dict[str, Any]:
    """{key: value} of the rows with these keys: one indexed lookup each for an update's
    few keys, one pass over the table for a rebuild's many."""
    if len(keys) > BULK:
        found = dict(db.execute(f"SELECT {key}, {value} FROM {table}"))
        return {k: found[k] for k in keys if k in found}
    statement = f"SELECT {value} FROM {table} WHERE {key} = ?"
    rows = ((k, db.execute(statement, (k,)).fetchone()) for k in keys)
    return {k: row[0] for k, row in rows if row is not None}


def _sizes(root: Path, blobs: list[str]) -> dict[str, int]:
    """Blob sizes from one `git cat-file --batch-check` (missing blobs are left out)."""
    if not blobs:
        return {}
    done = git.run(root, ["cat-file", "--batch-check"], "".join(f"{b}\n" for b in blobs).encode())
    sizes: dict[str, int] = {}
    for line in done.stdout.decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].isdigit():
            sizes[parts[0]] = int(parts[2])
    return sizes
