"""Checkouts built from verified bytes only, in a temporary folder, then moved into place.

DVC's fetch and checkout are not used to bring data in: DVC writes the files a `.dir`
listing names before anything is verified (a listing naming `../../.git/config` would
overwrite it), and on a local remote it deletes an object whose md5 is wrong. Here each
object is taken from the cache when its md5 is right, else streamed from the remote into
a staging folder with md5 and sha256 computed on the way. A listing must be safe
(`core.manifest.listing_problem`) and match the card's file count and size; the copy is
assembled in the staging folder and only renamed into place once its sha256 matches
the card. Nothing is written to or deleted on the remote; bad bytes go to quarantine.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dvcckpt.adapters import dvcerrors, dvcfiles, dvcrepo
from dvcckpt.adapters.dvcrepo import RemoteObject, RemoteStore
from dvcckpt.core import manifest
from dvcckpt.storage import quarantine
from dvcckpt.storage.select import Checkpoint

_CHUNK = 4 << 20
_LISTING_LIMIT = 256 << 20
# Faults of the local disk while a download is written (never the remote's).
_LOCAL_FAULTS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}


@dataclass(frozen=True)
class Obj:
    """A verified local copy of one object: a cache file, or a download in the staging folder."""

    md5: str
    path: Path
    size: int
    sha256: str
    downloaded: bool


class Refused(Exception):
    """A checkpoint that cannot be checked out; `suspect` names a remote object to replace."""

    def __init__(self, problem: str, suspect: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.suspect = suspect


@dataclass
class Built:
    """One checkpoint's outcome: its verified objects, or why it was refused."""

    ckpt: Checkpoint
    entries: list[tuple[str, str]] = field(default_factory=list)  # (relpath, md5) listed
    objects: list[tuple[str, Obj]] = field(default_factory=list)  # (relpath, object)
    listing: bytes | None = None  # a `.dir` object to add to the cache
    listing_downloaded: bool = False
    problem: str | None = None
    suspects: list[str] = field(default_factory=list)


