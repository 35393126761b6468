"""push, pull and get, each checked with sha256 against the card.

A push first verifies the cache copies so no bad bytes leave; a pull or get
re-hashes what arrived and quarantines it on a mismatch. DVC moves the bytes.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dvcckpt.adapters import dvcfiles, dvcrepo, git
from dvcckpt.core import layout
from dvcckpt.errors import CheckFailed, StateError, UsageError
from dvcckpt.project import Project
from dvcckpt.storage import quarantine
from dvcckpt.storage.copies import path_plan, shown
from dvcckpt.storage.progress import transfer_progress
from dvcckpt.storage.select import Checkpoint, resolve
from dvcckpt.storage.verify import (
    CORRUPTED,
    LOCAL_WORKERS,
    MISSING,
    OK,
    Copy,
    Hasher,
    Verdict,
    problem,
    run,
    verify,
)


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
    files = 0
    if chosen:
        progress = transfer_progress(f"Uploading to {name}", sum(c.size for c in chosen), "rchar")
        targets = [project.inside(c.path) for c in chosen]
        files = dvcrepo.push(project.dvc_root, targets, name, jobs, progress)
    result = Transfer("push", name, [c.name for c in chosen], files, [c.name for c in absent])
    settings = dvcrepo.remote_settings(project.dvc_root).remotes.get(name)
    if files and settings and settings.version_aware:
        result.note = "the .dvc files now record the pushed object versions: commit them"
    return result


def pull(
    project: Project, checkpoints: list[Checkpoint], remote: str | None, jobs: int | None
) -> Transfer:
    """Download and check out checkpoints, then re-hash each with sha256 against its card."""
    name = dvcrepo.default_remote(project.dvc_root, remote)
    for ckpt in checkpoints:
        _require_pointer(project, ckpt)
    cache = dvcfiles.cache_dir(project.dvc_root)
    cached_before = {c.name for c in checkpoints if dvcfiles.cache_object(cache, c.md5).is_file()}
    progress = transfer_progress(
        f"Downloading from {name}", sum(c.size for c in checkpoints), "wchar"
    )
    targets = [project.inside(c.path) for c in checkpoints]
    files = dvcrepo.pull(project.dvc_root, targets, name, jobs, progress)
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
    folder = quarantine.project_folder(project)
    details, suspects = [], []
    for verdict in bad:
        details.append(problem(verdict))
        if verdict.status == CORRUPTED:
            moved, objects = quarantine.quarantine_checkpoint(project, verdict.checkpoint, folder)
            details += [f"  moved to {m}" for m in moved]
            suspects += objects
    names = {v.checkpoint.name for v in bad}
    downloaded = not cached_before >= names
    source = (
        f"download from {dvcrepo.describe_remote(project.dvc_root, remote)}"
        if downloaded
        else "checkout from the local DVC cache"
    )
    raise CheckFailed(
        f"sha256 verification failed after {source}: {', '.join(sorted(names))}",
        hint=f"bad copies are in {shown(project, folder)} for inspection; nothing was deleted "
        f"on the remote. {_repair(project, remote, suspects, downloaded)}",
        details=details,
    )


def _repair(project: Project, remote: str, suspects: list[str], downloaded: bool) -> str:
    if not downloaded:
        return "The cache copy was bad: pull again to download a fresh one"
    settings = dvcrepo.remote_settings(project.dvc_root).remotes.get(remote)
    if suspects and settings and not settings.version_aware:
        url = f"{settings.url.rstrip('/')}/{suspects[0]}"
        return (
            f"The remote object {url} is corrupted: overwrite it with an intact copy of "
            f".dvc/cache/{suspects[0]} from a machine where `dvcckpt verify NAME` passes"
        )
    return "`dvcckpt verify --remote NAME` tells whether the remote copy is corrupted"


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
            dvcrepo.get(str(root), ckpt.path, partial_out, rev=rev, shown=source)
            plan = path_plan(partial_out, ckpt, "download", str(out))
            with Hasher(LOCAL_WORKERS) as hasher:
                [result] = run([plan], hasher, "Verifying")
            if result.status != OK:
                _refuse_get(source, ckpt, result, partial_out, out)
            if out.exists():
                _remove(out)
            partial_out.rename(out)
        finally:
            shutil.rmtree(partial_out.parent, ignore_errors=True)
    return Transfer("get", source, [ckpt.name], len(plan.leaves or []), location=str(out))


def _refuse_get(source: str, ckpt: Checkpoint, result: Copy, download: Path, out: Path) -> None:
    folder = quarantine.quarantine_folder(out)
    moved = quarantine.move(download, folder, out.name) if download.exists() else folder
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
        # Run from the current directory, so a relative source (a bundle, `host:path`)
        # means what the user typed; the clone itself goes to the temporary folder.
        done = git.run(Path.cwd(), ["clone", "--quiet", source, str(clone)])
        if done.returncode != 0:
            raise git.failure(f"cannot clone {source}", done,
                              "check the repository URL and your access to it")  # fmt: skip
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
