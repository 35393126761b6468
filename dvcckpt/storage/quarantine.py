"""Quarantine: bad copies are moved aside for inspection, never deleted.

Folders are timestamped and live in the DVC directory (`.dvc/tmp/...`), never in
the work tree, so a quarantined file is neither committed nor mistaken for data.
"""

from __future__ import annotations

import shutil
import time
from contextlib import suppress
from pathlib import Path

from dvcckpt.adapters import dvcfiles, hashing
from dvcckpt.errors import StateError
from dvcckpt.project import Project
from dvcckpt.storage.copies import shown
from dvcckpt.storage.select import Checkpoint

QUARANTINE = Path("tmp") / "dvcckpt-quarantine"  # inside the DVC directory, never the work tree


def quarantine_folder(near: Path) -> Path:
    """A fresh, timestamped folder in the DVC directory of `near` (else beside it)."""
    try:
        base = Project.discover(near.parent).dvc_root / ".dvc" / QUARANTINE
    except StateError:
        base = near.parent / ".dvcckpt-quarantine"
    return fresh_folder(base)


def project_folder(project: Project) -> Path:
    """A fresh quarantine folder of this project."""
    return fresh_folder(project.dvc_root / ".dvc" / QUARANTINE)


def fresh_folder(base: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder, suffix = base / stamp, 1
    while folder.exists():
        suffix += 1
        folder = base / f"{stamp}-{suffix}"
    return folder


def move(source: Path, folder: Path, relative: str) -> Path:
    target = folder / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), str(target))
    return target


def quarantine_checkpoint(
    project: Project, ckpt: Checkpoint, folder: Path
) -> tuple[list[str], list[str]]:
    """Move the bad work-tree copy and every cache object whose md5 is wrong.

    Returns what was moved, and the bad objects' paths inside the cache
    (`files/md5/..`), which are also their paths on a content-addressed remote.
    """
    moved, bad_objects = [], []
    workspace = project.inside(ckpt.path)
    if workspace.exists():
        moved.append(shown(project, move(workspace, folder, ckpt.path)))
    cache = dvcfiles.cache_dir(project.dvc_root)
    for md5, obj in _cache_objects(cache, ckpt.md5):
        if obj.is_file() and hashing.hash_file(obj, "md5") != md5.removesuffix(".dir"):
            relative = obj.relative_to(cache).as_posix()
            moved.append(shown(project, move(obj, folder, f"cache/{relative}")))
            bad_objects.append(relative)
    return moved, bad_objects


def _cache_objects(cache: Path, md5: str) -> list[tuple[str, Path]]:
    top = dvcfiles.cache_object(cache, md5)
    found = [(md5, top)]
    if md5.endswith(".dir") and top.is_file():
        # A corrupted manifest is itself moved (its md5 is wrong); its files stay.
        with suppress(ValueError):
            entries = dvcfiles.parse_tree(top.read_bytes())
            found += [(m, dvcfiles.cache_object(cache, m)) for _, m in entries]
    return found
