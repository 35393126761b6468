"""Where the copies of a checkpoint live, and which files to hash to check each one.

A checkpoint has up to three copies: the work tree, the DVC cache and the
remote. Each becomes a `Plan`: the leaves (files) to hash, or why the copy is
missing or malformed before any hashing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

from dvcckpt.adapters import dvcerrors, dvcfiles
from dvcckpt.adapters.dvcrepo import RemoteStore
from dvcckpt.core import layout
from dvcckpt.errors import StateError
from dvcckpt.project import Project
from dvcckpt.storage.select import Checkpoint


@dataclass(frozen=True)
class Leaf:
    """One file to hash: a local file, or a remote object opened on demand."""

    relpath: str
    size: int
    opener: Callable[[], IO[bytes]]
    # (device, inode, size, mtime) of a local file: a file reached twice (a work-tree
    # link to its cache object, or a prefetched file) is read once.
    identity: tuple[int, ...] | None = None

    @property
    def key(self) -> Any:
        """What identifies the bytes: the local file, else this very leaf."""
        return self.identity or id(self)


@dataclass
class Plan:
    """A copy to check: its leaves, or why it is missing before any hashing."""

    checkpoint: Checkpoint
    where: str  # workspace | cache | remote | download
    location: str
    leaves: list[Leaf] | None = None
    missing: str | None = None
    corrupted: str | None = None
    remote: str | None = None  # the remote's description, for remote copies

    def read_failure(self, exc: Exception) -> StateError:
        """Why a leaf of this copy could not be read (other than its absence)."""
        if isinstance(exc, OSError) and exc.filename and not self.remote:
            return StateError(f"cannot read {exc.filename}: {exc.strerror or exc}",
                              hint="check the file's permissions")  # fmt: skip
        return dvcerrors.remote_failure("read from", self.remote or self.location, exc, [])


def shown(project: Project, path: Path) -> str:
    """A path as messages show it: relative to the work tree when inside it."""
    try:
        return path.relative_to(project.root).as_posix()
    except ValueError:
        return str(path)


def _local_leaf(path: Path, relpath: str) -> Leaf:
    stat = path.stat()  # follows links: a symlinked cache object is the same inode

    def opener() -> IO[bytes]:
        return path.open("rb", buffering=0)

    identity = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return Leaf(relpath, stat.st_size, opener, identity)


def workspace_plan(project: Project, ckpt: Checkpoint) -> Plan:
    return path_plan(project.inside(ckpt.path), ckpt, "workspace", ckpt.path)


def path_plan(path: Path, ckpt: Checkpoint, where: str, location: str) -> Plan:
    """The copy at `path` (the work tree, or a download)."""
    plan = Plan(ckpt, where, location)
    if not path.exists():
        plan.missing = "not found"
    elif ckpt.directory != path.is_dir():
        plan.corrupted = f"expected a {'directory' if ckpt.directory else 'file'}"
    elif ckpt.directory:
        files = sorted((p.relative_to(path).as_posix(), p) for p in path.rglob("*") if p.is_file())
        plan.leaves = [_local_leaf(p, rel) for rel, p in files]
    else:
        plan.leaves = [_local_leaf(path, "")]
    return plan


def cache_plan(project: Project, ckpt: Checkpoint, cache: Path) -> Plan:
    top = dvcfiles.cache_object(cache, ckpt.md5)
    plan = Plan(ckpt, "cache", shown(project, top))
    if not ckpt.directory:
        if top.is_file():
            plan.leaves = [_local_leaf(top, "")]
        else:
            plan.missing = "not in the cache"
        return plan
    try:
        entries = _tree_entries(project, ckpt, top)
    except ValueError as exc:
        plan.corrupted = f"{shown(project, top)}: {exc}"
        return plan
    if entries is None:
        plan.missing = "not in the cache"
        return plan
    absent = [rel for rel, md5 in entries if not dvcfiles.cache_object(cache, md5).is_file()]
    if absent:
        plan.missing = f"{len(absent)} of {len(entries)} files not in the cache ({absent[0]}, ...)"
        return plan
    plan.leaves = [_local_leaf(dvcfiles.cache_object(cache, md5), rel) for rel, md5 in entries]
    return plan


def _tree_entries(project: Project, ckpt: Checkpoint, top: Path) -> list[tuple[str, str]] | None:
    """(relpath, md5) of a directory checkpoint's files, from its `.dir` cache object.

    A pull from a version-aware remote may store no `.dir` object; the `.dvc` file
    then lists the files itself (checked like a `.dir` listing when it was read).
    """
    if top.is_file():
        return dvcfiles.parse_tree(top.read_bytes())
    listed = dvcfiles.listed_files(pointer_out(project, ckpt, missing_ok=True))
    if listed is None:
        return None
    return [(str(f["relpath"]), str(f["md5"])) for f in listed]


def remote_plan(project: Project, ckpt: Checkpoint, remote: RemoteStore) -> Plan:
    plan = Plan(ckpt, "remote", remote.name, remote=remote.description)
    try:
        objects = remote.objects(_out_key(project, ckpt), ckpt.md5, pointer_out(project, ckpt))
    except ValueError as exc:  # a corrupted or unsafe `.dir` listing on the remote
        plan.corrupted = f"{remote.content_object(ckpt.md5).url(remote.protocol)}: {exc}"
        return plan
    except Exception as exc:
        if not dvcerrors.is_missing(exc):
            raise plan.read_failure(exc) from exc
        plan.missing = f"not on remote {remote.name!r}" + (f" ({exc})" if str(exc) else "")
        return plan
    plan.location = objects[0].url(remote.protocol) if len(objects) == 1 else remote.name
    # Object sizes are only known once opened; spread the card's total for the bar.
    share = ckpt.size // max(len(objects), 1)
    plan.leaves = [Leaf(obj.relpath, share, partial(remote.open, obj)) for obj in objects]
    return plan


def _out_key(project: Project, ckpt: Checkpoint) -> str:
    return project.inside(ckpt.path).relative_to(project.dvc_root.resolve()).as_posix()


def pointer_out(project: Project, ckpt: Checkpoint, missing_ok: bool = False) -> dict[str, Any]:
    """The `.dvc` output for this card's version (version-aware remotes record versions there).

    FileNotFoundError when the `.dvc` file tracks another version (`missing_ok`: {}).
    """
    dvc_file = project.inside(ckpt.dvc_file)
    if not layout.is_pointer(dvc_file.name) or not dvc_file.is_file():
        return {}
    out = dvcfiles.read_out(dvc_file)
    if dvcfiles.pointer_md5(dvc_file, out) != ckpt.md5:
        if missing_ok:
            return {}
        raise FileNotFoundError(f"{ckpt.dvc_file} tracks another version")
    return out
