"""The integrity rule of a directory checkpoint: a `sha256sum` manifest and its digest.

A directory's sha256 on its card is the sha256 of a manifest listing each file
as `<sha256>  <relative path>` (two spaces, POSIX separators), one line per
file, sorted by relative path. The digest is then independent of walk order and
file-system metadata, and `sha256sum -c` can check the files against it.

Registering (`adapters.hashing`) and verifying (`storage.verify`) both build the
manifest here, so a card written by one is always checked by the same rule.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from dvcckpt.errors import UsageError


def manifest_text(entries: Iterable[tuple[str, str]]) -> str:
    """The manifest of (relative path, file sha256) pairs, sorted by relative path.

    A file name with a control character is refused: a newline in it would forge a
    line of the manifest, so two different folders could share one digest.
    """
    ordered = sorted(entries, key=lambda entry: entry[0])
    for relpath, _ in ordered:
        if _has_control(relpath):
            raise UsageError(
                f"{relpath!r}: a file name with a control character (newline, tab, escape) "
                "cannot be part of a directory checkpoint",
                hint="rename the file; control characters make the sha256 manifest ambiguous",
            )
    return "".join(f"{sha256}  {relpath}\n" for relpath, sha256 in ordered)


def manifest_sha256(entries: Iterable[tuple[str, str]]) -> str:
    """The sha256 a card records for a directory with these files."""
    return hashlib.sha256(manifest_text(entries).encode()).hexdigest()


# --- DVC directory listings (`.dir` objects and version-aware `.dvc` files) -------------

MD5_HEX = frozenset("0123456789abcdef")


def is_md5(value: object, directory: bool = False) -> bool:
    """32 lowercase hex digits (a file's md5), plus `.dir` for a directory listing."""
    if not isinstance(value, str):
        return False
    digest = value.removesuffix(".dir") if directory else value
    return len(digest) == 32 and set(digest) <= MD5_HEX


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)


def relpath_problem(relpath: object) -> str | None:
    """Why a file's path inside a directory checkpoint is unsafe or ambiguous, or None.

    A listing comes from a remote or a cache that anyone may have written: a path must
    stay inside the checkpoint (no `..`, no absolute path, no empty component) and
    read the same everywhere (no backslash, no control character: a newline would
    forge a line of the sha256 manifest).
    """
    if not isinstance(relpath, str) or not relpath:
        return "an empty or non-text path"
    if _has_control(relpath):
        return f"{relpath!r} contains a control character"
    if "\\" in relpath:
        return f"{relpath!r} contains a backslash"
    if relpath.startswith("/"):
        return f"{relpath!r} is an absolute path"
    if any(part in ("", ".", "..") for part in relpath.split("/")):
        return f"{relpath!r} has an empty, '.' or '..' component"
    return None


def listing_problem(entries: list[tuple[str, str]]) -> str | None:
    """Why a directory listing of (relpath, md5) cannot be checked out safely, or None."""
    if not entries:
        return "it lists no file"
    seen: set[str] = set()
    for relpath, md5 in entries:
        problem = relpath_problem(relpath)
        if problem is None and not is_md5(md5):
            problem = f"{relpath!r} has md5 {md5!r}, not 32 lowercase hex digits"
        if problem is None and relpath in seen:
            problem = f"{relpath!r} is listed twice"
        if problem:
            return problem
        seen.add(relpath)
    # A file that is also a folder of another ("a" and "a/b") cannot both be written.
    for relpath in seen:
        parts = relpath.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in seen:
                return f"{relpath!r} lies inside {'/'.join(parts[:depth])!r}, which is a file"
    return None


def dvc_tree_bytes(entries: Iterable[tuple[str, str]]) -> bytes:
    """The `.dir` object DVC writes for a directory with these (relpath, md5) files."""
    listing = [{"md5": md5, "relpath": rel} for rel, md5 in sorted(entries, key=lambda e: e[0])]
    return json.dumps(listing, sort_keys=True).encode()


def dvc_tree_md5(entries: Iterable[tuple[str, str]]) -> str:
    """The `.dir` md5 DVC gives a directory with these (relpath, md5) files.

    DVC hashes its JSON listing sorted by path; a version-aware `.dvc` file lists the
    files instead of this md5, which is recomputed here so it can always be compared.
    """
    return hashlib.md5(dvc_tree_bytes(entries), usedforsecurity=False).hexdigest() + ".dir"