class Builder:
    """Obtains and verifies the objects of checkpoints of one repository.

    `cache` is read (and, with `repair`, bad copies in it are quarantined and good
    downloads added); the remote is opened only when an object is not in the cache.
    """

    def __init__(self, dvc_root: Path, cache: Path, staging: Path, remote: str | None,
                 *, repair: bool, jobs: int | None = None) -> None:  # fmt: skip
        self.dvc_root, self.cache, self.staging = dvc_root, cache, staging
        self.remote, self.repair = remote, repair
        self.cancelled = threading.Event()
        self.quarantine: Path | None = None
        self.bad_cache: list[str] = []
        self._pool = ThreadPoolExecutor(jobs or 8, thread_name_prefix="dvcckpt-fetch")
        self._stack = ExitStack()
        self._store: RemoteStore | None = None
        self._lock = threading.Lock()
        self._objects: dict[str, Future[Obj]] = {}

    def __enter__(self) -> Builder:
        (self.staging / "objects").mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancelled.set()  # running downloads stop at their next chunk
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._stack.close()

    def store(self) -> RemoteStore:
        with self._lock:
            if self._store is None:
                self._store = self._stack.enter_context(
                    dvcrepo.open_remote(self.dvc_root, self.remote)
                )
            return self._store

    def build(self, ckpt: Checkpoint, out: dict[str, Any], out_key: str) -> Built:
        """Every object of `ckpt` verified (md5, then the card's sha256, size and count).

        `out`: its `.dvc` output (versions on a version-aware remote); `out_key`: its
        path relative to the DVC root.
        """
        built = Built(ckpt, entries=[("", ckpt.md5)] if not ckpt.directory else [])
        try:
            built.entries = self._entries(ckpt, out, built)
            sources = self._sources(ckpt, out, out_key)
            futures = [(rel, self._obtain(md5, sources(rel, md5))) for rel, md5 in built.entries]
            built.objects = [(rel, future.result()) for rel, future in futures]
            _check_card(ckpt, out, built.objects)
        except Refused as exc:
            built.problem = exc.problem
            built.suspects += [exc.suspect] if exc.suspect else []
        return built

    # --- the listing ------------------------------------------------------------------

    def _entries(
        self, ckpt: Checkpoint, out: dict[str, Any], built: Built
    ) -> list[tuple[str, str]]:
        if not ckpt.directory:
            return [("", ckpt.md5)]
        data = self._cached_listing(ckpt.md5)
        if data is None:
            data = self._remote_listing(ckpt, out)
            built.listing, built.listing_downloaded = data, not self.store().version_aware
        try:
            entries = dvcfiles.parse_tree(data)
        except ValueError as exc:
            # Its md5 is the card's: the card itself points at an unsafe listing.
            raise Refused(f"the directory listing {ckpt.md5} is refused: {exc}") from exc
        for expected, source in ((ckpt.files, "the card"), (out.get("nfiles"), "its .dvc file")):
            if expected is not None and len(entries) != expected:
                raise Refused(f"its listing has {len(entries)} files, {source} says {expected}")
        return entries

    def _cached_listing(self, md5: str) -> bytes | None:
        top = dvcfiles.cache_object(self.cache, md5)
        if not top.is_file() or top.stat().st_size > _LISTING_LIMIT:
            return None
        data = top.read_bytes()
        if hashlib.md5(data, usedforsecurity=False).hexdigest() == md5.removesuffix(".dir"):
            return data
        self._bad_cache_copy(top)
        return None

    def _remote_listing(self, ckpt: Checkpoint, out: dict[str, Any]) -> bytes:
        store = self.store()
        if store.version_aware:
            listed = dvcfiles.listed_files(out)
            if listed is None:
                raise Refused(f"its .dvc file records no file versions for {store.description}")
            return manifest.dvc_tree_bytes((str(f["relpath"]), str(f["md5"])) for f in listed)
        obj = store.content_object(ckpt.md5)
        try:
            data = store.read_listing(ckpt.md5, _LISTING_LIMIT, check=False)
            # Kept with the downloads, so a refused listing is quarantined like any object.
            (self.staging / "objects" / ckpt.md5).write_bytes(data)
            dvcrepo.check_listing(ckpt.md5, data)
        except ValueError as exc:
            raise Refused(f"{shown(store, obj)}: {exc}", suspect=shown(store, obj)) from exc
        except OSError:
            raise
        except Exception as exc:
            raise _remote_problem(store, obj, exc) from exc
        return data

    # --- objects ----------------------------------------------------------------------

    def _sources(
        self, ckpt: Checkpoint, out: dict[str, Any], out_key: str
    ) -> Callable[[str, str], Callable[[], RemoteObject]]:
        """Where each file would come from on the remote (asked only when it must be)."""
        versioned: dict[str, RemoteObject] = {}

        def source(relpath: str, md5: str) -> Callable[[], RemoteObject]:
            def remote_object() -> RemoteObject:
                store = self.store()
                if not store.version_aware:
                    return store.content_object(md5)
                with self._lock:
                    if not versioned:
                        found = store.versioned_objects(out_key, ckpt.md5, out)
                        versioned.update((o.relpath, o) for o in found)
                if relpath not in versioned:
                    raise FileNotFoundError(f"no version recorded for {relpath}")
                return versioned[relpath]

            return remote_object

        return source

    def _obtain(self, md5: str, source: Callable[[], RemoteObject]) -> Future[Obj]:
        with self._lock:
            if md5 not in self._objects:
                self._objects[md5] = self._pool.submit(self._fetch, md5, source)
            return self._objects[md5]

    def _fetch(self, md5: str, source: Callable[[], RemoteObject]) -> Obj:
        local = dvcfiles.cache_object(self.cache, md5)
        if local.is_file():
            with local.open("rb", buffering=0) as handle:
                size, md5_hex, sha256 = self._copy(handle, None)
            if md5_hex == md5:
                return Obj(md5, local, size, sha256, downloaded=False)
            self._bad_cache_copy(local)
        try:
            obj = source()
        except FileNotFoundError as exc:
            raise Refused(f"not on the remote ({exc})") from exc
        store = self.store()
        target = self.staging / "objects" / md5
        try:
            with store.open(obj) as stream, target.open("wb") as handle:
                size, md5_hex, sha256 = self._copy(stream, handle)
        except Refused:
            raise
        except OSError as exc:
            if exc.errno in _LOCAL_FAULTS:
                raise  # writing the staging folder failed: the boundary names the fault
            raise _remote_problem(store, obj, exc) from exc
        except Exception as exc:
            raise _remote_problem(store, obj, exc) from exc
        if md5_hex != md5:
            raise Refused(f"{shown(store, obj)} is corrupted: its md5 is {md5_hex}, "
                          f"not {md5}", suspect=shown(store, obj))  # fmt: skip
        return Obj(md5, target, size, sha256, downloaded=True)

    def _copy(self, stream: Any, sink: Any) -> tuple[int, str, str]:
        """Read a stream to its end (into `sink` if given): size, md5 and sha256.

        Each chunk is hashed on a helper thread while the next one is read (hashlib
        releases the GIL), so verifying adds almost nothing to a download's time.
        """
        md5, sha256, size = hashlib.md5(usedforsecurity=False), hashlib.sha256(), 0

        def digest(chunk: bytes) -> None:
            md5.update(chunk)
            sha256.update(chunk)

        with ThreadPoolExecutor(1, thread_name_prefix="dvcckpt-hash") as helper:
            pending: Future[None] | None = None
            while chunk := stream.read(_CHUNK):
                if self.cancelled.is_set():
                    raise Refused("interrupted")
                if pending is not None:
                    pending.result()
                pending = helper.submit(digest, chunk)
                size += len(chunk)
                if sink is not None:
                    sink.write(chunk)
            if pending is not None:
                pending.result()
        return size, md5.hexdigest(), sha256.hexdigest()

    def _bad_cache_copy(self, path: Path) -> None:
        """A cache object whose md5 is wrong: moved aside (pull), or only passed over (get)."""
        if not self.repair:
            return
        relative = path.relative_to(self.cache).as_posix()
        with self._lock:
            if self.quarantine is None:
                base = self.dvc_root / ".dvc" / quarantine.QUARANTINE
                self.quarantine = quarantine.fresh_folder(base)
            folder = self.quarantine
        if path.exists():
            quarantine.move(path, folder, f"cache/{relative}")
            with self._lock:
                self.bad_cache.append(relative)


