"""Releasing DVC cache objects that nothing in the work tree uses any more.

A pruned checkpoint's data stays in the DVC cache until something removes it; `dvc gc`
would, but it judges by `.dvc` files alone and knows nothing of cards. Here an object
(a file, or a directory's `.dir` listing with the files it names) is removed only when
no live reference uses it: a live card (the caller passes their md5s), a `.dvc` file or
a `dvc.lock` in the work tree. Directory checkpoints share files (a tokenizer, a
config), so a live directory's listing is read to keep the files it names.

It fails closed: when a reference cannot be read (a malformed `.dvc` file, a live
directory whose listing is not in the cache), or the cache lies outside the repository
(it may be shared with other repositories), the objects stay and `Released.kept` says
why. Objects are only ever looked up by md5 (`dvcfiles.cache_object` refuses anything
else), and removed only when they are regular files whose folder really is inside the
cache; a directory's files go before its listing, so an interrupted release leaves a
listing the next run finds the rest from.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dvcckpt.adapters import atomic, dvcfiles, git, yamldoc
from dvcckpt.core import manifest
from dvcckpt.core.limits import HARD_MAX_BYTES
from dvcckpt.errors import DvcckptError

PIPELINE_LOCK = "dvc.lock"


@dataclass
class Released:
    """What a release removed (or, in a dry run, would remove) and what it kept, and why."""

    removed: list[str] = field(default_factory=list)  # cache-relative object paths
    freed: int = 0  # bytes
    kept: list[tuple[str, str]] = field(default_factory=list)  # (md5, why)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "removed": len(self.removed),
            "bytes": self.freed,
            "kept": [{"md5": md5, "why": why} for md5, why in self.kept],
            "dry_run": self.dry_run,
        }


@dataclass
class _Uses:
    """The objects live references use: top-level md5s, the files of live directories,
    and why some of those files are unknown (a listing that could not be read)."""

    top: set[str]
    files: set[str] = field(default_factory=set)
    unknown: list[str] = field(default_factory=list)


def release(
    root: Path,
    dvc_root: Path,
    candidates: Iterable[str],
    live: Iterable[str],
    *,
    leaving: Iterable[Path] = (),
    dry_run: bool = False,
) -> Released:
    """Remove the cache objects of the `candidates` (md5s) that no live reference uses.

    `live`: the md5s of live cards; the `.dvc` files and `dvc.lock` files of the work
    tree under `root` are read here, except those in `leaving` (a dry run's pointers
    that the real run removes). `dry_run`: only say what would be removed.
    """
    result = Released(dry_run=dry_run)
    cache = dvcfiles.cache_dir(dvc_root)
    # Released already (or never here): nothing to keep or remove, no reference to read.
    wanted = [m for m in sorted(set(candidates)) if _present(cache, m)]
    if not wanted:
        return result
    problem = _foreign_cache(cache, dvc_root)
    if problem is None:
        try:
            uses = _uses(cache, {*live, *pipeline_references(root, leaving)})
        except DvcckptError as exc:
            problem = f"a reference cannot be read ({exc.message}), so none is released"
    if problem is not None:
        result.kept = [(md5, problem) for md5 in wanted]
        return result
    for md5 in wanted:
        if md5 in uses.top:
            result.kept.append((md5, "a live card, .dvc file or dvc.lock still uses it"))
            continue
        _release_one(cache, md5, uses, result)
    return result


def _present(cache: Path, md5: str) -> bool:
    try:
        return os.path.lexists(dvcfiles.cache_object(cache, md5))
    except DvcckptError:
        return False  # not an md5: it names no object


def _foreign_cache(cache: Path, dvc_root: Path) -> str | None:
    """Why the cache must not be touched, or None when it is the repository's own."""
    try:
        inside = cache.resolve().is_relative_to(dvc_root.resolve())
    except OSError as exc:
        return f"the DVC cache {cache} cannot be examined ({exc.strerror or exc})"
    if not inside:
        return f"the DVC cache {cache} is outside the repository (other repositories may use it)"
    return None


