"""How a checkpoint's files are serialized, read from their first bytes, not their names.

A pickle can run code when it is loaded; a `.bin` or `.safetensors` name says
nothing about the bytes inside. Each file's format is decided by its content where
a header tells (safetensors' length-prefixed JSON header, a pickle's protocol
byte, a zip archive holding a `.pkl` member as `torch.save` writes, NumPy, GGUF,
HDF5) and by its suffix only when the content is not recognised, so an unknown
`.pt` still counts as a pickle (fail closed). Only the first bytes and, for a zip,
its central directory are read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dvcckpt.core import migrations

_HEAD = 16
# safetensors: an 8-byte little-endian header length, then the JSON header itself.
_SAFETENSORS_MAX_HEADER = 100 << 20  # the format's own limit
_PICKLE_PROTOCOLS = range(2, 6)  # 0x80 then the protocol byte
# The most file entries a card lists (pickles first); the summary covers every file.
MAX_LISTED = 200


def sniff(path: Path) -> str | None:
    """The format the bytes of `path` show, or None when no header tells."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD)
            if _is_safetensors(handle, head):
                return "safetensors"
    except OSError:
        return None
    if head[:1] == b"\x80" and len(head) > 1 and head[1] in _PICKLE_PROTOCOLS:
        return "pickle"
    if head.startswith(b"PK\x03\x04"):
        return _zip_format(path)
    return _by_magic(head)


def _is_safetensors(handle: Any, head: bytes) -> bool:
    if len(head) < 9:
        return False
    length = int.from_bytes(head[:8], "little")
    if not 2 <= length <= _SAFETENSORS_MAX_HEADER or head[8:9] != b"{":
        return False
    handle.seek(8)
    try:
        header = json.loads(handle.read(min(length, 1 << 20)).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return length > 1 << 20  # a header too long to read cheaply, that starts like one
    return isinstance(header, dict)


def _zip_format(path: Path) -> str | None:
    """A zip holding a pickle (torch.save, many `.ckpt`s) is a pickle; `.npy` members: npz."""
    import zipfile  # only for a zip archive: off the start-up path of `add`

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    if any(name.endswith((".pkl", ".pickle")) for name in names):
        return "pickle"
    if names and all(name.endswith(".npy") for name in names):
        return "npz"
    if "config.json" in names and any(name.endswith(".h5") for name in names):
        return "keras"
    return None


def _by_magic(head: bytes) -> str | None:
    if head.startswith(b"\x93NUMPY"):
        return "npz"
    if head.startswith(b"GGUF"):
        return "gguf"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "keras"
    return None


def format_of(path: Path, name: str) -> str:
    """The content's format when a header tells, else the one `name`'s suffix implies."""
    return sniff(path) or migrations.format_of(name)


def describe(path: Path, names: list[str] | None = None) -> dict[str, Any]:
    """`serialization` for the card's checkpoint section, and for a directory its files.

    A folder whose files use several formats (weights in safetensors, optimizer
    state and training arguments pickled) is `mixed`; `serialization_files` lists
    each file that holds data (pickles first, at most MAX_LISTED), pickles marked
    unsafe to load from an untrusted source.
    """
    if names is None:
        return {"serialization": migrations.summary([format_of(path, path.name)])}
    formats = {name: format_of(path / name, name) for name in names}
    found = sorted(
        ((name, fmt) for name, fmt in formats.items() if fmt != "other"),
        key=lambda item: (item[1] != "pickle", item[0]),
    )
    section: dict[str, Any] = {"serialization": migrations.summary(list(formats.values()))}
    if found:
        section["serialization_files"] = [
            {"path": name, "serialization": fmt, **({"unsafe": True} if fmt == "pickle" else {})}
            for name, fmt in found[:MAX_LISTED]
        ]
    return section


def pickles(path: Path, names: list[str] | None = None) -> list[str]:
    """The files under `path` (or `path` itself) whose bytes are, or may be, pickles."""
    if names is None:
        return [path.name] if format_of(path, path.name) == "pickle" else []
    return [name for name in names if format_of(path / name, name) == "pickle"]
