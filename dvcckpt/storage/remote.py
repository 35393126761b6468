"""Remote storage with verified integrity: push, pull, get, verify, remote settings.

DVC moves the bytes (and checks md5 at most); dvcckpt re-hashes every copy it
hands to a user with sha256 and compares it with the card. A copy that fails is
moved to a quarantine folder inside the DVC directory for inspection; nothing
is ever deleted on a remote.

A checkpoint has up to three copies: the work tree, the DVC cache and the
remote. Hashing runs on a small thread pool (hashlib releases the GIL), so
several copies or checkpoints use both cores, and a workspace file that is a
link to its cache object is read once.
"""

from __future__ import annotations

import hashlib
import ipaddress
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from dvcckpt.adapters import dvcconfig, dvcerrors, dvcfiles
from dvcckpt.adapters import dvcrepo as store
from dvcckpt.cards import card as card_module
from dvcckpt.cards import resolve as resolver
from dvcckpt.cards.card import Card
from dvcckpt.core import layout
from dvcckpt.errors import CheckFailed, StateError, UsageError
from dvcckpt.project import Project

_CHUNK = 8 << 20  # few GIL hand-offs per GB, little memory per thread
LOCAL_WORKERS = 2  # both cores; more threads only contend for the same disk
REMOTE_WORKERS = 4  # network-bound streams
QUARANTINE = Path("tmp") / "dvcckpt-quarantine"  # inside the DVC directory, never the work tree

OK, MISSING, CORRUPTED = "ok", "missing", "corrupted"
_SEVERITY = {OK: 0, MISSING: 1, CORRUPTED: 2}


# --- what a card says about its data ---------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """The integrity facts of one card: where the data lives and what it must hash to."""

    name: str
    path: str  # repository-relative
    directory: bool
    sha256: str
    size: int
    md5: str
    dvc_file: str

    @classmethod
    def of(cls, card: Card) -> Checkpoint:
        meta = card.data["checkpoint"]
        dvc = meta.get("dvc") or {}
        return cls(
            name=card.name,
            path=str(meta["path"]),
            directory=meta.get("format") == "directory",
            sha256=str(meta["sha256"]),
            size=int(meta.get("size") or 0),
            md5=str(dvc.get("md5", "")),
            dvc_file=str(dvc.get("file") or layout.pointer_for(meta["path"])),
        )


def resolve(project: Project, reference: str) -> Card:
    """NAME, a path, NAME@REV, or NAME@STAGE / MODEL@STAGE (storage needs only path and hashes)."""
    return resolver.reference(project, reference, full_validation=False)


def select(
    project: Project, refs: tuple[str, ...] | list[str], everything: bool, stage: str | None = None
) -> list[Checkpoint]:
    """The checkpoints a command works on, in the order given, without duplicates."""
    if everything and (refs or stage):
        raise UsageError("--all cannot be combined with names or --stage", hint="pick one")
    if everything:
        cards = [c for c in _work_tree_cards(project) if not c.data.get("tombstone")]
    elif stage:
        models = list(refs) or sorted({c.model for c in _work_tree_cards(project)})
        cards = _stage_holders(project, models, stage, strict=bool(refs))
    elif refs:
        cards = [resolve(project, ref) for ref in refs]
    else:
        raise UsageError("name at least one checkpoint", hint="pass NAME... or --all (see --help)")
    unique = {c.name: Checkpoint.of(c) for c in cards}
    if everything and not unique:
        raise StateError(f"no checkpoints registered in {project.root}", hint="dvcckpt add PATH")
    return list(unique.values())


def _work_tree_cards(project: Project) -> list[Card]:
    limit = project.config.card_max_bytes
    return [
        card_module.read(path, limit, full_validation=False)
        for path in resolver.card_files(project)
    ]


def _stage_holders(project: Project, models: list[str], stage: str, strict: bool) -> list[Card]:
    from dvcckpt.promotion import stages

    found = []
    for model in models:
        try:
            found.append(stages.holder_card(project, model, stage))
        except StateError:
            if strict:
                raise
    if not found:
        raise StateError(f"no checkpoint holds {stage}", hint="promote one first")
    return found


# --- progress on a terminal (rich, imported only when shown) ---------------------------


def _interactive() -> bool:
    return sys.stderr.isatty()


