"""What a publish recorded, read from an Iceberg SQL catalog's own files without pyiceberg.

A complete `catalog publish` rewrites its repository's `repositories` row last,
and that commit's snapshot summary carries the row as JSON (`SUMMARY_KEY`). So
the row a repository last published is found by walking the `repositories`
table's snapshots from the current one back through their parents: every
snapshot on the way was written by a publish (each replaces only its own
repository's row) until one names this repository. Reading it takes the
catalog database's `iceberg_tables` row (SQLite, read-only) and the table's
metadata JSON on the local disk; nothing of pyiceberg, SQLAlchemy or Arrow.

Fail closed: anything unexpected (another kind of catalog or warehouse, a table
missing or lacking a column or property, a snapshot another writer made, a
broken or missing file) answers None, and the caller takes pyiceberg's path.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

SUMMARY_KEY = "dvcckpt.repository"  # snapshot summary: the row a publish wrote, as JSON
_FAILURES = (OSError, sqlite3.Error, ValueError, KeyError, TypeError, AttributeError)
_MAX_WALK = 100_000  # snapshots looked at before giving up (a cycle, a huge history)


def summary_of(row: Mapping[str, Any]) -> dict[str, str]:
    """The snapshot summary properties recording `row` (a `repositories` row)."""
    return {SUMMARY_KEY: json.dumps(dict(row), sort_keys=True, default=str)}


def published_row(
    uri: str,
    warehouse: str,
    catalog_name: str,
    namespace: str,
    tables: Mapping[str, Sequence[tuple[str, str, bool]]],
    properties: Mapping[str, str],
    repo_id: str,
) -> dict[str, Any] | None:
    """The `repositories` row `repo_id`'s last complete publish recorded, when it can be
    told for sure and every table of `tables` exists with all its columns and
    `properties`; else None (not published, or not known without pyiceberg)."""
    if not uri.startswith("sqlite:///") or not warehouse.startswith("file://"):
        return None
    try:
        locations = _locations(Path(uri.removeprefix("sqlite:///")), catalog_name, namespace)
        metadata = {}
        for name, columns in tables.items():
            found = _metadata(locations.get(name))
            if found is None or not _complete(found, columns, properties):
                return None
            metadata[name] = found
        return _recorded(metadata["repositories"], repo_id)
    except _FAILURES:
        return None


def _locations(database: Path, catalog_name: str, namespace: str) -> dict[str, str]:
    if not database.is_file():
        return {}
    address = f"file:{quote(str(database))}?mode=ro"
    with contextlib.closing(sqlite3.connect(address, uri=True, timeout=5)) as db:
        rows = db.execute(
            "SELECT table_name, metadata_location FROM iceberg_tables"
            " WHERE catalog_name = ? AND table_namespace = ?",
            (catalog_name, namespace),
        ).fetchall()
    return {str(name): str(location) for name, location in rows if location}


def _metadata(location: str | None) -> dict[str, Any] | None:
    """A table's metadata JSON (only plain JSON files on the local disk)."""
    if not location or not location.startswith("file://") or not location.endswith(".json"):
        return None
    text = Path(unquote(urlsplit(location).path)).read_text(encoding="utf-8")
    found = json.loads(text)
    return found if isinstance(found, dict) else None


def _complete(
    metadata: Mapping[str, Any],
    columns: Sequence[tuple[str, str, bool]],
    properties: Mapping[str, str],
) -> bool:
    """The table has every column of the list and every property (nothing to evolve)."""
    current = metadata["current-schema-id"]
    schema = next(s for s in metadata["schemas"] if s["schema-id"] == current)
    names = {f["name"] for f in schema["fields"]}
    own = metadata.get("properties") or {}
    return all(name in names for name, _, _ in columns) and all(
        own.get(k) == v for k, v in properties.items()
    )


def _recorded(metadata: Mapping[str, Any], repo_id: str) -> dict[str, Any] | None:
    snapshots = {s["snapshot-id"]: s for s in metadata.get("snapshots") or ()}
    main = (metadata.get("refs") or {}).get("main", {}).get("snapshot-id")
    current = metadata.get("current-snapshot-id")
    if current is None or current == -1 or main not in (None, current):
        return None
    for _ in range(_MAX_WALK):
        snapshot = snapshots.get(current)
        if snapshot is None:  # expired, or the history starts here: not known
            return None
        text = (snapshot.get("summary") or {}).get(SUMMARY_KEY)
        if not isinstance(text, str):  # another writer: what it replaced is not known
            return None
        row = json.loads(text)
        if not isinstance(row, dict):
            return None
        if row.get("repo_id") == repo_id:
            return row
        current = snapshot.get("parent-snapshot-id")
    return None
