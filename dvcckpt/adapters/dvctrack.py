"""Registering a checkpoint with DVC without ever moving the user's copy.

`dvc add` moves the work-tree file into the cache and copies (or links) it back, and
writes the `.dvc` file in place: a kill in between leaves no work-tree file, or a
0-byte `.dvc`. Here the work tree is only read: each file is reflinked, hard-linked or
copied (following `cache.type`, as DVC would) into a temporary file, that snapshot is
hashed (md5 for DVC, sha256 for the card, in one pass) and renamed into the cache as
the content-addressed object DVC itself would have written (a directory's `.dir`
manifest is serialised by dvc_data). The `.dvc` and `.gitignore` contents are returned,
not written: the caller writes them with the card as one change (`atomic.commit`), the
`.gitignore` entry computed under the repository's write lock (`gitignore_update`).

Because the hashes come from the snapshot that became the cache object, a file changing
while it is registered cannot make the card disagree with the cache.
"""

from __future__ import annotations

import configparser
import errno
import fcntl
import hashlib
import io
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dvcckpt.adapters import atomic, dvcfiles, git, hashing
from dvcckpt.adapters.dvcfiles import DvcPointer
from dvcckpt.adapters.hashing import ContentDigest
from dvcckpt.core import layout, manifest
from dvcckpt.errors import StateError, UsageError

_CHUNK = 8 << 20
_FICLONE = 0x40049409  # linux/fs.h: share the extents of a file (reflink)
_CACHE_MODE = 0o444  # DVC's mode for cache objects (dvc_data LocalHashFileDB.CACHE_MODE)
_DEFAULT_TYPES = ("reflink", "copy")  # DVC's default cache.type
_DVCIGNORE = ".dvcignore"
# errno values meaning "this file system cannot link/clone like that".
_CANNOT = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL, errno.EXDEV, errno.EPERM, errno.EMLINK}
_UNSUPPORTED: set[str] = set()


@dataclass(frozen=True)
class Tracked:
    """A checkpoint whose objects are in the DVC cache, and the files that register it."""

    pointer: DvcPointer
    pointer_text: bytes
    content: ContentDigest


@dataclass(frozen=True)
class _Hashed:
    md5: str
    sha256: str
    size: int


def refuse_misplaced(root: Path, dvc_root: Path, path: Path) -> None:
    """Refuse paths DVC must not track: the repository itself, git's or DVC's folders,
    files git already tracks, and anything inside a folder DVC tracks."""
    full = Path(os.path.realpath(path))
    if full in (root, dvc_root) or full in root.parents:
        raise UsageError(
            f"{path} is the repository itself", hint="register a checkpoint file or folder in it"
        )
    if not full.is_relative_to(root):
        raise UsageError(
            f"{path} is outside the repository {root}",
            hint="checkpoints must live inside the repository",
        )
    parts = full.relative_to(root).parts
    cache = dvcfiles.cache_dir(dvc_root).resolve()
    if ".git" in parts or ".dvc" in parts or full.is_relative_to(cache):
        raise UsageError(
            f"{path} is inside git's or DVC's own folders",
            hint="save checkpoints in an ordinary folder of the repository, e.g. models/",
        )
    for folder in full.parents:
        if folder == root or not folder.is_relative_to(root):
            break
        if layout.pointer_path_for(folder).is_file():
            raise UsageError(
                f"{path} is inside {folder.relative_to(root)}, which DVC tracks as a whole",
                hint=f"register {folder.relative_to(root)} itself, or save the checkpoint "
                "elsewhere",
            )
    relative = full.relative_to(root).as_posix()
    tracked = git.run_git(root, "--literal-pathspecs", "ls-files", "-z", "--cached", "--", relative)
    if tracked.strip("\0"):
        raise UsageError(
            f"{relative} is tracked by git; a checkpoint's data is stored by DVC",
            hint=f"`git rm -r --cached {relative}` and commit, then add it again",
        )


def track(root: Path, dvc_root: Path, path: Path) -> Tracked:
    """Put the checkpoint at `path` into the DVC cache; returns what registers it."""
    cache = _Cache(
        dvcfiles.cache_dir(dvc_root),
        _cache_types(_cache_setting(dvc_root, "type")),
        _cache_setting(dvc_root, "shared") == "group",
    )
    files = _tree_files(path) if path.is_dir() else []
    _refuse_dvcignored(dvc_root, path, files)
    threads = hashing.workers()  # decided here: the pool's threads do not inherit it
    if path.is_dir():
        if not files:
            raise UsageError(
                f"{path} is an empty directory", hint="save the checkpoint files first"
            )
        with ThreadPoolExecutor(max_workers=threads) as pool:
            hashed = list(pool.map(lambda rel: _cache_file(path / rel, cache, threads), files))
        md5 = _cache_tree(cache, files, hashed)
        size, nfiles = sum(h.size for h in hashed), len(files)
        sha256 = manifest.manifest_sha256(zip(files, (h.sha256 for h in hashed), strict=True))
        content = ContentDigest(sha256, size, nfiles, files)
    else:
        single = _cache_file(path, cache, threads)
        md5, size, nfiles = single.md5, single.size, None
        content = ContentDigest(single.sha256, size, 1)
    pointer_file = layout.pointer_path_for(path)
    pointer = DvcPointer(file=pointer_file, md5=md5, size=size, nfiles=nfiles)
    return Tracked(pointer, _pointer_text(path.name, pointer), content)