@contextmanager
def progress_bar(label: str, total: int, done: Callable[[], int]) -> Iterator[None]:
    """A bar fed by polling `done()` (bytes so far) every 0.1 s; only on a terminal."""
    if not _interactive() or total <= 0:
        yield
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())  # fmt: skip
    stop = threading.Event()
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)

        def poll() -> None:
            while not stop.wait(0.1):
                bar.update(task, completed=min(total, done()))

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        try:
            yield
        finally:
            stop.set()
            poller.join()


def _io_counter(name: str) -> int | None:
    """Bytes this process has read (`rchar`) or written (`wchar`), from /proc (Linux)."""
    try:
        text = Path("/proc/self/io").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return int(value)
    return None


def transfer_progress(label: str, total: int, counter: str) -> AbstractContextManager[None]:
    """A bar for a DVC transfer, on a terminal only.

    DVC's API offers no progress hook, but during an upload the bytes this
    process reads are the bytes it sends (`rchar`), and during a download the
    bytes it writes are the bytes received (`wchar`): polling them drives the bar.
    """
    start = _io_counter(counter) if _interactive() else None
    if start is None:
        return nullcontext()
    return progress_bar(label, total, lambda: (_io_counter(counter) or start) - start)


# --- hashing the copies of a checkpoint ------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    """One file to hash: a local file, or a remote object opened on demand."""

    relpath: str
    size: int
    opener: Callable[[], IO[bytes]]
    # (device, inode, size, mtime) of a local file: a file reached twice (a work-tree
    # link to its cache object, or a prefetched file) is read once.
    identity: tuple[int, ...] | None = None


class Hasher:
    """A thread pool hashing leaves with sha256, each local file once, counting bytes.

    hashlib releases the GIL while it hashes, so the threads use every core;
    large reads keep them from waiting on the GIL while the main thread works.
    """

    def __init__(self, workers: int) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="dvcckpt-sha256")
        self._futures: dict[Any, Future[str]] = {}
        self._lock = threading.Lock()
        self._done = 0

    def __enter__(self) -> Hasher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def done(self) -> int:
        return self._done

    def submit(self, leaf: Leaf) -> Future[str]:
        key = leaf.identity or id(leaf)
        with self._lock:
            if key not in self._futures:
                self._futures[key] = self._pool.submit(self._sha256, leaf)
            return self._futures[key]

    def _sha256(self, leaf: Leaf) -> str:
        digest = hashlib.sha256()
        with leaf.opener() as handle:
            # Plain reads: as fast as mmap on a warm cache and far steadier (no page-fault storms).
            _hash_read(handle, digest, self._count)
        return digest.hexdigest()

    def _count(self, size: int) -> None:
        with self._lock:
            self._done += size


def _hash_read(handle: IO[bytes], digest: Any, count: Callable[[int], None]) -> None:
    buffer = memoryview(bytearray(_CHUNK))
    readinto = getattr(handle, "readinto", None)
    while True:
        chunk = buffer[: readinto(buffer)] if readinto else memoryview(handle.read(_CHUNK))
        if not chunk.nbytes:
            return
        digest.update(chunk)  # releases the GIL on large buffers
        count(chunk.nbytes)


@dataclass(frozen=True)
class Copy:
    """The verdict on one copy of a checkpoint."""

    where: str  # workspace | cache | remote
    status: str
    location: str
    detail: str | None = None
    sha256: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "location": self.location, "sha256": self.sha256,
                "detail": self.detail}  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    checkpoint: Checkpoint
    copies: list[Copy]

    @property
    def status(self) -> str:
        return max((c.status for c in self.copies), key=_SEVERITY.__getitem__, default=MISSING)

    def copy(self, where: str) -> Copy | None:
        return next((c for c in self.copies if c.where == where), None)

    def as_dict(self) -> dict[str, Any]:
        ckpt = self.checkpoint
        return {
            "name": ckpt.name,
            "path": ckpt.path,
            "format": "directory" if ckpt.directory else "file",
            "sha256": ckpt.sha256,
            "status": self.status,
            "copies": {c.where: c.as_dict() for c in self.copies},
        }


@dataclass
class _Plan:
    """A copy to check: its leaves, or why it is missing before any hashing."""

    checkpoint: Checkpoint
    where: str
    location: str
    leaves: list[Leaf] | None = None
    missing: str | None = None
    corrupted: str | None = None
    remote: str | None = None  # the remote's description, for remote copies


