"""Content hashes recorded on cards (sha256; DVC itself only keeps md5).

A directory checkpoint is hashed through a manifest in `sha256sum` format over
its sorted relative paths, so the digest is independent of walk order and
file-system metadata, and anyone can recompute it with standard tools.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from dvcckpt.errors import UsageError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ContentDigest:
    sha256: str
    size: int
    files: int
    names: list[str] | None = None  # relative paths, for directories


def sha256_file(path: Path) -> str:
    # hashlib releases the GIL on large buffers, so this overlaps with DVC's work.
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_digest(path: Path, workers: int = 2) -> ContentDigest:
    """sha256, total size and file count of a checkpoint file or directory."""
    if path.is_symlink():
        raise UsageError(
            f"{path} is a symbolic link", hint="register the file or directory it points to"
        )
    if path.is_file():
        return ContentDigest(sha256_file(path), path.stat().st_size, 1)
    files = _tree_files(path)
    if not files:
        raise UsageError(f"{path} is an empty directory", hint="save the checkpoint files first")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        digests = list(pool.map(sha256_file, (path / rel for rel in files)))
    manifest = "".join(f"{d}  {rel}\n" for d, rel in zip(digests, files, strict=True))
    size = sum((path / rel).stat().st_size for rel in files)
    return ContentDigest(sha256_bytes(manifest.encode()), size, len(files), files)


def _tree_files(root: Path) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            full = Path(dirpath, name)
            if full.is_symlink():
                raise UsageError(
                    f"{full} is a symbolic link inside a directory checkpoint",
                    hint="replace it with the file it points to",
                )
            found.append(full.relative_to(root).as_posix())
    return sorted(found)