def _tree_files(root: Path) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in files:
            if layout.is_pointer(name) or name == _DVCIGNORE:
                raise UsageError(
                    f"{Path(folder, name)} is a DVC file inside a directory checkpoint",
                    hint="register the tracked checkpoints separately, not their folder",
                )
            found.append(Path(folder, name).relative_to(root).as_posix())
    return sorted(found)


def _refuse_dvcignored(dvc_root: Path, path: Path, files: list[str]) -> None:
    """Refuse a checkpoint DVC would register only in part: `.dvcignore` patterns drop
    files from DVC's copy, and the card's sha256 would then cover more than DVC keeps."""
    full = Path(os.path.realpath(path))
    candidates = [folder / _DVCIGNORE for folder in (full.parent, *full.parents)
                  if folder.is_relative_to(dvc_root)]  # fmt: skip
    if not any(_has_patterns(candidate) for candidate in candidates):
        return
    from dvc.repo import Repo

    with Repo(str(dvc_root)) as repo:
        ignored = repo.dvcignore
        if ignored.is_ignored(repo.fs, str(full)):
            raise UsageError(
                f"{path} is excluded by .dvcignore", hint="remove the pattern from .dvcignore"
            )
        for relpath in files:
            if ignored.is_ignored_file(str(full / relpath)):
                raise UsageError(
                    f"{path / relpath} is excluded by .dvcignore: DVC would leave it out of "
                    "the checkpoint",
                    hint="remove the pattern from .dvcignore, or move the file out of the folder",
                )


def _has_patterns(dvcignore: Path) -> bool:
    try:
        lines = dvcignore.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return False
    return any(line.strip() and not line.lstrip().startswith("#") for line in lines)


@dataclass(frozen=True)
class _Cache:
    path: Path
    types: tuple[str, ...]  # `cache.type`: how objects share the work-tree copy
    shared: bool  # `cache.shared = group`: folders group-writable, as DVC makes them


