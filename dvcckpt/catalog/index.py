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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dvcckpt.adapters import git, yamldoc
from dvcckpt.adapters import gitlog as history
from dvcckpt.errors import CardError, StateError

FORMAT_VERSION = "2"
# Integer keys keep joins and the latest-version window cheap; the full card sits in
# `bodies` and a slim copy of the queried sections in `cards.hot`, so a filter over
# tens of thousands of cards reads a fraction of the bytes.
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE commits (
    id INTEGER PRIMARY KEY, sha TEXT NOT NULL UNIQUE, generation INTEGER NOT NULL,
    parents TEXT NOT NULL, author TEXT, email TEXT, authored INTEGER, committed INTEGER,
    subject TEXT);
CREATE TABLE paths (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE);
CREATE TABLE cards (
    id INTEGER PRIMARY KEY, blob TEXT NOT NULL UNIQUE, name TEXT, model TEXT, phase TEXT,
    kind TEXT, step INTEGER, created_at TEXT, error TEXT, hot TEXT);
CREATE TABLE bodies (id INTEGER PRIMARY KEY, card TEXT NOT NULL);
CREATE TABLE versions (
    commit_id INTEGER NOT NULL, path_id INTEGER NOT NULL, card_id INTEGER,
    status TEXT NOT NULL, generation INTEGER NOT NULL, committed INTEGER NOT NULL,
    PRIMARY KEY (commit_id, path_id));
CREATE INDEX versions_path ON versions (path_id, generation);
CREATE INDEX versions_card ON versions (card_id);
CREATE INDEX cards_model ON cards (model);
CREATE INDEX cards_name ON cards (name);
"""
# Sections copied into `cards.hot` (checkpoint: only its small descriptive fields).
HOT_SECTIONS = ("name", "model", "run", "metrics", "resources", "tags", "seeds", "checkpoint")
HOT_CHECKPOINT = ("format", "serialization", "kind", "phase", "step", "epoch", "size", "created_at")
# One row per card version, in commit-graph order.
VERSION_ROWS = """
SELECT c.sha, v.generation, c.author, c.email, c.authored, v.committed, c.subject,
       p.path, coalesce(k.blob, '0000000000000000000000000000000000000000') AS blob, v.status,
       k.name, k.model, k.phase, k.step, k.created_at, b.card