def _run(plans: list[_Plan], hasher: Hasher, label: str) -> list[Copy]:
    """Hash every leaf of every plan (biggest first, so threads finish together), judge each."""
    leaves = sorted((leaf for plan in plans for leaf in plan.leaves or []), key=lambda f: -f.size)
    results = {leaf.identity or id(leaf): hasher.submit(leaf) for leaf in leaves}
    total = sum({leaf.identity or id(leaf): leaf.size for leaf in leaves}.values())
    with progress_bar(label, total, hasher.done):
        return [_judge(plan, results) for plan in plans]


def _judge(plan: _Plan, results: dict[Any, Future[str]]) -> Copy:
    ckpt = plan.checkpoint
    if plan.missing is not None:
        return Copy(plan.where, MISSING, plan.location, plan.missing)
    if plan.corrupted is not None:
        return Copy(plan.where, CORRUPTED, plan.location, plan.corrupted)
    digests: list[tuple[str, str]] = []
    for leaf in plan.leaves or []:
        try:
            digests.append((leaf.relpath, results[leaf.identity or id(leaf)].result()))
        except Exception as exc:
            if dvcerrors.is_missing(exc):
                what = f"{leaf.relpath} is missing" if leaf.relpath else "not found"
                return Copy(plan.where, MISSING, plan.location, what)
            raise _read_failure(plan, exc) from exc
    if ckpt.directory:
        manifest = "".join(f"{d}  {rel}\n" for rel, d in sorted(digests))
        actual = hashlib.sha256(manifest.encode()).hexdigest()
    else:
        actual = digests[0][1]
    if actual == ckpt.sha256:
        return Copy(plan.where, OK, plan.location, sha256=actual)
    detail = f"sha256 {actual} differs from the card's {ckpt.sha256}"
    return Copy(plan.where, CORRUPTED, plan.location, detail, actual)


def _read_failure(plan: _Plan, exc: Exception) -> StateError:
    if isinstance(exc, OSError) and exc.filename and not plan.remote:
        return StateError(f"cannot read {exc.filename}: {exc.strerror or exc}",
                          hint="check the file's permissions")  # fmt: skip
    return dvcerrors.remote_failure("read from", plan.remote or plan.location, exc, [])


def _local_leaf(path: Path, relpath: str) -> Leaf:
    stat = path.stat()  # follows links: a symlinked cache object is the same inode

    def opener() -> IO[bytes]:
        return path.open("rb", buffering=0)

    identity = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return Leaf(relpath, stat.st_size, opener, identity)


def _workspace_plan(project: Project, ckpt: Checkpoint, where: str = "workspace") -> _Plan:
    path = project.inside(ckpt.path)
    return _path_plan(path, ckpt, where, ckpt.path)


def _path_plan(path: Path, ckpt: Checkpoint, where: str, location: str) -> _Plan:
    plan = _Plan(ckpt, where, location)
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


def _cache_plan(project: Project, ckpt: Checkpoint, cache: Path) -> _Plan:
    top = dvcfiles.cache_object(cache, ckpt.md5)
    plan = _Plan(ckpt, "cache", _shown(project, top))
    if not ckpt.directory:
        if top.is_file():
            plan.leaves = [_local_leaf(top, "")]
        else:
            plan.missing = "not in the cache"
        return plan
    try:
        entries = _tree_entries(project, ckpt, top)
    except ValueError as exc:
        plan.corrupted = f"{_shown(project, top)}: {exc}"
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

    A pull from a version-aware remote stores no `.dir` object; the `.dvc` file
    then lists the files itself.
    """
    if top.is_file():
        return dvcfiles.parse_tree(top.read_bytes())
    try:
        out = _pointer_out(project, ckpt)
    except FileNotFoundError:
        return None
    files = out.get("files")
    if not isinstance(files, list):
        return None
    return [(str(f["relpath"]), str(f["md5"])) for f in files]


def _remote_plan(project: Project, ckpt: Checkpoint, remote: store.RemoteStore) -> _Plan:
    plan = _Plan(ckpt, "remote", remote.name, remote=remote.description)
    try:
        objects = remote.objects(_out_key(project, ckpt), ckpt.md5, _pointer_out(project, ckpt))
    except Exception as exc:
        if not dvcerrors.is_missing(exc):
            raise _read_failure(plan, exc) from exc
        plan.missing = f"not on remote {remote.name!r}" + (f" ({exc})" if str(exc) else "")
        return plan
    plan.location = objects[0].url(remote.protocol) if len(objects) == 1 else remote.name
    # Object sizes are only known once opened; spread the card's total for the bar.
    share = ckpt.size // max(len(objects), 1)
    plan.leaves = [Leaf(obj.relpath, share, partial(remote.open, obj)) for obj in objects]
    return plan


def _out_key(project: Project, ckpt: Checkpoint) -> str:
    return project.inside(ckpt.path).relative_to(project.dvc_root.resolve()).as_posix()


def _pointer_out(project: Project, ckpt: Checkpoint) -> dict[str, Any]:
    """The `.dvc` output for this card's version (version-aware remotes record versions there)."""
    dvc_file = project.inside(ckpt.dvc_file)
    if not layout.is_pointer(dvc_file.name) or not dvc_file.is_file():
        return {}
    out = dvcfiles.read_out(dvc_file)
    if out.get("md5") not in (None, ckpt.md5):
        raise FileNotFoundError(f"{ckpt.dvc_file} tracks another version")
    return out


