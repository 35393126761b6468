"""Checkpoint cards: the YAML metadata file committed beside each checkpoint.

Reading keeps comments and key order (ruamel round-trip) so tools that append
evaluations or decisions leave a human's edits alone; writing is canonical and
atomic, and only valid cards are ever written.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dvcckpt.adapters import atomic, yamldoc
from dvcckpt.core import schema
from dvcckpt.core.fields import SECTIONS
from dvcckpt.core.limits import DEFAULT_MAX_BYTES
from dvcckpt.errors import CardError, StateError

HEADER = f"# yaml-language-server: $schema={schema.SCHEMA_URL}"


@dataclass
class Card:
    """A validated card; `document` is the round-trip mapping, `data` its plain copy."""

    path: Path | None
    document: Any

    @property
    def data(self) -> dict[str, Any]:
        plain: dict[str, Any] = yamldoc.to_plain(self.document)
        return plain

    @property
    def name(self) -> str:
        return str(self.document["name"])

    @property
    def model(self) -> str:
        return str(self.document["model"])


def read(
    path: Path,
    max_bytes: int = DEFAULT_MAX_BYTES,
    editable: bool = False,
    full_validation: bool = True,
) -> Card:
    """A validated card; `editable` keeps comments and order for writing it back.

    Storage commands pass `full_validation=False`: they rely only on the path and
    hashes, checked here, and skip the JSON Schema pass that would compete with
    hashing for the CPU (the hook validated the whole card when it was committed).
    """
    if not path.is_file():
        raise StateError(f"{path}: no such card", hint="check the path, or use the checkpoint name")
    if editable:
        return _validated(yamldoc.read_file(path, max_bytes), str(path), path)
    document = yamldoc.load_fast(yamldoc.read_text(path, max_bytes), str(path), max_bytes)
    if not full_validation:
        return _with_essentials(document, str(path), path)
    return _validated(document, str(path), path)


_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _with_essentials(document: Any, source: str, path: Path | None) -> Card:
    """The fields storage relies on: name, a safe relative path, the sha256 and the format."""
    if not isinstance(document, Mapping):
        raise CardError(f"{source}: a card must be a YAML mapping", hint="see `dvcckpt schema`")
    schema.check_card_version(document, source)
    meta = document.get("checkpoint")
    meta = meta if isinstance(meta, Mapping) else {}
    where = meta.get("path")
    problems = []
    if not isinstance(document.get("name"), str):
        problems.append("name: missing")
    if (
        not isinstance(where, str)
        or where.startswith("/")
        or "\\" in where
        or ".." in where.split("/")
    ):
        problems.append(f"checkpoint.path: {where!r} must be a relative path without `..`")
    if not isinstance(meta.get("sha256"), str) or not _HEX64.match(meta["sha256"]):
        problems.append("checkpoint.sha256: must be 64 hex digits")
    if meta.get("format") not in ("file", "directory"):
        problems.append("checkpoint.format: must be file or directory")
    if problems:
        raise CardError(
            f"{source}: {problems[0]}",
            hint="run `dvcckpt check` on the card",
            problems=[f"{source}: {p}" for p in problems],
        )
    return Card(path=path, document=document)


def _validated(document: Any, source: str, path: Path | None) -> Card:
    if not isinstance(document, Mapping):
        raise CardError(
            f"{source}: a card must be a YAML mapping", hint="see `dvcckpt schema` for its fields"
        )
    plain = yamldoc.to_plain(document)
    schema.validate_card(plain, source)
    return Card(path=path, document=document)


def render(path: Path, document: Any) -> bytes:
    """Validate, then the canonical YAML of a card (comments kept when round-tripped)."""
    schema.validate_card(yamldoc.to_plain(document), str(path))
    return yamldoc.dump(document, header=HEADER).encode("utf-8")


def write(path: Path, document: Any) -> Card:
    """Validate, then atomically write canonical YAML (comments kept when round-tripped)."""
    atomic.write_bytes(path, render(path, document))
    return Card(path=path, document=document)


def write_staged(root: Path, path: Path, document: Any, removed: tuple[Path, ...] = ()) -> Card:
    """Write a card and stage it (deleting `removed` files too) as one change: if the
    index cannot be updated (a stale `index.lock`), nothing is written."""
    text = render(path, document)
    with atomic.repo_lock(root):
        # The card last: a re-run after a kill sees it unchanged and completes the change.
        atomic.commit(root, {**dict.fromkeys(removed), path: text})
    return Card(path=path, document=document)


@contextlib.contextmanager
def editing(root: Path, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[Card]:
    """The card at `path` read for editing (comments kept), then validated, written and
    staged as one change when the block ends; nothing is written if the block raises.

    The writer lock is held from the read to the write, so two commands appending to
    the same card never lose one another's entry.
    """
    with atomic.repo_lock(root):
        editable = read(path, max_bytes, editable=True)
        yield editable
        atomic.commit(root, {path: render(path, editable.document)})


def append_entry(document: Any, section: str, entry: Mapping[str, Any]) -> int:
    """Append `entry` to the list `section` of a round-trip card; returns its index.

    A missing list is inserted at its canonical place (before the first later section),
    so the lines already there stay as they were.
    """
    existing = document.get(section)
    if existing is not None:
        existing.append(dict(entry))
        return len(existing) - 1
    if not hasattr(document, "insert"):  # plain data: key order is the writer's
        document[section] = [dict(entry)]
        return 0
    later = SECTIONS[SECTIONS.index(section) + 1 :]
    keys = list(document)
    position = next((i for i, key in enumerate(keys) if key in later), len(keys))
    document.insert(position, section, [dict(entry)])
    return 0
