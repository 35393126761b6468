"""push and pull, each checked with md5 and sha256 against the card.

A push first verifies the cache copies so no bad bytes leave, and re-checks the
remote copies DVC would skip as already there (`remote_check`). A pull takes each
object from the cache when intact, else downloads it, and builds the checkpoint in
a staging folder (`checkout`); only a copy that matches its card is moved into
place. DVC uploads the bytes; nothing is ever deleted on a remote.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dvcckpt.adapters import atomic, dvcfiles, dvcpipeline, dvcrepo
from dvcckpt.core import layout
from dvcckpt.errors import CheckFailed, StateError
from dvcckpt.project import Project
from dvcckpt.storage import checkout, quarantine
from dvcckpt.storage.copies import shown
from dvcckpt.storage.progress import transfer_progress
from dvcckpt.storage.recheck import recheck
from dvcckpt.storage.select import Checkpoint
from dvcckpt.storage.verify import CORRUPTED, MISSING, REMOTE_WORKERS, problem, verify


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
    name = dvcrepo.default_remote(project.dvc_root, remote)
    verdicts = verify(project, checkpoints, local=("cache",))
    corrupted = [v for v in verdicts if v.status == CORRUPTED]
    if corrupted:
        raise CheckFailed(
            f"refusing to push: {len(corrupted)} checkpoint(s) have a corrupted cache copy",
            hint="nothing was uploaded; `dvcckpt verify NAME` shows which copies are intact",
            details=[problem(v) for v in corrupted],
        )
    absent = [v.checkpoint for v in verdicts if v.status == MISSING]
    if absent and not skip_missing:
        raise StateError(
            f"no local copy to push of {', '.join(c.name for c in absent)}",
            hint="pull or re-add it first; `dvcckpt verify --remote NAME` tells whether "
            "the remote already has it",
        )
    chosen = [c for c in checkpoints if c not in absent]
    for ckpt in chosen:
        if not layout.is_pointer(ckpt.dvc_file):
            _require_locked(project, ckpt)  # DVC uploads what dvc.lock records
    files = 0
    # DVC skips what the remote already holds, whatever its bytes: check those first.
    checked = recheck(project, chosen, name)
    if chosen:
        progress = transfer_progress(f"Uploading to {name}", sum(c.size for c in chosen), "rchar")
        targets = [project.inside(c.path) for c in chosen]
        files = dvcrepo.push(project.dvc_root, targets, name, jobs, progress)
    files += len(checked.replaced)
    result = Transfer("push", name, [c.name for c in chosen], files, [c.name for c in absent])
    settings = dvcrepo.remote_settings(project.dvc_root).remotes.get(name)
    if checked.replaced:
        result.note = (
            f"replaced {len(checked.replaced)} corrupted remote object(s) "
            f"({checked.replaced[0]}{', ...' if len(checked.replaced) > 1 else ''}) with the "
            f"verified cache copies; the corrupted copies are kept in "
            f"{shown(project, checked.quarantine or project.root)}"
        )
    elif files and settings and settings.version_aware:
        result.note = "the .dvc files now record the pushed object versions: commit them"
    return result


def pull(
    project: Project, checkpoints: list[Checkpoint], remote: str | None, jobs: int | None
) -> Transfer:
    """Check out checkpoints from verified objects: the cache's when intact, else downloads.

    A bad cache copy is quarantined and downloaded afresh (the pull repairs the cache);
    a checkpoint whose bytes do not match its card is refused with all it downloaded
    quarantined; the work tree only ever receives a complete, verified copy.
    """
    name = dvcrepo.default_remote(project.dvc_root, remote)
    outs = [_require_pointer(project, ckpt) for ckpt in checkpoints]
    present = _intact_work_tree(project, checkpoints)
    cache = dvcfiles.cache_dir(project.dvc_root)
    staging = _staging(project)
    progress = transfer_progress(
        f"Downloading from {name}", sum(c.size for c in checkpoints), "wchar"
    )
    try:
        with checkout.Builder(project.dvc_root, cache, staging, name, repair=True,
                              jobs=jobs or REMOTE_WORKERS) as builder, progress:  # fmt: skip
            built = [builder.build(c, out, _out_key(project, c))
                     for c, out in zip(checkpoints, outs, strict=True)]  # fmt: skip
        for index, done in enumerate(built):
            if done.problem is None:
                checkout.add_to_cache(cache, done)
                if done.ckpt.name not in present:
                    _place(project, done, staging / "tree" / str(index))
        bad = [b for b in built if b.problem is not None]
        if bad:
            _refuse_download(project, builder, bad, name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = len({obj.md5 for b in built for _, obj in b.objects if obj.downloaded})
    files += sum(1 for b in built if b.listing_downloaded)
    pulled = Transfer("pull", name, [c.name for c in checkpoints], files)
    if builder.bad_cache:
        pulled.note = (f"{len(builder.bad_cache)} corrupted cache object(s) replaced by "
                       f"verified downloads; the bad copies are in "
                       f"{shown(project, builder.quarantine or staging)}")  # fmt: skip
    return pulled


def _require_pointer(project: Project, ckpt: Checkpoint) -> dict[str, Any]:
    """The `.dvc` output tracking this very version (pulling needs the work tree to track it)."""
    dvc_file = project.inside(ckpt.dvc_file)
    if not layout.is_pointer(dvc_file.name):
        _require_locked(project, ckpt)
        return {}  # a pipeline output (dvc.yaml): the card's md5 is all there is
    out = dvcfiles.read_out(dvc_file) if dvc_file.is_file() else None
    if out is None or dvcfiles.pointer_md5(dvc_file, out) != ckpt.md5:
        state = "another version of" if out else "no DVC pointer for"
        raise StateError(
            f"the work tree holds {state} {ckpt.path} (checkpoint {ckpt.name})",
            hint=f"check out the revision that registered it, or download it elsewhere: "
            f"dvcckpt get . {ckpt.name}@REV -o OUT",
        )
    return out


def _require_locked(project: Project, ckpt: Checkpoint) -> None:
    """A pipeline output's `dvc.lock` records this very version (DVC acts on the lock)."""
    recorded = dvcpipeline.locked_md5(project.root, project.inside(ckpt.dvc_file), ckpt.path)
    if recorded != ckpt.md5:
        lock = Path(ckpt.dvc_file).with_name("dvc.lock").as_posix()
        state = "records another version of" if recorded else "does not record"
        raise StateError(
            f"the work tree's {lock} {state} {ckpt.path} (checkpoint {ckpt.name})",
            hint=f"check out the revision that registered it (its {lock} with it), or "
            f"download it elsewhere: dvcckpt get . {ckpt.name}@REV -o OUT",
        )