def _shown(project: Project, path: Path) -> str:
    try:
        return path.relative_to(project.root).as_posix()
    except ValueError:
        return str(path)


def verify(
    project: Project,
    checkpoints: list[Checkpoint],
    local: tuple[str, ...] = ("workspace", "cache"),
    remote: str | None = None,
    check_remote: bool = False,
) -> list[Verdict]:
    """sha256 of each copy of each checkpoint compared with its card."""
    cache = dvcfiles.cache_dir(project.dvc_root)
    plans: list[_Plan] = []
    for ckpt in checkpoints:
        if "workspace" in local:
            plans.append(_workspace_plan(project, ckpt))
        if "cache" in local:
            plans.append(_cache_plan(project, ckpt, cache))
    with Hasher(LOCAL_WORKERS) as local_hasher:
        copies = _run(plans, local_hasher, "Verifying")
    if check_remote:
        with store.open_remote(project.dvc_root, remote) as handle, Hasher(REMOTE_WORKERS) as net:
            remote_plans = [_remote_plan(project, ckpt, handle) for ckpt in checkpoints]
            copies += _run(remote_plans, net, f"Verifying {handle.name}")
        plans += remote_plans
    by_name: dict[str, list[Copy]] = {c.name: [] for c in checkpoints}
    for plan, result in zip(plans, copies, strict=True):
        by_name[plan.checkpoint.name].append(result)
    return [Verdict(ckpt, by_name[ckpt.name]) for ckpt in checkpoints]


def verify_references(
    project: Project,
    refs: tuple[str, ...] | list[str],
    everything: bool,
    remote: str | None = None,
    check_remote: bool = False,
) -> list[Verdict]:
    """`verify` of what the user named (NAME..., NAME@REV, MODEL@STAGE or --all)."""
    chosen = select(project, refs, everything)
    return verify(project, chosen, remote=remote, check_remote=check_remote)


def failed(verdicts: list[Verdict], remote_required: bool) -> list[Verdict]:
    """Checkpoints that fail `verify`: a corrupted copy, no intact copy, or not on the remote."""
    bad = []
    for verdict in verdicts:
        remote_copy = verdict.copy("remote")
        if (
            any(c.status == CORRUPTED for c in verdict.copies)
            or not any(c.status == OK for c in verdict.copies)
            or (remote_required and remote_copy is not None and remote_copy.status != OK)
        ):
            bad.append(verdict)
    return bad


# --- quarantine ------------------------------------------------------------------------


def quarantine_folder(near: Path) -> Path:
    """A fresh, timestamped folder in the DVC directory of `near` (else beside it)."""
    try:
        base = Project.discover(near.parent).dvc_root / ".dvc" / QUARANTINE
    except StateError:
        base = near.parent / ".dvcckpt-quarantine"
    return _fresh_folder(base)


def _fresh_folder(base: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder, suffix = base / stamp, 1
    while folder.exists():
        suffix += 1
        folder = base / f"{stamp}-{suffix}"
    return folder


def _move(source: Path, folder: Path, relative: str) -> Path:
    target = folder / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), str(target))
    return target