FROM versions v JOIN commits c ON c.id = v.commit_id JOIN paths p ON p.id = v.path_id
LEFT JOIN cards k ON k.id = v.card_id LEFT JOIN bodies b ON b.id = v.card_id
"""
ORDER = "ORDER BY v.generation, v.committed, c.sha"


@dataclass(frozen=True)
class Stats:
    commits_added: int
    commits_removed: int
    versions_added: int
    cards_parsed: int
    seconds: float
    rebuilt: bool

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass(frozen=True)
class Version:
    """One card version: the card as committed at `sha`."""

    sha: str
    generation: int
    author: str
    email: str
    authored: int
    committed: int
    subject: str
    path: str
    blob: str
    status: str
    name: str | None
    model: str | None
    phase: str | None
    step: int | None
    created_at: str | None
    card_json: str | None
    values: tuple[Any, ...] = ()  # extra columns a query asked for

    @property
    def card(self) -> dict[str, Any] | None:
        """The card (decoded on first use: listings rarely need all of it)."""
        if self.card_json is None:
            return None
        cached = self.__dict__.get("_card")
        if cached is None:
            cached = json.loads(self.card_json)
            object.__setattr__(self, "_card", cached)
        return cached  # type: ignore[no-any-return]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Version:
        return cls(
            sha=row["sha"],
            generation=row["generation"],
            author=row["author"],
            email=row["email"],
            authored=row["authored"],
            committed=row["committed"],
            subject=row["subject"],
            path=row["path"],
            blob=row["blob"],
            status=row["status"],
            name=row["name"],
            model=row["model"],
            phase=row["phase"],
            step=row["step"],
            created_at=row["created_at"],
            card_json=row["card"],
            values=tuple(row[k] for k in row.keys() if k.startswith("x_")),  # noqa: SIM118 (sqlite3.Row)
        )


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
            db.executescript(_SCHEMA)
            db.execute("INSERT INTO meta VALUES ('format', ?)", (FORMAT_VERSION,))
            tips = history.tips(self.root)
            added, versions, parsed = self._ingest(db, sorted(set(tips.values())), [])
            _set_tips(db, tips)
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
            stored = _stored_tips(db)
            tips = history.tips(self.root)
            if stored == tips:
                return Stats(0, 0, 0, 0, time.perf_counter() - start, False)
            old = sorted(set(stored.values()))
            if git.existing_objects(self.root, old) != set(old):
                return self._rebuild_locked()  # an old tip was garbage-collected: start over
            new = sorted(set(tips.values()))
            gone = history.rev_list(self.root, old, new)
            with db:
                _delete_commits(db, gone)
                added, versions, parsed = self._ingest(db, new, old)
                _set_tips(db, tips)
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
            "refs": len(_stored_tips(db)),
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
        return _stored_tips(self._db())

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
        return matches[-1]

    def sql(self, statement: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return list(self._db().execute(statement, list(params)))

    def executemany(self, statement: str, rows: Iterable[tuple[Any, ...]]) -> None:
        self._db().executemany(statement, rows)

    # -- internals -----------------------------------------------------------------------

    def _ingest(
        self, db: sqlite3.Connection, include: list[str], exclude: list[str]
    ) -> tuple[int, int, int]:
        self._parent_map = None
        generations = _generations(db)
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
            row, body = _card_row(blob, contents.get(blob))
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


def _card_row(blob: str, content: bytes | None) -> tuple[tuple[Any, ...], str | None]:
    """The `cards` row for a blob, and the full card JSON (None if unreadable)."""
    try:
        if content is None:
            raise CardError("blob missing from the repository", hint="run `git fsck`")
        card = yamldoc.load_fast(content.decode("utf-8", "replace"), blob)
        if not isinstance(card, dict):
            raise CardError("not a mapping", hint="see `dvcckpt schema`")
    except CardError as exc:
        return (blob, None, None, None, None, None, None, exc.message, None), None
    meta: dict[str, Any] = card["checkpoint"] if isinstance(card.get("checkpoint"), dict) else {}
    step = meta.get("step")
    hot = {key: card[key] for key in HOT_SECTIONS if key in card}
    hot["checkpoint"] = {key: meta[key] for key in HOT_CHECKPOINT if key in meta}
    row = (
        blob,
        _text(card.get("name")),
        _text(card.get("model")),
        _text(meta.get("phase")),
        _text(meta.get("kind")),
        step if isinstance(step, int) else None,
        _text(meta.get("created_at")),
        None,
        _json(hot),
    )
    return row, _json(card)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _generations(db: sqlite3.Connection) -> dict[str, int]:
    return {
        sha: generation for sha, generation in db.execute("SELECT sha, generation FROM commits")
    }


def _stored_tips(db: sqlite3.Connection) -> dict[str, str]:
    row = db.execute("SELECT value FROM meta WHERE key = 'tips'").fetchone()
    stored: dict[str, str] = json.loads(row[0]) if row else {}
    return stored


def _set_tips(db: sqlite3.Connection, tips: dict[str, str]) -> None:
    db.execute(
        "INSERT OR REPLACE INTO meta VALUES ('tips', ?)", (json.dumps(tips, sort_keys=True),)
    )


def _delete_commits(db: sqlite3.Connection, shas: list[str]) -> None:
    db.executemany(
        "DELETE FROM versions WHERE commit_id = (SELECT id FROM commits WHERE sha = ?)",
        ((s,) for s in shas),
    )
    db.executemany("DELETE FROM commits WHERE sha = ?", ((s,) for s in shas))
