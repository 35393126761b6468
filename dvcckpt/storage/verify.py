"""Verification: hash every copy of a checkpoint with sha256 and judge it against its card.

Hashing runs on a small thread pool (hashlib releases the GIL), so several
copies or checkpoints use every core, and a workspace file that is a link to
its cache object is read once.

A live checkpoint should exist: a copy missing from the work tree fails, as does one
with no intact copy. A retired or pruned one (its card is a tombstone) is listed as
such, not hashed, and never fails.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from dvcckpt.adapters import dvcerrors, dvcfiles, dvcrepo, hashing
from dvcckpt.cards import card as card_module
from dvcckpt.cards import resolve as resolver
from dvcckpt.core import layout, manifest
from dvcckpt.errors import DvcckptError, StateError
from dvcckpt.project import Project
from dvcckpt.storage.copies import Leaf, Plan, cache_plan, remote_plan, workspace_plan
from dvcckpt.storage.progress import progress_bar
from dvcckpt.storage.select import Checkpoint, select

LOCAL_WORKERS = hashing.LOCAL_WORKERS  # local disks: one thread per core, at most 4
# Network-bound streams: the threads mostly wait for bytes, so twice the cores (at least 4).
REMOTE_WORKERS = max(4, 2 * LOCAL_WORKERS)

OK, MISSING, CORRUPTED = "ok", "missing", "corrupted"
_SEVERITY = {OK: 0, MISSING: 1, CORRUPTED: 2}


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
        with self._lock:
            if leaf.key not in self._futures:
                self._futures[leaf.key] = self._pool.submit(self._sha256, leaf)
            return self._futures[leaf.key]

    def _sha256(self, leaf: Leaf) -> str:
        digest = hashlib.sha256()
        with leaf.opener() as handle:
            # Plain reads: as fast as mmap on a warm cache and far steadier (no page-fault storms).
            # A local file's size is exact (a small file gets a small buffer); a remote
            # leaf's is only its share of the card's total.
            size = leaf.size if leaf.identity else None
            hashing.feed(handle, digest, self._count, size)
        return digest.hexdigest()

    def _count(self, size: int) -> None:
        with self._lock:
            self._done += size


@dataclass(frozen=True)
class Copy:
    """The verdict on one copy of a checkpoint."""

    where: str  # workspace | cache | remote | download
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
    tombstone: str | None = None  # retired | pruned: its data is not expected to exist

    @property
    def status(self) -> str:
        if self.tombstone is not None:
            return self.tombstone
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


def run(plans: list[Plan], hasher: Hasher, label: str) -> list[Copy]:
    """Hash every leaf of every plan (biggest first, so threads finish together), judge each."""
    leaves = sorted((leaf for plan in plans for leaf in plan.leaves or []), key=lambda f: -f.size)
    results = {leaf.key: hasher.submit(leaf) for leaf in leaves}
    total = sum({leaf.key: leaf.size for leaf in leaves}.values())
    with progress_bar(label, total, hasher.done):
        return [_judge(plan, results) for plan in plans]


def _judge(plan: Plan, results: dict[Any, Future[str]]) -> Copy:
    ckpt = plan.checkpoint
    if plan.missing is not None:
        return Copy(plan.where, MISSING, plan.location, plan.missing)
    if plan.corrupted is not None:
        return Copy(plan.where, CORRUPTED, plan.location, plan.corrupted)
    digests: list[tuple[str, str]] = []
    for leaf in plan.leaves or []:
        try:
            digests.append((leaf.relpath, results[leaf.key].result()))
        except Exception as exc:
            if dvcerrors.is_missing(exc):
                what = f"{leaf.relpath} is missing" if leaf.relpath else "not found"
                return Copy(plan.where, MISSING, plan.location, what)
            raise plan.read_failure(exc) from exc
    actual = manifest.manifest_sha256(digests) if ckpt.directory else digests[0][1]
    if actual == ckpt.sha256:
        return Copy(plan.where, OK, plan.location, sha256=actual)
    detail = f"sha256 {actual} differs from the card's {ckpt.sha256}"
    return Copy(plan.where, CORRUPTED, plan.location, detail, actual)


def verify(
    project: Project,
    checkpoints: list[Checkpoint],
    local: tuple[str, ...] = ("workspace", "cache"),
    remote: str | None = None,
    check_remote: bool = False,
) -> list[Verdict]:
    """sha256 of each copy of each checkpoint compared with its card."""
    cache = dvcfiles.cache_dir(project.dvc_root)
    plans: list[Plan] = []
    for ckpt in checkpoints:
        if "workspace" in local:
            plans.append(workspace_plan(project, ckpt))
        if "cache" in local:
            plans.append(cache_plan(project, ckpt, cache))
    with Hasher(LOCAL_WORKERS) as local_hasher:
        copies = run(plans, local_hasher, "Verifying")
    if check_remote:
        with dvcrepo.open_remote(project.dvc_root, remote) as handle, Hasher(REMOTE_WORKERS) as net:
            remote_plans = [remote_plan(project, ckpt, handle) for ckpt in checkpoints]
            copies += run(remote_plans, net, f"Verifying {handle.name}")
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
    """`verify` of what the user named (NAME..., NAME@REV, MODEL@STAGE or --all);
    retired and pruned checkpoints are listed with their tombstone, unhashed."""
    if everything and not refs:
        chosen, stones = _all_checkpoints(project)
    else:
        chosen = select(project, refs, everything, tombstones=True)
        stones = _tombstones(project, chosen)
    live = [ckpt for ckpt in chosen if ckpt not in stones]
    verdicts = iter(verify(project, live, remote=remote, check_remote=check_remote))
    return [
        _unchecked(ckpt, *stones[ckpt]) if ckpt in stones else next(verdicts) for ckpt in chosen
    ]


def _all_checkpoints(
    project: Project,
) -> tuple[list[Checkpoint], dict[Checkpoint, tuple[str, str]]]:
    """Every card in the work tree (tombstones too), and the tombstoned ones' kind and why."""
    limit = project.config.card_max_bytes
    cards = [card_module.read(path, limit, full_validation=False)
             for path in resolver.card_files(project)]  # fmt: skip
    if not cards:
        raise StateError(f"no checkpoints registered in {project.root}", hint="dvcckpt add PATH")
    chosen = list(
        {(c.data["checkpoint"]["path"], c.name): Checkpoint.of(c) for c in cards}.values()
    )
    stones = {Checkpoint.of(c): _stone(c.data) for c in cards if c.data.get("tombstone")}
    return chosen, stones