def _quarantine_checkpoint(
    project: Project, ckpt: Checkpoint, folder: Path
) -> tuple[list[str], list[str]]:
    """Move the bad work-tree copy and every cache object whose md5 is wrong.

    Returns what was moved, and the bad objects' paths inside the cache
    (`files/md5/..`), which are also their paths on a content-addressed remote.
    """
    moved, bad_objects = [], []
    workspace = project.inside(ckpt.path)
    if workspace.exists():
        moved.append(_shown(project, _move(workspace, folder, ckpt.path)))
    cache = dvcfiles.cache_dir(project.dvc_root)
    for md5, obj in _cache_objects(cache, ckpt.md5):
        if obj.is_file() and _md5(obj) != md5.removesuffix(".dir"):
            relative = obj.relative_to(cache).as_posix()
            moved.append(_shown(project, _move(obj, folder, f"cache/{relative}")))
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


def _md5(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()


# --- push, pull, get --------------------------------------------------------------------


@dataclass
class Transfer:
    """What a push, pull or get did, for the summary line and --json."""

    action: str
    remote: str
    checkpoints: list[str]
    files: int
    skipped: list[str] = field(default_factory=list)
    location: str | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "remote": self.remote, "checkpoints": self.checkpoints,
                "files": self.files, "skipped": self.skipped, "location": self.location,
                "note": self.note}  # fmt: skip


def push(
    project: Project, checkpoints: list[Checkpoint], remote: str | None, jobs: int | None,
    skip_missing: bool = False,
) -> Transfer:  # fmt: skip
    """Upload checkpoints after checking their cache copies, so no bad bytes leave."""
    name = store.default_remote(project.dvc_root, remote)
    verdicts = verify(project, checkpoints, local=("cache",))
    corrupted = [v for v in verdicts if v.status == CORRUPTED]
    if corrupted:
        raise CheckFailed(
            f"refusing to push: {len(corrupted)} checkpoint(s) have a corrupted cache copy",
            hint="nothing was uploaded; `dvcckpt verify NAME` shows which copies are intact",
            details=[_problem(v) for v in corrupted],
        )
    absent = [v.checkpoint for v in verdicts if v.status == MISSING]
    if absent and not skip_missing:
        raise StateError(
            f"no local copy to push of {', '.join(c.name for c in absent)}",
            hint="pull or re-add it first; `dvcckpt verify --remote NAME` tells whether "
            "the remote already has it",
        )
    chosen = [c for c in checkpoints if c not in absent]
    files = 0
    if chosen:
        progress = transfer_progress(f"Uploading to {name}", sum(c.size for c in chosen), "rchar")
        targets = [project.inside(c.path) for c in chosen]
        files = store.push(project.dvc_root, targets, name, jobs, progress)
    result = Transfer("push", name, [c.name for c in chosen], files, [c.name for c in absent])
    settings = store.remote_settings(project.dvc_root).remotes.get(name)
    if files and settings and settings.version_aware:
        result.note = "the .dvc files now record the pushed object versions: commit them"
    return result


def pull(
    project: Project, checkpoints: list[Checkpoint], remote: str | None, jobs: int | None
) -> Transfer:
    """Download and check out checkpoints, then re-hash each with sha256 against its card."""
    name = store.default_remote(project.dvc_root, remote)
    for ckpt in checkpoints:
        _require_pointer(project, ckpt)
    cache = dvcfiles.cache_dir(project.dvc_root)
    cached_before = {c.name for c in checkpoints if dvcfiles.cache_object(cache, c.md5).is_file()}
    progress = transfer_progress(
        f"Downloading from {name}", sum(c.size for c in checkpoints), "wchar"
    )
    targets = [project.inside(c.path) for c in checkpoints]
    files = store.pull(project.dvc_root, targets, name, jobs, progress)
    verdicts = verify(project, checkpoints, local=("workspace",))
    bad = [v for v in verdicts if v.status != OK]
    if bad:
        _refuse_download(project, bad, name, cached_before)
    return Transfer("pull", name, [c.name for c in checkpoints], files)