def pipeline_references(root: Path, leaving: Iterable[Path] = ()) -> set[str]:
    """Every md5 named by a `.dvc` file or a `dvc.lock` in the work tree (outputs and
    dependencies alike: anything DVC could check out). A file that cannot be read
    raises: the caller must not guess what it references."""
    listed = git.run_git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                         "--", "*.dvc", PIPELINE_LOCK, f"*/{PIPELINE_LOCK}")  # fmt: skip
    found: set[str] = set()
    skipped = {Path(os.path.abspath(p)) for p in leaving}
    for relative in dict.fromkeys(p for p in listed.split("\0") if p):
        path = root / relative
        if not path.is_file() or Path(os.path.abspath(path)) in skipped:
            continue  # deleted from the work tree (staged or not): it references nothing here
        text = yamldoc.read_text(path, HARD_MAX_BYTES)
        found |= _md5s(yamldoc.load_fast(text, relative, HARD_MAX_BYTES))
    return found


def _md5s(value: Any) -> set[str]:
    """Every `md5:` value anywhere in a parsed DVC file (outs, deps, version-aware files)."""
    if isinstance(value, Mapping):
        found = {str(value["md5"])} if manifest.is_md5(value.get("md5"), directory=True) else set()
        for item in value.values():
            found |= _md5s(item)
        return found
    if isinstance(value, list):
        return set().union(*(_md5s(item) for item in value)) if value else set()
    return set()


def _uses(cache: Path, top: set[str]) -> _Uses:
    uses = _Uses(top=top)
    for md5 in sorted(m for m in top if m.endswith(".dir")):
        listing = _listing(cache, md5)
        if isinstance(listing, str):
            uses.unknown.append(f"the listing of live directory {md5} {listing}")
        else:
            uses.files.update(file_md5 for _, file_md5 in listing)
    return uses


def _listing(cache: Path, md5: str) -> list[tuple[str, str]] | str:
    """A `.dir` object's (relpath, md5) entries, or why they cannot be known."""
    try:
        return dvcfiles.parse_tree(dvcfiles.cache_object(cache, md5).read_bytes())
    except FileNotFoundError:
        return "is not in the cache"
    except (OSError, ValueError) as exc:
        return f"cannot be read ({str(exc)[:200]})"


def _release_one(cache: Path, md5: str, uses: _Uses, result: Released) -> None:
    """Remove one candidate's objects: a file, or a directory's files then its listing."""
    if not md5.endswith(".dir"):
        if uses.unknown:
            result.kept.append((md5, f"{uses.unknown[0]}, so its files are unknown"))
        elif md5 in uses.files:
            result.kept.append((md5, "a live directory checkpoint holds the same file"))
        else:
            _remove(cache, md5, result)
        return
    listing = _listing(cache, md5)
    if isinstance(listing, str):
        result.kept.append((md5, f"its listing {listing}"))
        return
    if uses.unknown:
        result.kept.append((md5, f"{uses.unknown[0]}, so the files it shares are unknown"))
        return
    kept = False
    for file_md5 in sorted({file_md5 for _, file_md5 in listing}):
        if file_md5 in uses.files or file_md5 in uses.top:
            continue  # shared with a live checkpoint: stays
        kept |= not _remove(cache, file_md5, result)
    if kept:
        result.kept.append((md5, "some of its files could not be removed; its listing stays"))
    else:
        _remove(cache, md5, result)


def _remove(cache: Path, md5: str, result: Released) -> bool:
    """Remove one object if it is a regular file inside the cache; True when it is gone."""
    path = dvcfiles.cache_object(cache, md5)
    try:
        folder = Path(os.path.realpath(path.parent))
        if not folder.is_relative_to(os.path.realpath(cache)):
            result.kept.append((md5, f"{path.parent} leads outside the cache"))
            return False
        info = path.lstat()
    except FileNotFoundError:
        return True
    except OSError as exc:
        result.kept.append((md5, f"cannot be examined ({exc.strerror or exc})"))
        return False
    if not path.is_file() or path.is_symlink():
        result.kept.append((md5, "is not a regular file"))
        return False
    if not result.dry_run:
        try:
            path.unlink()
        except FileNotFoundError:
            return True
        except OSError as exc:
            result.kept.append((md5, f"cannot be removed ({exc.strerror or exc})"))
            return False
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # only when empty: DVC re-creates it as needed
        # Fault drill (tests/test_pruning.py): killed with one object of a release gone.
        atomic.fault_point("released")
    result.removed.append(path.relative_to(cache).as_posix())
    result.freed += info.st_size
    return True
