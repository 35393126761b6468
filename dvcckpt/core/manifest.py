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
from collections.abc import Iterable


def manifest_text(entries: Iterable[tuple[str, str]]) -> str:
    """The manifest of (relative path, file sha256) pairs, sorted by relative path."""
    ordered = sorted(entries, key=lambda entry: entry[0])
    return "".join(f"{sha256}  {relpath}\n" for relpath, sha256 in ordered)


def manifest_sha256(entries: Iterable[tuple[str, str]]) -> str:
    """The sha256 a card records for a directory with these files."""
    return hashlib.sha256(manifest_text(entries).encode()).hexdigest()