def _require_pointer(project: Project, ckpt: Checkpoint) -> None:
    """Pulling into the work tree needs the work tree to track this very version."""
    dvc_file = project.inside(ckpt.dvc_file)
    if not layout.is_pointer(dvc_file.name):
        return  # a pipeline output (dvc.yaml): DVC resolves the output path itself
    out = dvcfiles.read_out(dvc_file) if dvc_file.is_file() else None
    if out is None or out.get("md5") not in (None, ckpt.md5):
        state = "another version of" if out else "no DVC pointer for"
        raise StateError(
            f"the work tree holds {state} {ckpt.path} (checkpoint {ckpt.name})",
            hint=f"check out the revision that registered it, or download it elsewhere: "
            f"dvcckpt get . {ckpt.name}@REV -o OUT",
        )


def _refuse_download(
    project: Project, bad: list[Verdict], remote: str, cached_before: set[str]
) -> None:
    folder = _fresh_folder(project.dvc_root / ".dvc" / QUARANTINE)
    details, suspects = [], []
    for verdict in bad:
        details.append(_problem(verdict))
        if verdict.status == CORRUPTED:
            moved, objects = _quarantine_checkpoint(project, verdict.checkpoint, folder)
            details += [f"  moved to {m}" for m in moved]
            suspects += objects
    names = {v.checkpoint.name for v in bad}
    downloaded = not cached_before >= names
    source = (
        f"download from {store.describe_remote(project.dvc_root, remote)}"
        if downloaded
        else "checkout from the local DVC cache"
    )
    raise CheckFailed(
        f"sha256 verification failed after {source}: {', '.join(sorted(names))}",
        hint=f"bad copies are in {_shown(project, folder)} for inspection; nothing was deleted "
        f"on the remote. {_repair(project, remote, suspects, downloaded)}",
        details=details,
    )


def _repair(project: Project, remote: str, suspects: list[str], downloaded: bool) -> str:
    if not downloaded:
        return "The cache copy was bad: pull again to download a fresh one"
    settings = store.remote_settings(project.dvc_root).remotes.get(remote)
    if suspects and settings and not settings.version_aware:
        url = f"{settings.url.rstrip('/')}/{suspects[0]}"
        return (
            f"The remote object {url} is corrupted: overwrite it with an intact copy of "
            f".dvc/cache/{suspects[0]} from a machine where `dvcckpt verify NAME` passes"
        )
    return "`dvcckpt verify --remote NAME` tells whether the remote copy is corrupted"


def _problem(verdict: Verdict) -> str:
    worst = [c for c in verdict.copies if c.status != OK]
    parts = [f"{c.where} {c.status}" + (f": {c.detail}" if c.detail else "") for c in worst]
    return f"{verdict.checkpoint.name} ({verdict.checkpoint.path}): {'; '.join(parts)}"


def get(source: str, reference: str, out: Path, force: bool = False) -> Transfer:
    """Download a checkpoint from another repository (a path or git URL) and verify it.

    The download lands beside OUT under a temporary name and only replaces OUT
    once its sha256 matches the card read from that repository.
    """
    out = out.absolute()
    if out.exists() and not force:
        raise UsageError(f"{out} already exists", hint="choose another -o PATH or pass --force")
    if not out.parent.is_dir():
        raise UsageError(f"{out.parent}: no such directory", hint="create it first")
    with _repository(source) as root:
        project = Project.discover(root)
        ckpt = Checkpoint.of(resolve(project, reference))
        partial_out = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent)) / out.name
        try:
            rev = _revision_of(project, reference)
            store.get(str(root), ckpt.path, partial_out, rev=rev, shown=source)
            plan = _path_plan(partial_out, ckpt, "download", str(out))
            with Hasher(LOCAL_WORKERS) as hasher:
                [result] = _run([plan], hasher, "Verifying")
            if result.status != OK:
                _refuse_get(source, ckpt, result, partial_out, out)
            if out.exists():
                _remove(out)
            partial_out.rename(out)
        finally:
            shutil.rmtree(partial_out.parent, ignore_errors=True)
    return Transfer("get", source, [ckpt.name], len(plan.leaves or []), location=str(out))


def _refuse_get(source: str, ckpt: Checkpoint, result: Copy, download: Path, out: Path) -> None:
    folder = quarantine_folder(out)
    moved = _move(download, folder, out.name) if download.exists() else folder
    raise CheckFailed(
        f"sha256 verification failed for {ckpt.name} from {source}: {result.detail}",
        hint=f"the bad copy is in {moved} for inspection; {out.name} was not written and "
        "nothing was deleted on the remote. `dvcckpt verify --remote NAME` in that "
        "repository tells whether its remote object is corrupted",
    )


