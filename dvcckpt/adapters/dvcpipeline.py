"""Checkpoints a DVC pipeline stage writes: found through DVC, checked against `dvc.lock`.

A checkpoint declared in a stage's `outs:` is already tracked by DVC (`dvc repro`
recorded its md5 in `dvc.lock` and cached it); a `.dvc` file for it would make DVC
refuse the repository ("overlaps with an output of stage"). Registering one therefore
records the card against the lock entry: the work-tree copy is hashed once (md5 and
sha256 in one read), its md5 must be the one `dvc.lock` records, and the cache must
hold the objects `dvc push` will upload (cached here, as `dvc commit` would, if not).

Which stage declares a path is DVC's own answer (foreach, matrix, vars and `wdir`
resolved by DVC), asked only when the repository has a `dvc.yaml` at all, so a plain
`add` never imports dvc. `dvc.yaml` and `dvc.lock` are then read strictly
(`core.pipeline`), exactly as the pre-commit hook reads them.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dvcckpt.adapters import dvcfiles, dvctrack, git, hashing, yamldoc
from dvcckpt.adapters.dvcfiles import DvcPointer
from dvcckpt.adapters.hashing import LOCAL_WORKERS, ContentDigest
from dvcckpt.core import manifest, pipeline
from dvcckpt.core.pipeline import LockedOutput, PipelineProblem
from dvcckpt.errors import CardError, ConfigError, StateError, UsageError

_REBUILD_HINT = (
    "run `dvc repro {stage}` to rebuild it, or `dvc commit {stage}` if this copy is the "
    "one the stage should record; then add it again. DVC records an output once its stage "
    "has finished: register it after `dvc repro` (or from a later stage that depends on "
    "it), not from inside the stage's own command"
)


@dataclass(frozen=True)
class StageOutput:
    """A checkpoint declared as an output of a pipeline stage."""

    pipeline: Path  # the dvc.yaml declaring it
    stage: str  # as dvc.lock names it: `train`, `train@0`, `train@lr-0.1`
    lock_path: str  # the output's path as dvc.lock lists it (relative to the stage's wdir)

    @property
    def lock(self) -> Path:
        return self.pipeline.with_name(pipeline.LOCK_FILE)


@dataclass(frozen=True)
class Recorded:
    """A pipeline output whose work-tree copy matches `dvc.lock`, and what registers it."""

    pointer: DvcPointer  # `file` is the dvc.yaml
    content: ContentDigest
    lock_text: bytes  # the lock that was checked (staged with the card)


def output_of(root: Path, dvc_root: Path, path: Path) -> StageOutput | None:
    """The stage output `path` is, None if no stage declares it; refuses a path inside or
    around an output, and an output DVC does not cache (`cache: false`)."""
    pipelines = [p for p in _pipeline_files(root, dvc_root) if _may_declare(p, root, path)]
    if not pipelines:
        return None  # no dvc.yaml could name it: DVC need not be asked (nor imported)
    full = os.path.realpath(path)
    outputs = [(file, *found) for file in pipelines for found in _outputs(dvc_root, file)]
    for pipeline_file, stage, out in outputs:
        if os.path.realpath(out.fs_path) == full:
            return _checked(root, pipeline_file, stage, out, path)
    for _, stage, out in outputs:
        _refuse_overlap(root, path, full, os.path.realpath(out.fs_path), stage.addressing)
    return None


def _pipeline_files(root: Path, dvc_root: Path) -> list[Path]:
    """Every `dvc.yaml` git tracks or would track (ignored folders never hold one)."""
    listed = git.run_git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                         "--", f":(glob)**/{pipeline.PIPELINE_FILE}")  # fmt: skip
    found = (root / name for name in dict.fromkeys(listed.split("\0")) if name)
    return [p for p in found if p.is_file() and p.resolve().is_relative_to(dvc_root.resolve())]


def _may_declare(pipeline_file: Path, root: Path, path: Path) -> bool:
    """Whether `pipeline_file` could declare `path`, an output inside it or one around it:
    only if it names one of the path's folders or its own name, or uses templating."""
    try:
        text = pipeline_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return True  # DVC's reading says what is wrong with it
    parts = Path(_shown(root, path)).parts
    return "${" in text or any(part in text for part in parts)


