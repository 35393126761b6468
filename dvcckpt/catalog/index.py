"""The catalog: a SQLite index of every card version in Git history.

A derived cache in the worktree's git directory (never committed): deleting it
loses nothing, and every reader brings it up to date first. It never dies: a card
it cannot read is recorded with its error (`index_problems`) and skipped; a
damaged file, in whatever way, is rebuilt from history and the query re-run
(`catalog.store`); an unwritable folder keeps it in memory; a full disk is a
clear error. Order comes from the commit graph: each commit's generation (longest
path from a root) is the primary sort key, so an incremental update orders
commits exactly as a full rebuild does.

Writers (rebuild, update) serialise on a lock file; a rebuild writes a new file
beside the old one and renames it into place, so concurrent readers and a killed
rebuild see either the old catalog or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from dvcckpt.adapters import git
from dvcckpt.adapters import gitlog as history
from dvcckpt.catalog import latest, rows, store
from dvcckpt.catalog.rows import FORMAT_VERSION, ORDER, VERSION_ROWS, Problem, Stats, Version
from dvcckpt.catalog.store import heals
from dvcckpt.errors import StateError


class Index:
    """The SQLite index of card versions: maintenance, versions, reachability, raw SQL;
    `dvcckpt.catalog.Catalog` adds the queries (`find`, `log`) on top."""

    def __init__(self, repo: str | os.PathLike[str] | None = None, *, refresh: bool = True):
        self.root = git.toplevel(Path(repo) if repo is not None else Path.cwd())
        location = store.locate(self.root)
        self.path = location.path
        self._common = location.common
        self._connection: sqlite3.Connection | None = None
        self._parent_map: dict[str, list[str]] | None = None
        self._id_map: dict[str, int] = {}
        self._depth = 0
        # Why the catalog lives in memory for this process (its folder cannot be written).
        self.in_memory: str | None = None
        if refresh:
            self.update()

    # -- maintenance ---------------------------------------------------------------------

    def rebuild(self) -> Stats:
        """Index all history from scratch into a new file, then swap it in."""
        return self._writing(self._rebuild_locked)

    def _rebuild_locked(self) -> Stats:
        start = time.perf_counter()
        self.close()
        if self.in_memory:
            db = store.connect(":memory:")
            stats = self._fill(db, start)
            self._connection = db
            return stats
        store.sweep(self.path)
        temporary = store.temporary(self.path)
        try:
            db = store.connect(temporary)
            try:
                stats = self._fill(db, start)
            finally:
                db.close()
            store.fault_point("catalog-filled")  # the fault drills' kill point
            os.replace(temporary, self.path)
        except BaseException:
            for leftover in (temporary, temporary.with_name(f"{temporary.name}-journal")):
                leftover.unlink(missing_ok=True)
            raise
        return stats

    def _fill(self, db: sqlite3.Connection, start: float) -> Stats:
        db.executescript(rows.SCHEMA)
        db.execute("INSERT INTO meta VALUES ('format', ?)", (FORMAT_VERSION,))
        tips = history.tips(self.root)
        added, versions, parsed = self._ingest(db, sorted(set(tips.values())), [])
        latest.fill(db, self.root, tips.get("HEAD"))
        rows.set_tips(db, tips)
        rows.set_meta(db, "history", store.history_fingerprint(self._common))
        store.fault_point("catalog-filling")
        db.commit()
        return Stats(added, 0, versions, parsed, time.perf_counter() - start, True)

    def update(self) -> Stats:
        """Index only new commits; drop commits no longer reachable (rebase, force-push).

        A history that changed under the same refs (unshallowed, grafted) or lost
        commits the catalog knows (rewritten and garbage-collected) is rebuilt.
        """
        start = time.perf_counter()
        if not self.in_memory:
            store.sweep_stale(self.path)
        tips = history.tips(self.root)
        fingerprint = store.history_fingerprint(self._common)
        if self._is_current(tips, fingerprint):
            return Stats(0, 0, 0, 0, time.perf_counter() - start, False)
        return self._writing(lambda: self._update_locked(tips, fingerprint, start))

    def _is_current(self, tips: dict[str, str], fingerprint: str) -> bool:
        # Without the lock: an up-to-date catalog needs no write (a read-only checkout).
        try:
            db = self._open_or_none()
            return db is not None and (
                rows.stored_tips(db) == tips and rows.meta(db, "history") == fingerprint
            )
        except sqlite3.DatabaseError:
            self.close()
            return False

    def _update_locked(self, tips: dict[str, str], fingerprint: str, start: float) -> Stats:
        if not self.in_memory:
            self.close()  # another process may have renamed a rebuilt file into place
        db = self._open_or_none()
        if (
            db is None
            and not self.in_memory
            and store.seed(self.path, self._common, FORMAT_VERSION)
        ):
            db = self._open_or_none()  # a new worktree: from the main worktree's catalog
        if db is None:
            return self._rebuild_locked()
        try:
            stored = rows.stored_tips(db)
            if rows.meta(db, "history") != fingerprint:
                return self._rebuild_locked()
            if stored == tips:
                return Stats(0, 0, 0, 0, time.perf_counter() - start, False)
            old = sorted(set(stored.values()))
            if git.existing_objects(self.root, old) != set(old):
                return self._rebuild_locked()  # an old tip was garbage-collected: start over
            new = sorted(set(tips.values()))
            gone = history.rev_list(self.root, old, new)
            with db:
                change = latest.prepare(db, self.root, stored.get("HEAD"), tips.get("HEAD"), gone)
                rows.delete_commits(db, gone)
                change.first_new = latest.next_commit_id(db)
                added, versions, parsed = self._ingest(db, new, old)
                latest.finish(db, self.root, change)
                rows.set_tips(db, tips)
        except sqlite3.DatabaseError as exc:
            if not store.is_damage(exc):
                raise
            return self._rebuild_locked()
        except StateError:  # git cannot walk from the stored commits (pruned history)
            return self._rebuild_locked()
        return Stats(added, len(gone), versions, parsed, time.perf_counter() - start, False)

    def _writing(self, write: Callable[[], Stats]) -> Stats:
        """Run a write under the lock; a folder that cannot be written: in memory instead."""
        if self.in_memory:
            return write()
        try:
            with store.write_lock(self.path):
                return write()
        except (OSError, sqlite3.DatabaseError) as exc:
            if store.is_full(exc):
                raise store.full_disk(self.path) from exc
            if not store.is_unwritable(exc):
                raise
            self._to_memory(exc)
            return write()

    def _to_memory(self, exc: BaseException) -> None:
        self.close()
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        self.in_memory = f"{self.path} cannot be written ({(reason or '').lower()})"

    def _repair(self, exc: sqlite3.DatabaseError) -> None:
        """Make the next attempt of a query that failed with `exc` succeed, or raise."""
        if store.is_full(exc):
            raise store.full_disk(self.path) from exc
        if store.is_unwritable(exc) and not self.in_memory:
            self._to_memory(exc)
        elif not store.is_damage(exc):
            raise exc
        self.rebuild()

    @heals
    @heals
    def status(self) -> dict[str, Any]:
        db = store.checked(self._db())  # a full read: damage that no query reached shows here
        counts = {
            name: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for name, table in rows.COUNTED.items()
        }
        size = None if self.in_memory else self.path.stat().st_size
        return {"path": str(self.path), "in_memory": self.in_memory, "bytes": size,
                "refs": len(rows.stored_tips(db)), **counts,
                "index_errors": [p.as_dict() for p in self.index_problems()]}  # fmt: skip

    @heals
    def index_problems(self) -> list[Problem]:
        """Card versions the catalog could not index, with why, in history order."""
        return [Problem(*row) for row in self._db().execute(rows.PROBLEM_ROWS)]

    def close(self) -> None:
        self._parent_map = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # -- queries -------------------------------------------------------------------------

    @heals
    def versions(
        self,
        *,
        model: str | None = None,
        name: str | None = None,
        path: str | None = None,
        commits: set[str] | None = None,
        with_decisions: bool = False,
    ) -> list[Version]:
        """Card versions in commit-graph order (oldest first), deletions included.

        `with_decisions` keeps only cards that record decisions, filtered inside
        SQLite so the other cards are never decoded.
        """
        clauses, params = [], []
        for column, value in (("k.model", model), ("k.name", name), ("p.path", path)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if with_decisions:
            clauses.append("json_type(b.card, '$.decisions') = 'array'")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db().execute(f"{VERSION_ROWS} {where} {ORDER}", params)
        return [Version.from_row(r) for r in rows if commits is None or r["sha"] in commits]

    @heals
    def reachable(self, revisions: Iterable[str]) -> set[str]:
        """Commits reachable from the revisions (one revision, or a range `A..B`)."""
        args = list(revisions)
        for arg in args:
            if arg.startswith("-"):
                raise StateError(
                    f"{arg!r} is not a revision", hint="name a branch, tag or commit, or A..B"
                )
        if args == ["HEAD"]:  # kept ready in the catalog
            statement = "SELECT c.sha FROM head_commits h JOIN commits c ON c.id = h.id"
            return {row[0] for row in self._db().execute(statement)}
        if len(args) == 1 and ".." not in args[0]:
            sha = self._resolve(args[0])
            return self.ancestors(sha) if sha else set()
        out = git.run_git(self.root, "rev-list", *args, "--", check=False)
        if not out:
            for arg in args:
                for end in filter(None, arg.split("..")):
                    self._resolve(end)
        return set(out.split())

    @heals
    def ancestors(self, sha: str) -> set[str]:
        """`sha` and its ancestors, walked through the indexed parent links (no git call)."""
        parents = self.parent_links()
        if sha not in parents:
            return set(git.run_git(self.root, "rev-list", sha, "--").split())
        seen, stack = {sha}, [sha]
        while stack:
            for parent in parents.get(stack.pop(), ()):
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen

    @heals
    def scope(self, commits: set[str] | None) -> str:
        """SQL join restricting `versions v` to `commits` (all commits when None)."""
        if commits is None:
            return ""
        ids = self._commit_ids()
        db = self._db()
        db.execute("CREATE TEMP TABLE IF NOT EXISTS scope (id INTEGER PRIMARY KEY)")
        db.execute("DELETE FROM temp.scope")
        db.executemany(
            "INSERT INTO temp.scope VALUES (?)", ((ids[s],) for s in commits if s in ids)
        )
        return "JOIN temp.scope s ON s.id = v.commit_id"

    def _commit_ids(self) -> dict[str, int]:
        self.parent_links()
        return self._id_map

    @heals
    def parent_links(self) -> dict[str, list[str]]:
        # One read of the commits table serves both reachability and the scope ids.
        if self._parent_map is None:
            rows = self._db().execute("SELECT id, sha, parents FROM commits").fetchall()
            self._parent_map = {sha: parents.split() for _, sha, parents in rows}
            self._id_map = {sha: id_ for id_, sha, _ in rows}
        return self._parent_map

    def _resolve(self, rev: str) -> str:
        sha = git.commit_of(self.root, rev)
        if sha is None:
            raise StateError(f"unknown revision {rev!r}", hint="check `git log --oneline --all`")
        return sha

    @heals
    def get(self, name: str, rev: str | None = None) -> Version:
        """A checkpoint's card as of `rev` (default: HEAD)."""
        commits = self.reachable([rev or "HEAD"])
        matches = [v for v in self.versions(name=name, commits=commits)]
        if not matches:
            raise StateError(
                f"no checkpoint named {name!r} in the history of {rev or 'HEAD'}",
                hint="list checkpoints with `dvcckpt find`",
            )
        paths = sorted({v.path for v in matches})
        if len(paths) > 1:
            raise StateError(
                f"checkpoint name {name!r} is used by several cards: {', '.join(paths)}",
                hint="name the card by its path instead (names are unique for ever; "
                "`dvcckpt check` refuses a reused one)",
            )
        return matches[-1]

    @heals
    def blobs_with_decisions(self) -> set[str]:
        """Blob ids of card versions that record decisions."""
        rows = self._db().execute(
            "SELECT k.blob FROM cards k JOIN bodies b ON b.id = k.id"
            " WHERE json_type(b.card, '$.decisions') = 'array'"
        )
        return {row[0] for row in rows}

    @heals
    def model_of(self, model_or_name: str) -> str | None:
        """The model a model name or checkpoint name refers to (an indexed lookup)."""
        db = self._db()
        if db.execute("SELECT 1 FROM cards WHERE model = ? LIMIT 1", (model_or_name,)).fetchone():
            return model_or_name
        row = db.execute(
            "SELECT model FROM cards WHERE name = ? AND model IS NOT NULL LIMIT 1",
            (model_or_name,),
        ).fetchone()
        return str(row[0]) if row else None

    @heals
    def known_blobs(self) -> set[str]:
        return {row[0] for row in self._db().execute("SELECT blob FROM cards")}

    @heals
    def cards_by_blob(self, blobs: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Parsed cards of indexed blobs (unreadable or unknown ones are left out)."""
        db = self._db()
        found: dict[str, dict[str, Any]] = {}
        for blob in blobs:
            row = db.execute(
                "SELECT b.card FROM cards k JOIN bodies b ON b.id = k.id WHERE k.blob = ?", (blob,)
            ).fetchone()
            if row is not None:
                found[blob] = rows.decode(row[0])
        return found

    @heals
    def meta(self, key: str) -> str | None:
        """A derived value cached in the catalog (rebuilt catalogs simply recompute it)."""
        row = self._db().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str, prefix: str) -> None:
        """Cache `value`, replacing older entries whose key starts with `prefix`.

        A catalog that cannot take the write (full disk, read-only) just does not
        cache: the value is recomputed next time.
        """
        try:
            lock = contextlib.nullcontext() if self.in_memory else store.write_lock(self.path)
            with lock, self._db() as db:
                db.execute("DELETE FROM meta WHERE key LIKE ? || '%'", (prefix,))
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
        except (OSError, sqlite3.DatabaseError) as exc:
            if not (store.is_full(exc) or store.is_unwritable(exc) or store.is_damage(exc)):
                raise

    @heals
    def sql(self, statement: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return list(self._db().execute(statement, list(params)))

    @heals
    def executemany(self, statement: str, rows: Iterable[tuple[Any, ...]]) -> None:
        self._db().executemany(statement, rows)

    # -- internals -----------------------------------------------------------------------

    def _ingest(
        self, db: sqlite3.Connection, include: list[str], exclude: list[str]
    ) -> tuple[int, int, int]:
        from dvcckpt.catalog import ingest  # only when there is something to index

        self._parent_map = None
        return ingest.commits(db, self.root, include, exclude)

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            if self._open_or_none() is None:
                self.rebuild()
            if self._open_or_none() is None:
                raise StateError(f"cannot open the catalog {self.path}", hint="delete it and retry")
        assert self._connection is not None
        return self._connection

    def _open_or_none(self) -> sqlite3.Connection | None:
        """The catalog, or None when missing, damaged or of another format version."""
        if self._connection is None and not self.in_memory:
            self._connection = store.open_valid(self.path, FORMAT_VERSION)
        return self._connection
