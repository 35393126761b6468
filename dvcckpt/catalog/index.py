"""The catalog: a SQLite index of every card version in Git history.

It is a derived cache kept in the git directory (it can never be committed):
deleting it loses nothing, a corrupted file is rebuilt transparently, and
every reader brings it up to date first. Order comes from the commit graph:
each commit's generation (longest path from a root) is the primary sort key,
so an incremental update orders commits exactly as a full rebuild does.

Writers (rebuild, update) serialise on a lock file; a rebuild writes a new
file and renames it into place, so concurrent readers keep a consistent view.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from dvcckpt.adapters import git
from dvcckpt.adapters import gitlog as history
from dvcckpt.catalog import rows
from dvcckpt.catalog.rows import FORMAT_VERSION, ORDER, VERSION_ROWS, Stats, Version
from dvcckpt.errors import StateError


def catalog_path(root: Path) -> Path:
    common = Path(git.run_git(root, "rev-parse", "--git-common-dir").strip())
    common = common if common.is_absolute() else root / common
    return common / "dvcckpt" / "catalog.sqlite"


class Index:
    """The SQLite index of card versions: maintenance, versions, reachability, raw SQL.

    `dvcckpt.catalog.Catalog` adds the queries (`find`, `log`) on top.
    """

    def __init__(self, repo: str | os.PathLike[str] | None = None, *, refresh: bool = True):
        self.root = git.toplevel(Path(repo) if repo is not None else Path.cwd())
        self.path = catalog_path(self.root)
        self._connection: sqlite3.Connection | None = None
        self._parent_map: dict[str, list[str]] | None = None
        self._id_map: dict[str, int] = {}
        if refresh:
            self.update()

    # -- maintenance ---------------------------------------------------------------------

    def rebuild(self) -> Stats:
        """Index all history from scratch into a new file, then swap it in."""
        with self._write_lock():
            return self._rebuild_locked()

    def _rebuild_locked(self) -> Stats:
        start = time.perf_counter()
        self.close()
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temporary.unlink(missing_ok=True)
        db = _connect(temporary)
        try:
            db.executescript(rows.SCHEMA)
            db.execute("INSERT INTO meta VALUES ('format', ?)", (FORMAT_VERSION,))
            tips = history.tips(self.root)
            added, versions, parsed = self._ingest(db, sorted(set(tips.values())), [])
            rows.set_tips(db, tips)
            db.commit()
        finally:
            db.close()
        os.replace(temporary, self.path)
        return Stats(added, 0, versions, parsed, time.perf_counter() - start, True)

    def update(self) -> Stats:
        """Index only new commits; drop commits no longer reachable (rebase, force-push)."""
        start = time.perf_counter()
        with self._write_lock():
            db = self._open_or_none()
            if db is None:
                return self._rebuild_locked()
            stored = rows.stored_tips(db)
            tips = history.tips(self.root)
            if stored == tips:
                return Stats(0, 0, 0, 0, time.perf_counter() - start, False)
            old = sorted(set(stored.values()))
            if git.existing_objects(self.root, old) != set(old):
                return self._rebuild_locked()  # an old tip was garbage-collected: start over
            new = sorted(set(tips.values()))
            gone = history.rev_list(self.root, old, new)
            with db:
                rows.delete_commits(db, gone)
                added, versions, parsed = self._ingest(db, new, old)
                rows.set_tips(db, tips)
        return Stats(added, len(gone), versions, parsed, time.perf_counter() - start, False)

    def status(self) -> dict[str, Any]:
        db = self._db()
        counts = {
            table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("commits", "versions", "cards")
        }
        return {
            "path": str(self.path),
            "bytes": self.path.stat().st_size,
            "refs": len(rows.stored_tips(db)),
            **counts,
            "unreadable_cards": db.execute(
                "SELECT count(*) FROM cards WHERE error IS NOT NULL"
            ).fetchone()[0],
        }

    def close(self) -> None:
        self._parent_map = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # -- queries -------------------------------------------------------------------------

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
        found = [Version.from_row(row) for row in rows]
        return [v for v in found if commits is None or v.sha in commits]

    def reachable(self, revisions: Iterable[str]) -> set[str]:
        """Commits reachable from the revisions (one revision, or a range `A..B`)."""
        args = list(revisions)
        if len(args) == 1 and ".." not in args[0]:
            sha = self._tips().get("HEAD") if args[0] == "HEAD" else self._resolve(args[0])
            return self.ancestors(sha) if sha else set()
        out = git.run_git(self.root, "rev-list", *args, "--", check=False)
        if not out:
            for arg in args:
                for end in filter(None, arg.split("..")):
                    self._resolve(end)
        return set(out.split())

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

    def parent_links(self) -> dict[str, list[str]]:
        # One read of the commits table serves both reachability and the scope ids.
        if self._parent_map is None:
            rows = self._db().execute("SELECT id, sha, parents FROM commits").fetchall()
            self._parent_map = {sha: parents.split() for _, sha, parents in rows}
            self._id_map = {sha: id_ for id_, sha, _ in rows}
        return self._parent_map

    def _tips(self) -> dict[str, str]:
        return rows.stored_tips(self._db())

    def _resolve(self, rev: str) -> str:
        sha = git.commit_of(self.root, rev)
        if sha is None:
            raise StateError(f"unknown revision {rev!r}", hint="check `git log --oneline --all`")
        return sha

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

    def blobs_with_decisions(self) -> set[str]:
        """Blob ids of card versions that record decisions."""
        rows = self._db().execute(
            "SELECT k.blob FROM cards k JOIN bodies b ON b.id = k.id"
            " WHERE json_type(b.card, '$.decisions') = 'array'"
        )
        return {row[0] for row in rows}

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

    def known_blobs(self) -> set[str]:
        return {row[0] for row in self._db().execute("SELECT blob FROM cards")}

    def cards_by_blob(self, blobs: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Parsed cards of indexed blobs (unreadable or unknown ones are left out)."""
        db = self._db()
        found: dict[str, dict[str, Any]] = {}
        for blob in blobs:
            row = db.execute(
                "SELECT b.card FROM cards k JOIN bodies b ON b.id = k.id WHERE k.blob = ?", (blob,)
            ).fetchone()
            if row is not None:
                found[blob] = json.loads(row[0])
        return found

    def meta(self, key: str) -> str | None:
        """A derived value cached in the catalog (rebuilt catalogs simply recompute it)."""
        row = self._db().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str, prefix: str) -> None:
        """Cache `value`, replacing older entries whose key starts with `prefix`."""
        with self._write_lock(), self._db() as db:
            db.execute("DELETE FROM meta WHERE key LIKE ? || '%'", (prefix,))
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def sql(self, statement: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return list(self._db().execute(statement, list(params)))

    def executemany(self, statement: str, rows: Iterable[tuple[Any, ...]]) -> None:
        self._db().executemany(statement, rows)

    # -- internals -----------------------------------------------------------------------

    def _ingest(
        self, db: sqlite3.Connection, include: list[str], exclude: list[str]
    ) -> tuple[int, int, int]:
        self._parent_map = None
        generations = rows.generations(db)
        commits = list(history.walk(self.root, include, exclude))
        commit_rows: list[tuple[Any, ...]] = []
        for commit in commits:
            generation = 1 + max((generations.get(p, 0) for p in commit.parents), default=0)
            generations[commit.sha] = generation
            commit_rows.append(
                (
                    commit.sha,
                    generation,
                    " ".join(commit.parents),
                    commit.author,
                    commit.email,
                    commit.authored,
                    commit.committed,
                    commit.subject,
                )
            )
        db.executemany(
            "INSERT INTO commits (sha, generation, parents, author, email, authored, committed,"
            " subject) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            commit_rows,
        )
        changes = [(c, path, blob, status) for c in commits for path, blob, status in c.changes]
        db.executemany("INSERT OR IGNORE INTO paths (path) VALUES (?)", ((c[1],) for c in changes))
        parsed = self._parse_new_blobs(db, {c[2] for c in changes} - {history.NULL_BLOB})
        commit_ids = dict(db.execute("SELECT sha, id FROM commits"))
        path_ids = dict(db.execute("SELECT path, id FROM paths"))
        card_ids = dict(db.execute("SELECT blob, id FROM cards"))
        db.executemany(
            "INSERT OR REPLACE INTO versions VALUES (?, ?, ?, ?, ?, ?)",
            (
                (
                    commit_ids[c.sha],
                    path_ids[path],
                    card_ids.get(blob),
                    status,
                    generations[c.sha],
                    c.committed,
                )
                for c, path, blob, status in changes
            ),
        )
        return len(commit_rows), len(changes), parsed

    def _parse_new_blobs(self, db: sqlite3.Connection, blobs: set[str]) -> int:
        # Blobs are content-addressed: a card already parsed (other branch, rebase) is reused.
        known = {row[0] for row in db.execute("SELECT blob FROM cards")}
        todo = sorted(blobs - known)
        contents = git.read_blobs(self.root, todo)
        for blob in todo:
            row, body = rows.card_row(blob, contents.get(blob))
            cursor = db.execute(
                "INSERT INTO cards (blob, name, model, phase, kind, step, created_at, error, hot)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            if body is not None:
                db.execute("INSERT INTO bodies VALUES (?, ?)", (cursor.lastrowid, body))
        return len(todo)

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            db = self._open_or_none()
            if db is None:
                self.rebuild()
                db = self._open_or_none()
            if db is None:
                raise StateError(f"cannot open the catalog {self.path}", hint="delete it and retry")
            self._connection = db
        return self._connection

    def _open_or_none(self) -> sqlite3.Connection | None:
        """The catalog, or None when missing, corrupted or of another format version."""
        if self._connection is not None:
            return self._connection
        if not self.path.is_file():
            return None
        db: sqlite3.Connection | None = None
        try:
            db = _connect(self.path)
            row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            if row is None or row[0] != FORMAT_VERSION:
                db.close()
                return None
            self._connection = db
            return db
        except sqlite3.DatabaseError:
            if db is not None:
                db.close()
            return None

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path.with_name("catalog.lock"), "w")  # noqa: SIM115
        except OSError as exc:
            raise StateError(
                f"cannot write the catalog in {self.path.parent}: {exc.strerror}",
                hint="check that the .git directory is writable",
            ) from exc
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA synchronous = NORMAL")
    return db