def _outputs(dvc_root: Path, pipeline_file: Path) -> list[tuple[Any, Any]]:
    """(stage, output) for every output of every stage DVC resolves from `pipeline_file`."""
    from dvc.dvcfile import load_file
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(dvc_root)) as repo:
            stages = load_file(repo, str(pipeline_file)).stages.values()
            return [(stage, out) for stage in stages for out in stage.outs]
    except DvcException as exc:
        raise ConfigError(
            f"{pipeline_file}: DVC cannot read it: {str(exc)[:300]}",
            hint="fix the file (`dvc status` shows the same problem), then add again",
        ) from exc


def _refuse_overlap(root: Path, path: Path, full: str, declared: str, stage: str) -> None:
    if declared.startswith(full + os.sep) or full.startswith(declared + os.sep):
        output = Path(declared).relative_to(root.resolve()).as_posix()
        inside = full.startswith(declared + os.sep)
        raise UsageError(
            f"{path} {'lies inside' if inside else 'contains'} {output}, an output of "
            f"pipeline stage {stage}",
            hint=f"register {output} itself" if inside else
            f"register {output} on its own, or save the checkpoint elsewhere",
        )  # fmt: skip


def _checked(root: Path, pipeline_file: Path, stage: Any, out: Any, path: Path) -> StageOutput:
    """The output as the card records it; refused when DVC keeps no copy of it, or when
    the hook could not find it in `dvc.lock` (a wdir only DVC's templating resolves)."""
    where = f"{path} is an output of pipeline stage {stage.addressing}"
    if not out.use_cache:
        raise UsageError(
            f"{where} with `cache: false`: DVC keeps no copy of it, so it cannot be a "
            "checkpoint (nothing to push, pull or verify)",
            hint=f"remove `cache: false` from its outs entry in {_shown(root, pipeline_file)}, "
            f"run `dvc repro {stage.addressing}`, then add it again",
        )
    relative = _shown(root, pipeline_file)
    try:
        document = yamldoc.load_fast(yamldoc.read_text(pipeline_file), relative)
        wdir = pipeline.stage_wdir(document, stage.name)
        lock_path = pipeline.lock_path(_shown(root, path), relative, wdir)
    except (CardError, PipelineProblem) as exc:
        raise UsageError(
            f"{where}, but {relative} {exc}",
            hint="give the stage a literal wdir (or none) so the commit hook can find the "
            "output in dvc.lock",
        ) from exc
    if os.path.normpath(lock_path) != os.path.normpath(out.def_path):
        raise UsageError(
            f"{where}, listed as {out.def_path!r}, not {lock_path!r} (wdir {wdir!r})",
            hint="give the stage a literal wdir so the commit hook can find the output",
        )
    return StageOutput(pipeline_file, str(stage.name), lock_path)


def recorded(root: Path, dvc_root: Path, output: StageOutput, path: Path) -> Recorded:
    """Hash the work-tree copy and check it is what `dvc.lock` records; cache it if the
    cache lacks it (`dvc repro --no-commit`, `dvc gc`), so `push` has what it needs."""
    lock_text = read_lock(root, output)
    expected = locked(root, output, lock_text)
    content, md5s = _digest(path)
    found = _tree_md5(content, md5s) if content.names is not None else md5s[0]
    nfiles = content.files if content.names is not None else None
    recorded_now = LockedOutput(found, content.size, nfiles)
    if recorded_now != expected:
        shown, lock = _shown(root, path), _shown(root, output.lock)
        raise StateError(
            f"{shown} does not match {lock} (stage {output.stage}): the work tree holds md5 "
            f"{found} ({content.size} bytes), {lock} records {expected.md5} ({expected.size} bytes)",
            hint=_REBUILD_HINT.format(stage=output.stage),
        )
    if not _cached(dvcfiles.cache_dir(dvc_root), found, md5s, content):
        again = dvctrack.track(root, dvc_root, path).pointer
        if again.md5 != found:
            raise StateError(f"{_shown(root, path)} changed while it was registered",
                             hint="add it again once the stage has finished writing it")  # fmt: skip
    pointer = DvcPointer(file=output.pipeline, md5=found, size=content.size, nfiles=nfiles)
    return Recorded(pointer, content, lock_text)


def staged_files(root: Path, done: Recorded) -> dict[Path, bytes | None]:
    """The `dvc.yaml` and `dvc.lock` to stage with the card (the hook checks the card
    against the staged lock), as they are: refused if the lock changed since the check."""
    lock = done.pointer.file.with_name(pipeline.LOCK_FILE)
    try:
        now, declared = lock.read_bytes(), done.pointer.file.read_bytes()
    except OSError as exc:
        raise StateError(
            f"{_shown(root, lock)} or its dvc.yaml cannot be read: {exc.strerror or exc}",
            hint="add it again once `dvc repro` has finished",
        ) from exc
    if now != done.lock_text:
        raise StateError(
            f"{_shown(root, lock)} changed while the checkpoint was registered",
            hint="add it again once `dvc repro` has finished",
        )
    return {done.pointer.file: declared, lock: now}