@contextmanager
def _repository(source: str) -> Iterator[Path]:
    """A local checkout of `source`: the repository itself for a path, else a fresh clone."""
    if "://" not in source and Path(source).is_dir():
        yield Path(source).resolve()
        return
    with tempfile.TemporaryDirectory(prefix="dvcckpt-get-") as temp:
        clone = Path(temp) / "repo"
        done = subprocess.run(["git", "clone", "--quiet", source, str(clone)],
                              capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["?"])[-1]
            raise StateError(f"cannot clone {source}: {reason}",
                             hint="check the repository URL and your access to it")  # fmt: skip
        yield clone


def _revision_of(project: Project, reference: str) -> str | None:
    target, _, suffix = reference.rpartition("@")
    if not target or suffix in project.config.stages or Path(reference).exists():
        return None
    return suffix


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


# --- remote settings and their health --------------------------------------------------


def add_remote(
    project: Project,
    name: str,
    url: str,
    *,
    endpoint: str | None = None,
    default: bool = False,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    sse: str | None = None,
    version_aware: bool = False,
    force: bool = False,
) -> dvcconfig.RemoteConfig:
    """Configure a remote; credentials go to the git-ignored `.dvc/config.local`."""
    s3_only = {"--endpoint": endpoint, "--sse": sse, "--access-key-id": access_key_id,
               "--version-aware": version_aware or None}  # fmt: skip
    given = [option for option, value in s3_only.items() if value]
    if given and not url.startswith("s3://"):
        raise UsageError(f"{', '.join(given)} apply to s3:// remotes only", hint=f"got {url}")
    if endpoint and urlparse(endpoint).scheme not in ("http", "https"):
        raise UsageError(f"--endpoint {endpoint}: not an http(s) URL",
                         hint="e.g. --endpoint https://s3.example.com")  # fmt: skip
    if bool(access_key_id) != bool(secret_access_key):
        raise UsageError("--access-key-id and --secret-access-key go together",
                         hint="give both, or neither to use AWS_* variables or a profile")  # fmt: skip
    settings: dict[str, Any] = {"url": url}
    if endpoint:
        settings["endpointurl"] = endpoint
    if sse:
        settings["sse"] = sse
    if version_aware:
        settings["version_aware"] = True
    secrets = {"access_key_id": access_key_id, "secret_access_key": secret_access_key}
    store.set_remote(project.dvc_root, name, settings,
                     {k: v for k, v in secrets.items() if v}, default=default, force=force)  # fmt: skip
    return store.remote_settings(project.dvc_root).remotes[name]


@dataclass(frozen=True)
class RemoteWarning:
    remote: str
    key: str  # remote.https | remote.sse | remote.credentials
    message: str


REMOTE_FIXES = {
    "remote.https": "use an https:// endpoint: plain http sends data and request signatures "
    "in clear text (dvcckpt remote add NAME URL --endpoint https://... --force)",
    "remote.sse": "encrypt objects at rest: dvc remote modify NAME sse AES256 "
    "(or sse_kms_key_id KEY)",
    "remote.credentials": "move credentials out of the committed .dvc/config: "
    "dvc remote modify --local NAME access_key_id ... (and remove them from .dvc/config)",
}


def remote_warnings(dvc_root: Path) -> list[RemoteWarning]:
    """Plain http to another host, no server-side encryption, committed credentials."""
    if not (dvc_root / ".dvc").is_dir():
        return []
    found = []
    for remote in store.remote_settings(dvc_root).remotes.values():
        for address in (remote.url, remote.endpoint or ""):
            parsed = urlparse(address)
            if parsed.scheme == "http" and not _loopback(parsed.hostname or ""):
                found.append(RemoteWarning(remote.name, "remote.https",
                                           f"plain http to {parsed.hostname}"))  # fmt: skip
        encrypted = {"sse", "sse_kms_key_id", "sse_customer_key"} & set(remote.settings)
        if remote.url.startswith("s3://") and not encrypted:
            found.append(RemoteWarning(remote.name, "remote.sse", "no server-side encryption"))
        if any(remote.levels.get(k) == "repo" for k in dvcconfig.CREDENTIAL_KEYS):
            found.append(RemoteWarning(remote.name, "remote.credentials",
                                       "credentials in the committed .dvc/config"))  # fmt: skip
    return found


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
