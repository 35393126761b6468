"""What the catalog stores: its SQLite schema, and the rows made from commits and cards.

Integer keys keep joins and the latest-version window cheap; the full card sits
in `bodies` and a slim copy of the queried sections in `cards.hot`, so a filter
over tens of thousands of cards reads a fraction of the bytes.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from dvcckpt.catalog import latest, numbers
from dvcckpt.core.fields import is_estimate, number
from dvcckpt.errors import CardError

_INT64 = (-(1 << 63), (1 << 63) - 1)

# 3: cards that cannot be stored are index errors (the `index_errors` view).
# 4: the maintained HEAD and latest-version scopes (`catalog.latest`); `hot` holds
#    each split's latest evaluation.
# 5: a split's latest evaluation is the last one listed, not the latest `at`.
# 6: every number of metrics and latest evaluations indexed (`catalog.numbers`).
# 7: each version carries its card's model and run (`catalog.newest`: `log MODEL`
#    reads the newest rows and each run's previous row through an index).
FORMAT_VERSION = "7"
SCHEMA = (
    """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE commits (
    id INTEGER PRIMARY KEY, sha TEXT NOT NULL UNIQUE, generation INTEGER NOT NULL,
    parents TEXT NOT NULL, author TEXT, email TEXT, authored INTEGER, committed INTEGER,
    subject TEXT);
CREATE TABLE paths (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE);
CREATE TABLE cards (
    id INTEGER PRIMARY KEY, blob TEXT NOT NULL UNIQUE, name TEXT, model TEXT, phase TEXT,
    kind TEXT, step INTEGER, created_at TEXT, error TEXT, hot TEXT, run_name TEXT, run_id TEXT);
CREATE TABLE bodies (id INTEGER PRIMARY KEY, card TEXT NOT NULL);
CREATE TABLE versions (
    commit_id INTEGER NOT NULL, path_id INTEGER NOT NULL, card_id INTEGER,
    status TEXT NOT NULL, generation INTEGER NOT NULL, committed INTEGER NOT NULL,
    model TEXT, run_name TEXT, run_id TEXT,
    PRIMARY KEY (commit_id, path_id));
CREATE INDEX versions_path ON versions (path_id, generation);
CREATE INDEX versions_model ON versions (model, generation, committed);
CREATE INDEX versions_run ON versions (model, run_id, run_name, generation, committed);
CREATE INDEX versions_card ON versions (card_id);
CREATE INDEX cards_model ON cards (model);
CREATE INDEX cards_name ON cards (name);
CREATE VIEW index_errors AS
    SELECT c.sha AS commit_sha, p.path, k.blob, k.error AS message, v.generation
    FROM versions v JOIN cards k ON k.id = v.card_id JOIN commits c ON c.id = v.commit_id
    JOIN paths p ON p.id = v.path_id WHERE k.error IS NOT NULL;
