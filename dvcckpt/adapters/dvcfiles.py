"""DVC's on-disk formats, read without importing dvc (it costs ~0.4 s to import).

The cache layout, `.dir` manifests and `.dvc` pointer files are all plain files,
so local verification and registration read them directly and stay fast. All of
them are untrusted (a pull request, a remote or a shared cache may have written
them), so they are read strictly: a `.dvc` file has exactly one output with an md5
(or a version-aware listing whose md5 is recomputed), and a path derived from an
md5 can only name a file inside the cache.
"""

from __future__ import annotations

import configparser
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from dvcckpt.adapters import yamldoc
from dvcckpt.core import manifest
from dvcckpt.errors import ConfigError, StateError

_POINTER_HINT = "restore it from git (`git checkout -- {file}`) or re-run `dvc add` on the data"


@dataclass(frozen=True)
class DvcPointer:
    """What a `.dvc` file says about its output."""

    file: Path
    md5: str  # a version-aware listing's md5 is recomputed from its files
    size: int
    nfiles: int | None


def read_out(dvc_file: Path) -> dict[str, Any]:
    """The one output of a `.dvc` file, checked field by field (ConfigError if malformed)."""
    if not dvc_file.is_file():
        raise StateError(f"{dvc_file}: no such DVC file", hint="pull or check out the .dvc file")
    return parse_out(yamldoc.read_text(dvc_file), dvc_file)


def parse_out(text: str, dvc_file: Path) -> dict[str, Any]:
    """`read_out` of a `.dvc` file's text (from the work tree or a git revision)."""
    document: Any = yamldoc.load_fast(text, str(dvc_file))
    outs = document.get("outs") if isinstance(document, dict) else None
    if not isinstance(outs, list) or len(outs) != 1 or not isinstance(outs[0], dict):
        count = len(outs) if isinstance(outs, list) else 0
        _malformed(dvc_file, "outs", f"must list exactly one output, not {count}")
    out: dict[str, Any] = outs[0]
    for key in ("size", "nfiles"):
        value = out.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            _malformed(dvc_file, f"outs[0].{key}", f"{value!r} is not a non-negative integer")
    if out.get("hash", "md5") != "md5":
        _malformed(dvc_file, "outs[0].hash", f"{out['hash']!r} is not md5 (DVC 3)")
    pointer_md5(dvc_file, out)
    return out


def pointer_md5(dvc_file: Path, out: dict[str, Any]) -> str:
    """The output's md5; for a version-aware listing (`files:`), the `.dir` md5 of its files.

    An output with neither is refused: every reader must be able to compare the md5.
    """
    listed = _listing(dvc_file, out["files"]) if "files" in out else None
    derived = manifest.dvc_tree_md5(listed) if listed is not None else None
    if "md5" not in out:
        if derived is None:
            _malformed(dvc_file, "outs[0].md5", "missing (and no version-aware file listing)")
        return str(derived)
    md5 = out["md5"]
    if not manifest.is_md5(md5, directory=True):
        _malformed(dvc_file, "outs[0].md5", f"{md5!r} is not 32 lowercase hex digits")
    if derived is not None and derived != md5:
        _malformed(dvc_file, "outs[0].files", f"list a directory of md5 {derived}, not {md5}")
    return str(md5)


def _listing(dvc_file: Path, files: Any) -> list[tuple[str, str]]:
    if not isinstance(files, list):
        _malformed(dvc_file, "outs[0].files", "is not a list")
    entries: list[tuple[str, str]] = []
    for index, entry in enumerate(files):
        if not isinstance(entry, dict):
            _malformed(dvc_file, f"outs[0].files[{index}]", "is not a mapping")
        size = entry.get("size", 0)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            _malformed(dvc_file, f"outs[0].files[{index}].size", f"{size!r} is not a size")
        entries.append((entry.get("relpath", ""), entry.get("md5", "")))
    problem = manifest.listing_problem(entries)
    if problem:
        _malformed(dvc_file, "outs[0].files", problem)
    return entries


def listed_files(out: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A version-aware output's file entries (already checked by `read_out`), else None."""
    files = out.get("files")
    return files if isinstance(files, list) else None


def _malformed(dvc_file: Path, field: str, problem: str) -> NoReturn:
    raise ConfigError(f"{dvc_file}: {field}: {problem}", hint=_POINTER_HINT.format(file=dvc_file))


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
    """Where DVC 3 keeps an object: `files/md5/<first 2>/<rest>` (`.dir` for trees).

    Only a well-formed md5 names an object, so the path never leaves the cache.
    """
    if not manifest.is_md5(md5, directory=True):
        raise ConfigError(
            f"invalid DVC md5 {md5!r}: not 32 lowercase hex digits (plus .dir)",
            hint="the card's checkpoint.dvc.md5 or a .dir listing was altered; restore it from git",
        )
    return cache / "files" / "md5" / md5[:2] / md5[2:]


def parse_tree(data: bytes) -> list[tuple[str, str]]:
    """(relpath, md5) of each file listed in a DVC `.dir` manifest, checked for safety.

    Raises ValueError naming the problem: unsafe or duplicate paths, bad md5s.
    """
    try:
        document = json.loads(data)
        entries = [(e["relpath"], e["md5"]) for e in document]
    except (ValueError, TypeError, KeyError, RecursionError) as exc:  # `[[[[…` nests too deep
        raise ValueError(
            f"not a DVC directory manifest: {str(exc)[:200] or type(exc).__name__}"
        ) from exc
    problem = manifest.listing_problem(entries)
    if problem:
        raise ValueError(f"unsafe DVC directory manifest: {problem}")
    return entries
