"""Checkpoints that are outputs of a DVC pipeline stage: what `dvc.lock` records for them.

A pipeline output has no `.dvc` file: its card's `checkpoint.dvc.file` names the
`dvc.yaml` that declares it and `checkpoint.dvc.stage` the stage (`train`, or
`train@0` for a foreach/matrix entry, as `dvc.lock` names it). The `dvc.lock` beside
that `dvc.yaml` records the output's md5, relative to the stage's `wdir`, which only
`dvc.yaml` says. Both documents are untrusted (a pull request may have written them),
so they are read strictly: one stage, one output, an md5 DVC 3 computed.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from dvcckpt.core import manifest
from dvcckpt.core.policy import Finding

PIPELINE_FILE = "dvc.yaml"
LOCK_FILE = "dvc.lock"
_TEMPLATE = "${"


@dataclass(frozen=True)
class LockedOutput:
    """What `dvc.lock` records for one output of one stage."""

    md5: str
    size: int
    nfiles: int | None


class PipelineProblem(ValueError):
    """Why a `dvc.yaml` or `dvc.lock` does not establish a checkpoint (the message says)."""


def is_pipeline_file(path: str) -> bool:
    return PurePosixPath(path).name == PIPELINE_FILE


def lock_for(pipeline_file: str) -> str:
    """The repository path of the `dvc.lock` beside a `dvc.yaml`."""
    return str(PurePosixPath(pipeline_file).with_name(LOCK_FILE))


def stage_wdir(document: Any, stage: str) -> str:
    """The literal `wdir` of `stage` in a parsed `dvc.yaml` ("." when it has none)."""
    stages = document.get("stages") if isinstance(document, Mapping) else None
    base = stage.partition("@")[0]
    definition = stages.get(base) if isinstance(stages, Mapping) else None
    if not isinstance(definition, Mapping):
        raise PipelineProblem(f"has no stage {base!r}")
    if "@" in stage and "foreach" not in definition and "matrix" not in definition:
        raise PipelineProblem(f"stage {base!r} has no foreach or matrix entries like {stage!r}")
    body = definition.get("do") if "foreach" in definition else definition
    wdir = body.get("wdir", ".") if isinstance(body, Mapping) else "."
    if not isinstance(wdir, str) or _TEMPLATE in wdir or not _relative(wdir):
        raise PipelineProblem(
            f"stage {base!r}: wdir {str(wdir)[:80]!r} is not a plain relative folder"
        )
    return wdir


def lock_path(checkpoint: str, pipeline_file: str, wdir: str) -> str:
    """`checkpoint`'s path as `dvc.lock` lists it: relative to the stage's wdir (which
    may lead out of the `dvc.yaml`'s folder, never out of the repository)."""
    folder = posixpath.normpath(posixpath.join(posixpath.dirname(pipeline_file), wdir))
    if folder == ".." or folder.startswith("../"):
        raise PipelineProblem(f"wdir {wdir!r} leads outside the repository")
    return posixpath.relpath(posixpath.normpath(checkpoint), folder)


def locked_output(document: Any, stage: str, path: str) -> LockedOutput:
    """The one `outs:` entry of `stage` in a parsed `dvc.lock` at `path`, checked strictly."""
    stages = document.get("stages") if isinstance(document, Mapping) else None
    entry = stages.get(stage) if isinstance(stages, Mapping) else None
    if not isinstance(entry, Mapping):
        raise PipelineProblem(f"has no stage {stage!r}")
    outs = entry.get("outs")
    found = [o for o in outs if isinstance(o, Mapping) and _same(o.get("path"), path)] if (
        isinstance(outs, list)) else []  # fmt: skip
    if len(found) != 1:
        raise PipelineProblem(f"stage {stage!r} records {len(found)} outputs {path!r}, not 1")
    out = found[0]
    if out.get("hash") != "md5":
        raise PipelineProblem(f"{stage}: {path}: no DVC 3 md5 (hash: md5) recorded")
    md5 = out.get("md5")
    if not manifest.is_md5(md5, directory=True):
        raise PipelineProblem(f"{stage}: {path}: md5 {str(md5)[:80]!r} is not an md5")
    size: Any = out.get("size")
    nfiles: Any = out.get("nfiles")
    if not _count(size) or (nfiles is not None and not _count(nfiles)):
        raise PipelineProblem(f"{stage}: {path}: size {size!r} / nfiles {nfiles!r} malformed")
    if str(md5).endswith(".dir") != (nfiles is not None):
        raise PipelineProblem(f"{stage}: {path}: nfiles must come with a .dir md5, and only then")
    return LockedOutput(str(md5), int(size), None if nfiles is None else int(nfiles))


def recorded_outputs(lock: Any, document: Any, pipeline_file: str) -> dict[str, tuple[str, str]]:
    """Repository path -> (stage, path as listed) of each output a parsed `dvc.lock`
    records (stages whose wdir cannot be read are taken at the `dvc.yaml`'s folder)."""
    stages = lock.get("stages") if isinstance(lock, Mapping) else None
    found: dict[str, tuple[str, str]] = {}
    for stage, entry in stages.items() if isinstance(stages, Mapping) else ():
        outs = entry.get("outs") if isinstance(entry, Mapping) else None
        try:
            wdir = stage_wdir(document, str(stage))
        except PipelineProblem:
            wdir = "."
        folder = posixpath.join(posixpath.dirname(pipeline_file), wdir)
        for out in outs if isinstance(outs, list) else ():
            if isinstance(out, Mapping) and isinstance(out.get("path"), str):
                path = posixpath.normpath(posixpath.join(folder, out["path"]))
                found[path] = (str(stage), out["path"])
    return {p: v for p, v in found.items() if p != ".." and not p.startswith(("../", "/"))}


def findings(file: str, card: Mapping[str, Any], pipeline: Any, lock: Any) -> list[Finding]:
    """The card of a pipeline output agrees with the staged (or committed) `dvc.lock`.

    `pipeline` and `lock` are the parsed `dvc.yaml` and `dvc.lock` (None when not in
    the index, a string saying why when unreadable). Fails closed on anything missing.
    """
    meta = card["checkpoint"]
    dvc = meta["dvc"]
    yaml_file, stage = str(dvc["file"]), dvc.get("stage")
    lock_file = lock_for(yaml_file)
    if not isinstance(stage, str) or not stage:
        return [Finding(file, "checkpoint.dvc.stage", f"missing: which stage of {yaml_file}")]
    for name, document in ((yaml_file, pipeline), (lock_file, lock)):
        if document is None:
            command = f"git add -- {shlex.quote(name)}"
            return [Finding(file, "checkpoint.dvc", f"{name} is not staged: run `{command}`")]
        if isinstance(document, str):
            return [Finding(file, "checkpoint.dvc", f"{name} cannot be read: {document}")]
    try:
        path = lock_path(str(meta["path"]), yaml_file, stage_wdir(pipeline, stage))
    except PipelineProblem as exc:
        return [Finding(file, "checkpoint.dvc", f"{yaml_file} {exc}")]
    try:
        locked = locked_output(lock, stage, path)
    except PipelineProblem as exc:
        return [Finding(file, "checkpoint.dvc", f"{lock_file} {exc}")]
    return _disagreements(file, dvc, locked, lock_file)


def _disagreements(
    file: str, dvc: Mapping[str, Any], locked: LockedOutput, lock_file: str
) -> list[Finding]:
    found = []
    for key, recorded in (("md5", locked.md5), ("size", locked.size), ("nfiles", locked.nfiles)):
        if dvc.get(key) != recorded:
            message = f"card says {dvc.get(key)}, {lock_file} says {recorded}"
            if key == "md5":  # most often: the stage ran again and wrote over the checkpoint
                message += (f": the stage's output is no longer this checkpoint (restore "
                            f"{lock_file}, or have the new run write to a new path)")  # fmt: skip
            found.append(Finding(file, f"checkpoint.dvc.{key}", message))
    return found


def _relative(folder: str) -> bool:
    return bool(folder) and not PurePosixPath(folder).is_absolute() and "\\" not in folder


def _same(listed: Any, path: str) -> bool:
    # DVC records an output as `dvc.yaml` spells it (`./model.pt` is `model.pt`).
    return isinstance(listed, str) and posixpath.normpath(listed) == posixpath.normpath(path)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