"""
    + latest.SCHEMA
    + numbers.SCHEMA
)
# What `catalog status` counts: name -> table (or a filtered table).
COUNTED = {"commits": "commits", "versions": "versions", "cards": "cards",
           "unreadable_cards": "cards WHERE error IS NOT NULL"}  # fmt: skip
PROBLEM_ROWS = "SELECT commit_sha, path, blob, message FROM index_errors ORDER BY generation, path"
# Sections copied into `cards.hot` (checkpoint: only its small descriptive fields; and
# `evaluations` as {split: metrics of its latest evaluation}, see `latest_evaluations`).
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
class Problem:
    """A card version the catalog could not index: where, and why."""

    commit: str
    path: str
    blob: str
    message: str

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
    values: tuple[Any, ...] = ()  # extra columns a query asked for, as decoded JSON

    @property
    def card(self) -> dict[str, Any] | None:
        """The card: decoded when the row was read (so a damaged file shows up inside the
        query that read it, where the catalog heals itself), else on first use."""
        if "_card" not in self.__dict__ and self.card_json is not None:
            object.__setattr__(self, "_card", decode(self.card_json))
        return self.__dict__.get("_card")

    @classmethod
    def listed(cls, row: tuple[Any, ...], *, decoded: bool = True) -> Version:
        """A row of one JSON array of extra columns, then `VERSION_ROWS`'s columns (any
        after them are ignored), read by position: `find` builds tens of thousands of
        these per listing."""
        values = tuple(json.loads(row[0])) if row[0] else ()
        # The 16 fields before `values`, in order (mypy cannot count a slice).
        version = cls(*row[1:17], values=values)  # type: ignore[misc]
        if decoded:
            version.card  # noqa: B018 (decodes now)
        return version

    @classmethod
    def from_row(cls, row: sqlite3.Row, *, decoded: bool = True) -> Version:
        version = cls(
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
            values=tuple(_column(row[k]) for k in row.keys() if k.startswith("x_")),  # noqa: SIM118 (sqlite3.Row)
        )
        if decoded:
            version.card  # noqa: B018 (decodes now)
        return version


Interval = tuple[float, float]
# What Δ compares within: model, run id, run name (and an evaluation's split).
Run = tuple[str | None, str | None, str | None, str | None]


@dataclass
class Row:
    """One row of `log`: a card version, or (`evaluations=True`) one evaluation."""

    commit: str
    date: str
    author: str
    name: str
    run: str | None
    step: int | None
    path: str
    values: dict[str, float | None]  # point values (of an estimate: its `value`)
    deltas: dict[str, float | None] = field(default_factory=dict)
    intervals: dict[str, Interval | None] = field(default_factory=dict)
    run_id: str | None = None
    split: str | None = None  # an evaluation's split (`evaluations=True`)
    evaluated_at: str | None = None  # an evaluation's `at`, as the card has it
    by: str | None = None  # who ran the evaluation, when the card says

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def point_and_interval(value: Any) -> tuple[float | None, Interval | None]:
    """A metric's point value, and its interval when it is an estimate with one."""
    interval = None
    if is_estimate(value):
        ci = value.get("ci")
        if isinstance(ci, list) and len(ci) == 2:
            low, high = number(ci[0]), number(ci[1])
            interval = (low, high) if low is not None and high is not None else None
    return number(value), interval


def date_of(timestamp: int) -> str:
    try:
        return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, ValueError, OSError):  # beyond year 9999 (a forged or absurd date)
        return f"@{timestamp}"


class Damaged(sqlite3.DatabaseError):
    """Catalog content that cannot be what the catalog wrote: the file is damaged."""

    sqlite_errorname = "SQLITE_CORRUPT"


def decode(text: str) -> dict[str, Any]:
    """A stored card (written as a JSON object, so anything else means damage)."""
    try:
        card = json.loads(text)
    except ValueError:
        card = None
    if not isinstance(card, dict):
        raise Damaged("a stored card is not valid JSON")
    return card


def _column(text: str | None) -> Any:
    """An extra column (JSON text from `->`, or NULL for an absent field) decoded."""
    return None if text is None else json.loads(text)


def card_row(
    blob: str, content: bytes | None
) -> tuple[tuple[Any, ...], str | None, dict[str, Any]]:
    """The `cards` row for a blob, the full card JSON (None if it cannot be indexed)
    and the hot sections (for `catalog.numbers`)."""
    try:
        card, body, hot_json, hot = _document(blob, content)
    except CardError as exc:
        return error_row(blob, _without_source(exc.message, blob)), None, {}
    except Exception as exc:  # untrusted history: record why, index the rest
        return error_row(blob, f"cannot index: {type(exc).__name__}: {exc}"[:2000]), None, {}
    meta: dict[str, Any] = card["checkpoint"] if isinstance(card.get("checkpoint"), dict) else {}
    run: dict[str, Any] = card["run"] if isinstance(card.get("run"), dict) else {}
    step = meta.get("step")
    fits = isinstance(step, int) and not isinstance(step, bool) and _INT64[0] <= step <= _INT64[1]
    row = (
        blob,
        _text(card.get("name")),
        _text(card.get("model")),
        _text(meta.get("phase")),
        _text(meta.get("kind")),
        step if fits else None,
        _text(meta.get("created_at")),
        None,
        hot_json,
        _text(run.get("name")),
        _text(run.get("id")),
    )
    return row, body, hot


