"""`dvcckpt.load`: a registered checkpoint's local path for inference code.

The reference (NAME, a path, NAME@REV, MODEL@STAGE) resolves through the one
resolver; the work-tree copy is verified with sha256 against the card, pulled
(`transfer.pull`: verified objects only, never DVC's own checkout) when it is
missing, and refused when it differs from the card (a modified copy is never
overwritten). A version from history the work tree does not track (NAME@REV) is
fetched with `get` into `.dvc/tmp/dvcckpt-load/` and reused while it verifies. Pickles can run code when loaded, so a checkpoint holding any is
refused unless the caller says it trusts the source (`allow_pickle=True`); the
card's serialization decides before anything is downloaded, the verified bytes
themselves decide after. `open_safetensors` opens a safetensors file of the
checkpoint without loading it, which reads no pickle whatever else the folder holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dvcckpt.adapters import serialization
from dvcckpt.cards.card import Card
from dvcckpt.core import layout
from dvcckpt.errors import CheckFailed, StateError, UsageError
from dvcckpt.project import Project
from dvcckpt.storage import copies, download, select, transfer
from dvcckpt.storage.select import Checkpoint
from dvcckpt.storage.verify import (
    CORRUPTED,
    LOCAL_WORKERS,
    MISSING,
    OK,
    Hasher,
    problem,
    run,
    verify,
)


def load(reference: str, repo: Path | None = None, *, allow_pickle: bool = False) -> Path:
    """Resolve NAME or MODEL@STAGE, pull and verify if needed, return the local path."""
    project, card = _resolved(reference, repo)
    if not allow_pickle:
        _refuse_pickles(card.name, _card_pickles(card))
    path = _verified_copy(project, card, reference)
    if not allow_pickle:
        _refuse_pickles(card.name, _pickles(path))
    return path


def open_safetensors(
    reference: str, repo: Path | None = None, *, file: str | None = None, framework: str = "pt"
) -> Any:
    """An open `safetensors.safe_open` handle on the checkpoint's (verified) weights.

    For a folder, `file` names the safetensors file inside it when there are several
    (sharded weights); use the handle as a context manager. No pickle is read.
    """
    try:
        from safetensors import safe_open
    except ImportError as exc:
        raise UsageError("open_safetensors needs the safetensors package",
                         hint="pip install safetensors") from exc  # fmt: skip
    project, card = _resolved(reference, repo)
    path = _verified_copy(project, card, reference)
    target = _weights_file(card.name, path, file)
    return safe_open(str(target), framework=framework)


def _resolved(reference: str, repo: Path | None) -> tuple[Project, Card]:
    if not isinstance(reference, str):
        raise UsageError(f"reference {reference!r} is a {type(reference).__name__}, not a name",
                         hint="pass NAME, NAME@REV or MODEL@STAGE as a string")  # fmt: skip
    project = Project.discover(repo)
    return project, select.live(select.resolve(project, reference))


def _verified_copy(project: Project, card: Card, reference: str) -> Path:
    """The work-tree copy once its sha256 matches the card: pulled first if missing.

    A version from history (NAME@REV) the work tree does not track is downloaded,
    verified, beside the repository's other scratch files (`.dvc/tmp/dvcckpt-load`).
    """
    ckpt = Checkpoint.of(card)
    if not _tracked_here(project, ckpt):
        return _side_copy(project, ckpt, reference)
    verdict = verify(project, [ckpt], local=("workspace",))[0]
    if verdict.status == MISSING:
        transfer.pull(project, [ckpt], None, None)
        verdict = verify(project, [ckpt], local=("workspace",))[0]
    if verdict.status == CORRUPTED:
        raise CheckFailed(
            f"the local copy of {ckpt.name} does not match its card",
            hint=f"nothing was loaded; move {ckpt.path} aside (it is not the registered "
            f"checkpoint) and load again to pull the registered copy",
            details=[problem(verdict)],
        )
    if verdict.status != OK:  # a pull that left nothing (only if something raced it)
        raise StateError(f"no local copy of {ckpt.name} after pulling it",
                         hint=f"dvcckpt pull {ckpt.name}")  # fmt: skip
    return project.inside(ckpt.path)


def _tracked_here(project: Project, ckpt: Checkpoint) -> bool:
    """Whether the work tree's `.dvc` file tracks this very version (a stage output: yes)."""
    dvc_file = project.inside(ckpt.dvc_file)
    if not layout.is_pointer(dvc_file.name):
        return True
    return bool(dvc_file.is_file() and copies.pointer_out(project, ckpt, missing_ok=True))


def _side_copy(project: Project, ckpt: Checkpoint, reference: str) -> Path:
    """A verified copy of a version the work tree does not hold, kept by its sha256."""
    out = project.dvc_root / ".dvc" / "tmp" / "dvcckpt-load" / ckpt.sha256[:16]
    target = out / Path(ckpt.path).name
    plan = copies.path_plan(target, ckpt, "download", str(target))
    with Hasher(LOCAL_WORKERS) as hasher:
        if run([plan], hasher, "Verifying")[0].status == OK:
            return target
    out.mkdir(parents=True, exist_ok=True)
    download.get(str(project.root), reference, target, force=True)
    return target


def _card_pickles(card: Card) -> list[str]:
    """The pickles the card says the checkpoint holds (before any download)."""
    meta = card.data.get("checkpoint") or {}
    listed = [str(entry.get("path")) for entry in meta.get("serialization_files") or []
              if isinstance(entry, dict) and entry.get("serialization") == "pickle"]  # fmt: skip
    if listed:
        return listed
    return [Path(str(meta.get("path"))).name] if meta.get("serialization") == "pickle" else []


def _pickles(path: Path) -> list[str]:
    """The files of the verified copy whose bytes are (or may be) pickles."""
    if path.is_dir():
        names = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
        return serialization.pickles(path, names)
    return serialization.pickles(path)


def _refuse_pickles(name: str, pickles: list[str]) -> None:
    if pickles:
        shown = ", ".join(pickles[:5]) + (", ..." if len(pickles) > 5 else "")
        raise UsageError(
            f"{name} holds pickled files ({shown}): loading a pickle can run arbitrary code",
            hint="pass allow_pickle=True only if you trust where this checkpoint came from; "
            "dvcckpt.storage.load.open_safetensors reads its safetensors weights without pickles",
        )


def _weights_file(name: str, path: Path, file: str | None) -> Path:
    if path.is_file():
        if file is not None:
            raise UsageError(f"{name} is a single file: `file` names a file inside a folder",
                             hint="drop the file argument")  # fmt: skip
        candidates = [path]
    elif file is not None:
        target = (path / file).resolve()
        if not target.is_relative_to(path.resolve()) or not target.is_file():
            raise UsageError(f"{name} has no file {file!r}",
                             hint="name a file inside the checkpoint folder")  # fmt: skip
        candidates = [target]
    else:
        candidates = sorted(p for p in path.rglob("*.safetensors") if p.is_file())
    weights = [p for p in candidates if serialization.sniff(p) == "safetensors"]
    if len(weights) == 1:
        return weights[0]
    if not weights:
        raise UsageError(f"{name}: {file or path.name} is not a safetensors file",
                         hint="load() returns its path; read it with the library that wrote it")  # fmt: skip
    listing = ", ".join(p.relative_to(path).as_posix() for p in weights)
    raise UsageError(f"{name} holds several safetensors files: {listing}",
                     hint="pass file=NAME to pick one (sharded weights: one handle per shard)")  # fmt: skip