def read_lock(root: Path, output: StageOutput) -> bytes:
    """The `dvc.lock` beside the stage's `dvc.yaml` (StateError if there is none)."""
    try:
        return output.lock.read_bytes()  # read strictly (size, syntax) by `locked`
    except FileNotFoundError:
        raise StateError(
            f"{_shown(root, output.lock)} does not exist: stage {output.stage} has not run",
            hint=f"run `dvc repro {output.stage}`, then add the checkpoint",
        ) from None
    except OSError as exc:
        raise StateError(
            f"{_shown(root, output.lock)} cannot be read: {exc.strerror or exc}",
            hint=f"run `dvc repro {output.stage}` to rewrite it",
        ) from exc


def locked(root: Path, output: StageOutput, lock_text: bytes) -> LockedOutput:
    """What the lock records for the output, read strictly as the hook reads it."""
    lock = _shown(root, output.lock)
    try:
        document = yamldoc.load_fast(lock_text, lock)
        return pipeline.locked_output(document, output.stage, output.lock_path)
    except (CardError, PipelineProblem) as exc:
        raise StateError(
            f"{lock} {exc}".replace(f"{lock} {lock}: ", f"{lock}: "),
            hint=_REBUILD_HINT.format(stage=output.stage),
        ) from exc


def locked_md5(root: Path, pipeline_file: Path, checkpoint: str) -> str | None:
    """The md5 the work tree's `dvc.lock` records for the output at repository path
    `checkpoint` (None when it records none, or cannot be read)."""
    lock = pipeline_file.with_name(pipeline.LOCK_FILE)
    shown = _shown(root, pipeline_file)
    try:
        declared = yamldoc.load_fast(yamldoc.read_text(pipeline_file), shown)
        document = yamldoc.load_fast(yamldoc.read_text(lock), _shown(root, lock))
        stage, listed = pipeline.recorded_outputs(document, declared, shown)[checkpoint]
        return pipeline.locked_output(document, stage, listed).md5
    except (OSError, CardError, PipelineProblem, KeyError):
        return None


class _Both:
    """md5 (DVC's) and sha256 (the card's) of one read: `hashing.feed` feeds both."""

    def __init__(self) -> None:
        self.md5, self.sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()

    def update(self, data: memoryview, /) -> None:
        self.md5.update(data)
        self.sha256.update(data)

    def hexdigest(self) -> str:
        return self.sha256.hexdigest()


def _file_digests(path: Path) -> tuple[str, str, int]:
    both = _Both()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with open(fd, "rb", buffering=0) as handle:
        size = os.fstat(fd).st_size
        hashing.feed(handle, both, size=size)
    return both.md5.hexdigest(), both.sha256.hexdigest(), size


def _digest(path: Path) -> tuple[ContentDigest, list[str]]:
    """The card's digest of a checkpoint file or folder, and the md5 of each file."""
    hashing.refuse_unsupported(path)
    if not path.is_dir():
        md5, sha256, size = _file_digests(path)
        return ContentDigest(sha256, size, 1), [md5]
    files = sorted(
        Path(folder, name).relative_to(path).as_posix()
        for folder, _, names in os.walk(path) for name in names
    )  # fmt: skip
    if not files:
        raise UsageError(f"{path} is an empty directory", hint="save the checkpoint files first")
    with ThreadPoolExecutor(max_workers=LOCAL_WORKERS) as pool:
        digests = list(pool.map(lambda rel: _file_digests(path / rel), files))
    sha256 = manifest.manifest_sha256(zip(files, (d[1] for d in digests), strict=True))
    content = ContentDigest(sha256, sum(d[2] for d in digests), len(files), files)
    return content, [d[0] for d in digests]


def _tree_md5(content: ContentDigest, md5s: list[str]) -> str:
    return manifest.dvc_tree_md5(zip(content.names or [], md5s, strict=True))


def _cached(cache: Path, md5: str, md5s: list[str], content: ContentDigest) -> bool:
    """Whether the DVC cache holds every object of the output (present, not re-read:
    push verifies the bytes before anything leaves)."""
    objects = [md5, *md5s] if content.names is not None else [md5]
    return all(dvcfiles.cache_object(cache, obj).is_file() for obj in objects)


def _shown(root: Path, path: Path) -> str:
    try:
        return Path(os.path.realpath(path)).relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