def read_card(blob: str, content: bytes | None) -> dict[str, Any] | None:
    """A card blob as the catalog reads it, or None when it cannot be indexed."""
    try:
        return _document(blob, content)[0]
    except Exception:  # the same failures `card_row` records as index errors
        return None


def _document(blob: str, content: bytes | None) -> tuple[dict[str, Any], str, str, dict[str, Any]]:
    """The card, its JSON, the JSON of its hot sections and those sections; CardError
    if not indexable."""
    from dvcckpt.adapters import yamldoc  # only when indexing: queries never parse YAML
    from dvcckpt.core.limits import HARD_MAX_BYTES

    if content is None:
        raise CardError("blob missing from the repository", hint="run `git fsck`")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise CardError("not UTF-8 text", hint="save the card as UTF-8") from None
    card = yamldoc.load_fast(text, blob, HARD_MAX_BYTES)
    if not isinstance(card, dict):
        raise CardError(f"not a mapping (a {type(card).__name__})", hint="see `dvcckpt schema`")
    meta = card["checkpoint"] if isinstance(card.get("checkpoint"), dict) else {}
    hot = {key: card[key] for key in HOT_SECTIONS if key in card}
    hot["checkpoint"] = {key: meta[key] for key in HOT_CHECKPOINT if key in meta}
    if evaluated := latest_evaluations(card.get("evaluations")):
        hot["evaluations"] = evaluated
    try:  # SQLite's JSON has no NaN or infinity, and stores UTF-8 only
        body, hot_json = _strict_json(card), _strict_json(hot)
        body.encode("utf-8")
    except ValueError as exc:
        raise CardError(f"holds a value the catalog cannot store: {exc}", hint="") from None
    return card, body, hot_json, hot


def latest_evaluations(entries: Any) -> dict[str, Any]:
    """{split: metrics} of the latest evaluation of each split: the last one listed.

    Position, not the `at` an entry claims: the list only grows (the hook refuses any
    other change), so the last entry is the one recorded last, while a forged `at`
    (year 9999) would otherwise hide every later evaluation for ever."""
    chosen: dict[str, Any] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("split"), str):
            chosen[entry["split"]] = entry.get("metrics")
    return chosen


def _without_source(message: str, blob: str) -> str:
    """`BLOB: why` -> `why`, `BLOB:12: why` -> `line 12: why` (the row names the blob)."""
    rest = message.removeprefix(blob)
    if rest is message or not rest.startswith(":"):
        return message
    return rest[2:] if rest.startswith(": ") else f"line {rest[1:]}"


def error_row(blob: str, message: str) -> tuple[Any, ...]:
    return (blob, None, None, None, None, None, None, message, None, None, None)


def as_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _strict_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def meta(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return str(row[0]) if row else None


def set_meta(db: sqlite3.Connection, key: str, value: str) -> None:
    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


def stored_tips(db: sqlite3.Connection) -> dict[str, str]:
    row = db.execute("SELECT value FROM meta WHERE key = 'tips'").fetchone()
    try:
        stored = json.loads(row[0]) if row else {}
    except (TypeError, ValueError):
        stored = None
    if not isinstance(stored, dict):
        raise Damaged("the stored refs are not valid JSON")
    return stored


def set_tips(db: sqlite3.Connection, tips: dict[str, str]) -> None:
    db.execute(
        "INSERT OR REPLACE INTO meta VALUES ('tips', ?)", (json.dumps(tips, sort_keys=True),)
    )


def delete_commits(db: sqlite3.Connection, shas: list[str]) -> None:
    for table, column in (("versions", "commit_id"), ("head_commits", "id")):
        db.executemany(
            f"DELETE FROM {table} WHERE {column} = (SELECT id FROM commits WHERE sha = ?)",
            ((s,) for s in shas),
        )
    db.executemany("DELETE FROM commits WHERE sha = ?", ((s,) for s in shas))
