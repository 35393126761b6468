"""`get`: a checkpoint of another repository, verified, written to OUT and nowhere else.

The checkpoint is built from that repository's cache (intact objects only) or its
remote in a temporary sibling of OUT and renamed into place once it matches its
card. An existing OUT is replaced (with --force) only when it is a copy of this
checkpoint: a file for a file, a folder holding only files the checkpoint lists for
a directory; never a folder with other files, a `.git`, the current directory or
one of its parents.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dvcckpt.adapters import dvcfiles, git
from dvcckpt.core import layout
from dvcckpt.errors import CheckFailed, UsageError
from dvcckpt.project import Project
from dvcckpt.storage import checkout, quarantine
from dvcckpt.storage.copies import pointer_out
from dvcckpt.storage.select import Checkpoint, resolve
from dvcckpt.storage.transfer import Transfer
from dvcckpt.storage.verify import REMOTE_WORKERS


def get(source: str, reference: str, out: Path, force: bool = False) -> Transfer:
    """Download a checkpoint from another repository (a path or git URL) and verify it."""
    out = Path(os.path.abspath(out))
    if os.path.lexists(out) and not force:
        raise UsageError(f"{out} already exists", hint="choose another -o PATH or pass --force")
    if not out.parent.is_dir():
        raise UsageError(f"{out.parent}: no such directory", hint="create it first")
    with _repository(source) as root:
        project = Project.discover(root)
        ckpt = Checkpoint.of(resolve(project, reference))
        if os.path.lexists(out):
            _refuse_unless_replaceable(out, ckpt, root, None)
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.dvcckpt-", dir=out.parent))
        try:
            built = _build(project, ckpt, _pointer(project, ckpt, reference), work)
            if built.problem is not None:
                _refuse_get(source, built, work, out)
            tree = work / out.name
            checkout.assemble(built, tree)
            _replace(out, tree, ckpt, root, {rel for rel, _ in built.entries}, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    files = sum(1 for _, obj in built.objects if obj.downloaded)
    return Transfer("get", source, [ckpt.name], files or len(built.objects), location=str(out))


def _build(project: Project, ckpt: Checkpoint, out: dict[str, Any], work: Path) -> checkout.Built:
    cache = dvcfiles.cache_dir(project.dvc_root)
    key = project.inside(ckpt.path).relative_to(project.dvc_root.resolve()).as_posix()
    # Another repository's cache is only read: a bad copy there is passed over, not moved.
    with checkout.Builder(project.dvc_root, cache, work, None, repair=False,
                          jobs=REMOTE_WORKERS) as builder:  # fmt: skip
        return builder.build(ckpt, out, key)


def _pointer(project: Project, ckpt: Checkpoint, reference: str) -> dict[str, Any]:
    """The `.dvc` output of this version (version-aware remotes record versions there)."""
    revision = _revision_of(project, reference)
    dvc_file = project.inside(ckpt.dvc_file)
    if not layout.is_pointer(dvc_file.name):
        return {}
    if revision is None:
        return pointer_out(project, ckpt, missing_ok=True)
    spec = f"{revision}:{dvc_file.relative_to(project.root).as_posix()}"
    blob = git.read_blobs(project.root, [spec]).get(spec)
    if blob is None:
        return {}
    out = dvcfiles.parse_out(blob.decode("utf-8", "replace"), dvc_file)
    return out if dvcfiles.pointer_md5(dvc_file, out) == ckpt.md5 else {}


def _refuse_unless_replaceable(
    out: Path, ckpt: Checkpoint, source: Path, listed: set[str] | None
) -> None:
    """--force replaces only a previous copy of this checkpoint (`listed`: its files)."""
    problem = _not_a_copy(out, ckpt, source, listed)
    if problem:
        raise UsageError(
            f"refusing to replace {out}: {problem}",
            hint="--force only replaces an earlier copy of this checkpoint; "
            "choose another -o PATH or move it aside",
        )


def _not_a_copy(out: Path, ckpt: Checkpoint, source: Path, listed: set[str] | None) -> str | None:
    if out.is_symlink():
        return "it is a symbolic link"
    if not ckpt.directory:
        return None if out.is_file() else "it is not a file (the checkpoint is one file)"
    if not out.is_dir():
        return "it is not a directory (the checkpoint is a directory)"
    resolved = out.resolve()
    for inside, what in ((Path.cwd(), "the current directory"), (source, "the source repository")):
        if inside.resolve().is_relative_to(resolved):
            return f"it holds {what}"
    for path in out.rglob("*"):
        relative = path.relative_to(out).as_posix()
        if path.name in (".git", ".dvc") or path.is_symlink():
            return f"it holds {relative}"
        if listed is not None and path.is_file() and relative not in listed:
            return f"it holds {relative}, which is not a file of {ckpt.name}"
    return None


def _replace(
    out: Path, tree: Path, ckpt: Checkpoint, source: Path, listed: set[str], work: Path
) -> None:
    """Rename the verified copy into place; a previous copy is set aside, then removed."""
    if not os.path.lexists(out):
        os.rename(tree, out)
        return
    _refuse_unless_replaceable(out, ckpt, source, listed if ckpt.directory else None)
    previous = work / "previous"
    os.rename(out, previous)
    try:
        os.rename(tree, out)
    except OSError:
        os.rename(previous, out)
        raise


def _refuse_get(source: str, built: checkout.Built, work: Path, out: Path) -> None:
    folder = quarantine.quarantine_folder(out)
    moved = []
    listing = [(None, built.ckpt.md5)] if built.ckpt.directory else []
    for relpath, md5 in [*built.entries, *listing]:
        staged = work / "objects" / md5
        if staged.is_file():
            # A file as OUT, a directory's files under OUT, its listing as OUT.dir.
            target = f"{out.name}.dir" if relpath is None else f"{out.name}/{relpath}"
            moved.append(quarantine.move(staged, folder, target.rstrip("/")))
    where = f"the download is in {folder} ({out.name})" if moved else "nothing was downloaded"
    raise CheckFailed(
        f"verification failed for {built.ckpt.name} from {source}: {built.problem}",
        hint=f"{where} for inspection; {out.name} was not written and nothing was deleted "
        "on the remote. `dvcckpt verify --remote NAME` in that repository tells whether "
        "its remote object is corrupted",
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
