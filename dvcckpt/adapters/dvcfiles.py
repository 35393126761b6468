"""DVC's on-disk formats, read without importing dvc (it costs ~0.4 s to import).

The cache layout, `.dir` manifests and `.dvc` pointer files are all plain files,
so local verification and registration read them directly and stay fast.
"""

from __future__ import annotations

import configparser
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dvcckpt.adapters import yamldoc
from dvcckpt.errors import StateError


@dataclass(frozen=True)
class DvcPointer:
    """What a `.dvc` file says about its output."""

    file: Path
    md5: str
    size: int
    nfiles: int | None


def read_pointer(dvc_file: Path) -> DvcPointer:
    out = read_out(dvc_file)
    if "md5" not in out:
        raise StateError(
            f"{dvc_file}: no output with an md5 hash", hint=f"re-run `dvc add` for {dvc_file}"
        )
    return DvcPointer(
        file=dvc_file, md5=str(out["md5"]), size=int(out.get("size", 0)), nfiles=out.get("nfiles")
    )


def read_out(dvc_file: Path) -> dict[str, Any]:
    """The first output of a `.dvc` file, as written."""
    if not dvc_file.is_file():
        raise StateError(f"{dvc_file}: no such DVC file", hint="pull or check out the .dvc file")
    document: Any = yamldoc.load_fast(yamldoc.read_text(dvc_file), str(dvc_file))
    outs = document.get("outs") if isinstance(document, dict) else None
    if not outs or not isinstance(outs[0], dict):
        raise StateError(f"{dvc_file}: no output", hint=f"re-run `dvc add` for {dvc_file}")
    out: dict[str, Any] = outs[0]
    return out


def cache_dir(dvc_root: Path) -> Path:
    """The DVC cache directory (`cache.dir` in `.dvc/config[.local]`, else `.dvc/cache`)."""
    dvc_dir = dvc_root / ".dvc"
    configured = None
    for name in ("config", "config.local"):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read(dvc_dir / name, encoding="utf-8")
        except configparser.Error:
            continue
        if parser.has_option("cache", "dir"):
            configured = parser.get("cache", "dir").strip().strip("'\"")
    return (dvc_dir / configured).resolve() if configured else dvc_dir / "cache"


def cache_object(cache: Path, md5: str) -> Path:
    """Where DVC 3 keeps an object: `files/md5/<first 2>/<rest>` (`.dir` for trees)."""
    return cache / "files" / "md5" / md5[:2] / md5[2:]


def parse_tree(data: bytes) -> list[tuple[str, str]]:
    """(relpath, md5) of each file listed in a DVC `.dir` manifest."""
    try:
        entries = json.loads(data)
        return [(str(e["relpath"]), str(e["md5"])) for e in entries]
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not a DVC directory manifest: {exc}") from exc