def _check_card(ckpt: Checkpoint, out: dict[str, Any], objects: list[tuple[str, Obj]]) -> None:
    size = sum(obj.size for _, obj in objects)
    for expected, source in ((ckpt.size, "the card"), (out.get("size"), "its .dvc file")):
        if expected and size != expected:
            raise Refused(f"its files hold {size} bytes, {source} says {expected}")
    digests = [(rel, obj.sha256) for rel, obj in objects]
    actual = manifest.manifest_sha256(digests) if ckpt.directory else digests[0][1]
    if actual != ckpt.sha256:
        raise Refused(f"sha256 {actual} differs from the card's {ckpt.sha256}")


def shown(store: RemoteStore, obj: RemoteObject) -> str:
    """An object as messages name it: its URL, or its path on a local remote."""
    return obj.path if store.protocol in ("local", "file") else obj.url(store.protocol)


def _remote_problem(store: RemoteStore, obj: RemoteObject, exc: Exception) -> Exception:
    if dvcerrors.is_missing(exc):
        return Refused(f"{shown(store, obj)} is not on {store.description}")
    return dvcerrors.remote_failure("read from", store.description, exc, [])


# --- assembling and placing ---------------------------------------------------------------


def assemble(built: Built, tree: Path) -> None:
    """Write the checkpoint's files under `tree` (a path in the staging folder)."""
    if not built.ckpt.directory:
        [(_, obj)] = built.objects
        tree.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(obj.path, tree)
        return
    for relpath, obj in built.objects:
        target = tree.joinpath(*relpath.split("/"))  # checked: no `..`, no absolute part
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(obj.path, target)


def add_to_cache(cache: Path, built: Built) -> None:
    """Move a checkpoint's verified downloads (and its listing) into the DVC cache.

    The objects then point at their cache copies, which `assemble` copies from.
    """
    moved = []
    for relpath, obj in built.objects:
        target = dvcfiles.cache_object(cache, obj.md5)
        if obj.downloaded and obj.path.exists() and not target.exists():
            _place_object(obj.path, target)
        moved.append((relpath, replace(obj, path=target) if obj.downloaded else obj))
    built.objects = moved
    if built.listing is not None:
        target = dvcfiles.cache_object(cache, built.ckpt.md5)
        if not target.exists():
            staged = target.parent / f".{target.name}.dvcckpt-{os.getpid()}"
            target.parent.mkdir(parents=True, exist_ok=True)
            staged.write_bytes(built.listing)
            _place_object(staged, target)


def _place_object(source: Path, target: Path) -> None:
    """Rename into the cache (copy first when the cache is on another file system)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, target)
    except OSError:
        staged = target.parent / f".{target.name}.dvcckpt-{os.getpid()}"
        shutil.copyfile(source, staged)
        os.replace(staged, target)
    target.chmod(0o444)  # DVC keeps cache objects read-only