def _tombstones(project: Project, chosen: list[Checkpoint]) -> dict[Checkpoint, tuple[str, str]]:
    """The named checkpoints (`NAME@REV` too) whose work-tree cards of the same data are
    all tombstones. A path written again by another run has several cards, all in the
    checkpoint's folder, so that folder's cards are read."""
    found: dict[Checkpoint, tuple[str, str]] = {}
    for ckpt in chosen:
        same = [data for data in _cards_beside(project, ckpt.path)
                if data["checkpoint"]["path"] == ckpt.path
                and data["checkpoint"]["sha256"] == ckpt.sha256]  # fmt: skip
        if same and all(data.get("tombstone") for data in same):
            found[ckpt] = _stone(same[-1])
    return found


def _cards_beside(project: Project, path: str) -> list[dict[str, Any]]:
    """The readable cards in the folder of the checkpoint at `path`."""
    folder = project.inside(path).parent
    try:
        names = sorted(name for name in os.listdir(folder) if layout.is_card(name))
    except OSError:
        return []
    cards = []
    for name in names:
        try:
            cards.append(card_module.read(folder / name, project.config.card_max_bytes,
                                          full_validation=False).data)  # fmt: skip
        except DvcckptError:
            continue  # a broken card is no tombstone: the checkpoint is verified as live
    return cards


def _stone(data: dict[str, Any]) -> tuple[str, str]:
    """A tombstone's kind (`retired` unless it says otherwise) and what the listing says."""
    stone = data["tombstone"] if isinstance(data["tombstone"], dict) else {}
    kind = str(stone.get("kind") or "retired")
    when = str(stone.get("archived_at") or "")[:10]
    return kind, f"{str(stone.get('reason') or '')[:200]} ({when}); not checked"


def _unchecked(ckpt: Checkpoint, kind: str, detail: str) -> Verdict:
    return Verdict(ckpt, [Copy("workspace", kind, ckpt.path, detail)], tombstone=kind)


def failed(verdicts: list[Verdict], remote_required: bool) -> list[Verdict]:
    """Checkpoints that fail `verify`: a corrupted copy, a work-tree copy missing (a live
    checkpoint should exist), no intact copy, or not on the remote. Retired and pruned
    checkpoints never fail."""
    bad = []
    for verdict in verdicts:
        if verdict.tombstone is not None:
            continue
        remote_copy = verdict.copy("remote")
        workspace = verdict.copy("workspace")
        if (
            any(c.status == CORRUPTED for c in verdict.copies)
            or not any(c.status == OK for c in verdict.copies)
            or (workspace is not None and workspace.status == MISSING)
            or (remote_required and remote_copy is not None and remote_copy.status != OK)
        ):
            bad.append(verdict)
    return bad


def problem(verdict: Verdict) -> str:
    """One line naming a checkpoint and what is wrong with each of its bad copies."""
    worst = [c for c in verdict.copies if c.status != OK]
    parts = [f"{c.where} {c.status}" + (f": {c.detail}" if c.detail else "") for c in worst]
    return f"{verdict.checkpoint.name} ({verdict.checkpoint.path}): {'; '.join(parts)}"
