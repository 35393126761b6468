"""Schema evolution: upgrade cards written under an older card schema version.

Each step upgrades one minor version in place and works on round-trip
documents (comments kept) as well as plain dicts. The hook compares a card
with its committed version *after* migrating the committed one, so running
`dvcckpt migrate` never looks like tampering.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from pathlib import PurePosixPath
from typing import Any

from dvcckpt.core import schema

_PICKLE_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".joblib"}
_SUFFIXES = {".safetensors": "safetensors", ".npz": "npz", ".npy": "npz", ".onnx": "onnx",
             ".gguf": "gguf", ".h5": "keras", ".keras": "keras"}  # fmt: skip


def serialization_of(path: str, files: list[str] | None = None) -> str:
    """Serialization format from file names (for a directory, from its files).

    Names only: `adapters.serialization` decides by content where it can read the files.
    """
    return summary([format_of(name) for name in (files if files else [path])])


def summary(formats: list[str]) -> str:
    """One word for a checkpoint's formats: the one its data files share, else `mixed`.

    Files of no weight format (configs, tokenizers: `other`) do not count; a folder
    with safetensors weights beside a pickled optimizer is `mixed`, never `safetensors`.
    """
    found = {fmt for fmt in formats if fmt != "other"}
    if len(found) > 1:
        return "mixed"
    return found.pop() if found else "other"


def format_of(name: str) -> str:
    """The format a file name's suffix implies (`other` when it implies none)."""
    suffix = PurePosixPath(name).suffix.lower()
    return "pickle" if suffix in _PICKLE_SUFFIXES else _SUFFIXES.get(suffix, "other")


def _to_1_1(card: MutableMapping[str, Any]) -> None:
    """1.0 -> 1.1: `checkpoint.serialization`, inferred from the checkpoint path."""
    meta = card["checkpoint"]
    if "serialization" not in meta:
        value = "other" if meta.get("format") == "directory" else serialization_of(meta["path"])
        _insert_after(meta, "format", "serialization", value)


MIGRATIONS: dict[str, Callable[[MutableMapping[str, Any]], None]] = {"1.0": _to_1_1}


def version_of(card: MutableMapping[str, Any]) -> str:
    return str(card["schema"]["version"])


def needs_migration(card: MutableMapping[str, Any]) -> bool:
    return version_of(card) != schema.card_version_string()


def migrate(card: MutableMapping[str, Any]) -> list[str]:
    """Upgrade `card` in place to the current version; returns the steps applied."""
    steps = []
    while (version := version_of(card)) in MIGRATIONS:
        MIGRATIONS[version](card)
        major, minor = version.split(".")
        card["schema"]["version"] = f"{major}.{int(minor) + 1}"
        steps.append(f"{version} -> {card['schema']['version']}")
    return steps


def _insert_after(mapping: MutableMapping[str, Any], anchor: str, key: str, value: Any) -> None:
    keys = list(mapping)
    position = keys.index(anchor) + 1 if anchor in keys else len(keys)
    if hasattr(mapping, "insert"):  # ruamel round-trip mapping keeps comments in place
        mapping.insert(position, key, value)
        return
    tail = {k: mapping.pop(k) for k in keys[position:]}
    mapping[key] = value
    mapping.update(tail)