def _intact_work_tree(project: Project, checkpoints: list[Checkpoint]) -> set[str]:
    """Names whose work-tree copy is intact; a modified copy is never overwritten."""
    verdicts = verify(project, checkpoints, local=("workspace",))
    modified = [v for v in verdicts if v.status == CORRUPTED]
    if modified:
        raise StateError(
            f"the work tree holds a modified copy of {', '.join(v.checkpoint.path for v in modified)}",
            hint="move it aside (it differs from the registered checkpoint) and pull again",
            details=[problem(v) for v in modified],
        )
    return {v.checkpoint.name for v in verdicts if v.status != MISSING}


def _staging(project: Project) -> Path:
    """A fresh folder inside the repository, git-ignored (`.dvc/tmp`), on its file system."""
    base = project.dvc_root / ".dvc" / "tmp"
    for stale in base.glob("dvcckpt-checkout-*"):
        pid = stale.name.split("-")[2]
        if pid.isdigit() and not atomic.process_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)  # left by a killed pull
    folder = base / f"dvcckpt-checkout-{os.getpid()}-{secrets.token_hex(4)}"
    folder.mkdir(parents=True)
    return folder


def _place(project: Project, built: checkout.Built, tree: Path) -> None:
    """Assemble a verified checkpoint in the staging folder, then rename it into place."""
    target = project.inside(built.ckpt.path)
    checkout.assemble(built, tree)
    target.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(target):  # appeared since it was checked: never overwritten
        raise StateError(f"{built.ckpt.path} appeared in the work tree during the pull",
                         hint="move it aside and pull again")  # fmt: skip
    os.rename(tree, target)


def _out_key(project: Project, ckpt: Checkpoint) -> str:
    return project.inside(ckpt.path).relative_to(project.dvc_root.resolve()).as_posix()


def _refuse_download(
    project: Project, builder: checkout.Builder, bad: list[checkout.Built], remote: str
) -> None:
    """Quarantine everything the refused checkpoints downloaded, then say what to replace."""
    folder = builder.quarantine or quarantine.project_folder(project)
    details, suspects = [], []
    for built in bad:
        details.append(f"{built.ckpt.name} ({built.ckpt.path}): {built.problem}")
        suspects += built.suspects
        for relpath, obj in _downloads(builder, built):
            name = built.ckpt.path + (".dir" if relpath is None else f"/{relpath}")
            moved = quarantine.move(obj, folder, name.rstrip("/"))
            details.append(f"  moved to {shown(project, moved)}")
    names = ", ".join(sorted(b.ckpt.name for b in bad))
    raise CheckFailed(
        f"verification failed for {names} (from {dvcrepo.describe_remote(project.dvc_root, remote)})",
        hint=f"nothing was written to the work tree and nothing was deleted on the remote; "
        f"downloads and bad cache copies are in {shown(project, folder)}. "
        + _repair(project, remote, suspects),
        details=details,
    )


def _downloads(builder: checkout.Builder, built: checkout.Built) -> list[tuple[str | None, Path]]:
    """The staged files a refused checkpoint downloaded, good or bad, by relative path
    (None for its `.dir` listing).

    Intact checkpoints' downloads were already moved into the cache, so whatever of
    this checkpoint's objects is still staged came from this refused download.
    """
    staged = builder.staging / "objects"
    found: list[tuple[str | None, Path]] = [(rel, staged / md5) for rel, md5 in built.entries]
    if built.ckpt.directory:  # its downloaded `.dir` listing (None), shown beside the folder
        found.append((None, staged / built.ckpt.md5))
    return [(rel, path) for rel, path in found if path.is_file()]


def _repair(project: Project, remote: str, suspects: list[str]) -> str:
    settings = dvcrepo.remote_settings(project.dvc_root).remotes.get(remote)
    if suspects and settings and not settings.version_aware:
        return (
            f"The remote object {suspects[0]} is corrupted: `dvcckpt push NAME` on a machine "
            "where `dvcckpt verify NAME` passes replaces it with the intact copy"
        )
    return "`dvcckpt verify --remote NAME` tells whether the remote copy is corrupted"