def _cache_setting(dvc_root: Path, key: str) -> str | None:
    """A `cache` setting of the repository's DVC config (config.local overrides config)."""
    configured = None
    for name in ("config", "config.local"):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read(dvc_root / ".dvc" / name, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            continue
        if parser.has_option("cache", key):
            configured = parser.get("cache", key).strip().strip("'\"").lower()
    return configured


def _cache_types(configured: str | None) -> tuple[str, ...]:
    if not configured:
        return _DEFAULT_TYPES
    types = tuple(t.strip().strip("'\"[] ") for t in configured.split(","))
    return tuple(t for t in types if t) or _DEFAULT_TYPES


def _cache_file(source: Path, cache: _Cache, threads: int) -> _Hashed:
    """Snapshot `source` into a temporary file, hash the snapshot, make it the cache object."""
    folder = cache.path / "files" / "md5"
    _make_folder(folder, cache)
    with atomic.temporary(folder, "object") as tmp:
        hashed = _snapshot(source, tmp, cache, threads > 1)
        target = dvcfiles.cache_object(cache.path, hashed.md5)
        # Content-addressed: an object already there is this content, unless truncated.
        if not _holds(target, hashed.size):
            _make_folder(target.parent, cache)
            try:
                os.chmod(tmp, _CACHE_MODE)
                os.replace(tmp, target)
            except OSError as exc:
                raise atomic.os_failure("write to the DVC cache", target, exc) from exc
    return hashed


def _holds(target: Path, size: int) -> bool:
    try:
        return target.stat().st_size == size
    except OSError:
        return False


def _make_folder(folder: Path, cache: _Cache) -> None:
    if folder.is_dir():
        return
    missing = [p for p in (folder, *folder.parents) if p.is_relative_to(cache.path)]
    missing = [p for p in missing if not p.is_dir()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for created in missing if cache.shared else []:
            os.chmod(created, 0o2775)
    except (FileExistsError, NotADirectoryError) as exc:
        raise StateError(
            f"cannot write to the DVC cache {folder}: a part of that path is a file",
            hint="move the file away (the cache must be a folder), or set `dvc cache dir`",
        ) from exc
    except OSError as exc:
        raise atomic.os_failure("write to the DVC cache", folder, exc) from exc


def _snapshot(source: Path, tmp: Path, cache: _Cache, parallel: bool) -> _Hashed:
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise atomic.os_failure("read", source, exc) from exc
    with open(fd, "rb", buffering=0) as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # replaced since it was checked
            raise UsageError(f"{source} is not a regular file", hint="register files only")
        try:
            for kind in (*cache.types, "copy"):
                if kind == "copy":
                    with tmp.open("wb", buffering=0) as out:
                        return _hash_stream(handle, info.st_size, out, parallel)
                if kind not in _UNSUPPORTED and _link(kind, source, fd, tmp):
                    with tmp.open("rb", buffering=0) as snapshot:
                        return _hash_stream(snapshot, info.st_size, None, parallel)
        except OSError as exc:
            raise atomic.os_failure(f"copy {source} into the DVC cache", cache.path, exc) from exc
    raise AssertionError("unreachable: copy always succeeds or raises")


def _link(kind: str, source: Path, fd: int, tmp: Path) -> bool:
    """Reflink or hard-link `source` to `tmp`; False when this file system cannot (then
    this process stops trying that kind: a checkpoint's files share one file system)."""
    try:
        if kind == "reflink":
            with tmp.open("wb") as out:
                fcntl.ioctl(out.fileno(), _FICLONE, fd)
            return True
        if kind in ("hardlink", "symlink"):
            # A symlinked work tree would need the file replaced by a link; a hard link
            # gives the same sharing without touching the work tree.
            tmp.unlink()
            try:
                os.link(source, tmp)
            except OSError:
                tmp.touch()  # keep the reserved name for the next kind
                raise
            return True
    except OSError as exc:
        if exc.errno in _CANNOT:
            _UNSUPPORTED.add(kind)
    return False


def _hash_stream(
    source: IO[bytes], size: int, out: IO[bytes] | None, parallel: bool = True
) -> _Hashed:
    """md5 and sha256 of a stream in one pass, copying it to `out` when given.

    When `parallel`, for large chunks the sha256 and the copy run on a second thread
    while this one computes the md5 (the slower hash; hashlib and writes release the GIL).
    """
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    buffer = memoryview(bytearray(max(1, min(_CHUNK, size + 1))))  # small file, small buffer

    def other_half(chunk: memoryview) -> None:
        sha256.update(chunk)
        if out is not None:
            atomic.write_all(out, chunk)

    total = 0
    with ThreadPoolExecutor(max_workers=1) as helper:
        while count := source.readinto(buffer):  # type: ignore[attr-defined]
            chunk = buffer[:count]
            pending = helper.submit(other_half, chunk) if parallel and count > 1 << 20 else None
            md5.update(chunk)
            if pending is None:
                other_half(chunk)
            else:
                pending.result()
            if out is not None:
                atomic.fault_point("cache-copy")
            total += count
    return _Hashed(md5.hexdigest(), sha256.hexdigest(), total)


def _cache_tree(cache: _Cache, files: list[str], hashed: list[_Hashed]) -> str:
    """Write the `.dir` manifest object of a directory; returns its id (`MD5.dir`)."""
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.tree import Tree

    tree = Tree()  # type: ignore[no-untyped-call]
    for relpath, entry in zip(files, hashed, strict=True):
        tree.add(tuple(relpath.split("/")), None, HashInfo("md5", entry.md5))
    data = tree.as_bytes()
    md5 = hashlib.md5(data).hexdigest() + ".dir"
    target = dvcfiles.cache_object(cache.path, md5)
    if not _holds(target, len(data)):
        _make_folder(target.parent, cache)
        atomic.write_bytes(target, data)
        os.chmod(target, _CACHE_MODE)
    return md5


def _pointer_text(name: str, pointer: DvcPointer) -> bytes:
    """The `.dvc` file `dvc add` writes, byte for byte (DVC 3 dumps it with ruamel so)."""
    from ruamel.yaml import YAML

    out: dict[str, object] = {"md5": pointer.md5, "size": pointer.size}
    if pointer.nfiles is not None:
        out["nfiles"] = pointer.nfiles
    out.update({"hash": "md5", "path": name})
    yaml = YAML()
    yaml.default_flow_style = False
    stream = io.StringIO()
    yaml.dump({"outs": [out]}, stream)
    return stream.getvalue().encode("utf-8")


def gitignore_update(root: Path, path: Path) -> tuple[Path, bytes | None]:
    """The `.gitignore` beside the checkpoint with its entry (None if git ignores it already)."""
    gitignore = path.parent / ".gitignore"
    relative = Path(os.path.realpath(path)).relative_to(root).as_posix()
    ignored = git.run(root, ["--literal-pathspecs", "check-ignore", "-q", "--", relative])
    if ignored.returncode == 0:
        return gitignore, None
    entry = "/" + "".join(f"\\{c}" if c in "\\[]!*#?" else c for c in path.name)
    if entry.endswith(" "):
        entry = entry[:-1] + "\\ "  # git drops unescaped trailing spaces
    try:
        text = gitignore.read_text(encoding="utf-8") if gitignore.is_file() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(
            f"{gitignore}: cannot be read as UTF-8 text", hint="fix or remove that file"
        ) from exc
    if entry in text.splitlines():
        return gitignore, None
    prefix = "" if not text or text.endswith("\n") else "\n"
    return gitignore, f"{text}{prefix}{entry}\n".encode()
