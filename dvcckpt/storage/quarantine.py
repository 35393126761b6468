"""Quarantine: bad copies are moved aside for inspection, never deleted.

Folders are timestamped and live in the DVC directory (`.dvc/tmp/...`), never in
the work tree, so a quarantined file is neither committed nor mistaken for data.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from dvcckpt.errors import StateError
from dvcckpt.project import Project

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
