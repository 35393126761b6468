"""Registering a checkpoint: cache it for DVC, capture provenance, write and stage its card.

Shared by `dvcckpt add` and `dvcckpt.save()`. Inputs are validated before any data is
copied; the checkpoint is copied into the DVC cache once, hashed for DVC (md5) and the
card (sha256) in the same pass (`adapters.dvctrack`), while environment capture runs on
a second thread, so registering costs no more than a plain `dvc add`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dvcckpt.adapters import atomic, capture, dvcfiles, dvctrack, git, hashing, serialization
from dvcckpt.cards import card, frameworks, names, overwritten, savecheck, tracking
from dvcckpt.core import (
    fields,
    fragments,
    layout,
    limits,
    naming,
    redaction,
    schema,
)
from dvcckpt.core.config import ProjectConfig
from dvcckpt.core.fields import RELATIONS
from dvcckpt.errors import StateError, UsageError
from dvcckpt.project import Project

DEFAULT_PHASE = "train"
DEFAULT_KIND = "full"
_STEP_IN_NAME = re.compile(r"(?:checkpoint|step|ckpt|iter)[-_]?(\d+)", re.I)


@dataclass(frozen=True)
class Provenance:
    """How the checkpoint was produced, when the caller knows better than `sys.argv`."""

    script: str | None = None
    command: str | None = None
    config_file: Path | None = None
    # A training loop calling `save()` is itself the program that made the checkpoint.
    from_running_program: bool = False

    def completed(self, root: Path) -> Provenance:
        if not self.from_running_program or self.script or self.command:
            return self
        script, command = capture.invocation(root)
        return replace(self, script=script, command=command)


def add(
    path: str | os.PathLike[str],
    fragment: dict[str, Any],
    *,
    provenance: Provenance | None = None,
    replaced_sections: tuple[str, ...] = (),
    force: bool = False,
    stage: bool = True,
    draft: bool = False,
    warn: Callable[[str], None] | None = None,
) -> card.Card:
    """Register the checkpoint at `path` with the metadata in `fragment`; returns its card.

    The work-tree copy is only read, and the card, `.dvc` file and `.gitignore` entry are
    staged and written as one change: after a failure or a kill at any point the
    checkpoint is where it was, and re-running the same `add` completes the registration.
    A card the pre-commit hook would refuse is refused first (`cards.savecheck`); a
    `draft` may lack required fields, and `warn` is told which ones the commit needs.
    """
    path = _existing(path)
    project = Project.discover(path)
    dvctrack.refuse_misplaced(project.root, project.dvc_root, path)
    # A stage's output is tracked through dvc.lock: a `.dvc` file would break the pipeline.
    output = tracking.stage_output(project, path)
    _check_name_lengths(layout.card_path_for(path), path)
    provenance = (provenance or Provenance()).completed(project.root)
    base = _captured(project, provenance)
    for section in replaced_sections:
        base.pop(section, None)
    # What the user hands over (params, notes, run records, extensions) may hold secrets.
    # What the framework recorded lies beneath what the caller gives (`cards.frameworks`).
    fragment = fragments.merge(frameworks.detected(path), fragment)
    given = _normalized(project, path, redaction.redact_tree(fragment))
    partial = _draft(project, path, fragments.merge(base, given), provenance.from_running_program)
    # A new run id only tells runs apart when someone chose it: a given id or run name,
    # or a training program's own; `add` with neither draws one at random.
    separate = provenance.from_running_program or _names_its_run(given)
    placement = _placement(project, path, partial, force, separate)
    card_file = placement.card_file
    # Validate everything the user gave before any data is copied.
    _check_limits(partial, card_file)
    _check_writable(card_file.parent)
    file = project.relative(card_file)
    if "env" not in partial and savecheck.needs_environment(project.config, _phase(partial)):
        partial["env"] = capture.environment()  # a required field only the capture knows
    pipeline = project.relative(output.pipeline) if output is not None else None
    placeholders = _with_placeholders(partial, pipeline)
    missing = savecheck.check(project, file, placeholders, draft=draft)

    with ThreadPoolExecutor(max_workers=1) as pool:
        env_job = pool.submit(capture.environment) if "env" not in partial else None
        tracked = tracking.track(project, path, output)
        if env_job is not None:
            partial["env"] = env_job.result()
    atomic.fault_point("cached")

    partial["checkpoint"].update(_hashes(project, tracked.content, tracked.pointer))
    if output is not None:
        partial["checkpoint"]["dvc"]["stage"] = output.stage
    partial["checkpoint"].update(serialization.describe(path, tracked.content.names))
    document = fields.ordered(partial)
    missing = _still_missing(project, file, document, draft)
    text = card.render(card_file, document)
    with atomic.repo_lock(project.root):
        if _placement(project, path, partial, force, separate) != placement:  # another won
            raise StateError(
                f"{path}: another registration changed its cards meanwhile",
                hint="run the same command again",
            )
        files = tracking.files(project, path, tracked, stage)
        # A card this checkpoint overwrote is pruned in the same change (its pointer is ours).
        files.update(overwritten.pruned_texts(project.root, placement, partial, project.config))
        files[card_file] = text  # written last: its presence means the add completed
        try:
            atomic.commit(project.root, files, stage=stage, new=None if force else card_file)
        except FileExistsError:
            _check_replaceable(project, card_file, force)
            raise
    if missing and warn is not None:
        warn(savecheck.draft_warning(file, missing))
    return card.Card(path=card_file, document=document)


def _phase(partial: dict[str, Any]) -> str:
    return str(partial["checkpoint"].get("phase", ""))


def _still_missing(project: Project, file: str, document: dict[str, Any], draft: bool) -> list[Any]:
    """Required fields the finished card lacks (the environment is only now captured)."""
    missing = savecheck.still_missing(project, file, document)
    if missing and not draft:
        raise savecheck.refusal(file, missing)
    return missing


def _existing(path: str | os.PathLike[str]) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise UsageError(
            f"path {path!r} is a {type(path).__name__}, not a path",
            hint="pass the checkpoint's path as a string or pathlib.Path",
        )
    if not os.fspath(path).strip():
        raise UsageError("empty checkpoint path", hint="pass the checkpoint file or folder")
    path = Path(path)
    if not path.name or path.name == "..":
        path = Path(os.path.abspath(path))  # `.` or `..`: name the folder itself
    if ".git" in Path(os.path.abspath(path)).parts:
        raise UsageError(
            f"{path} is inside git's own folder",
            hint="save checkpoints in an ordinary folder of the repository, e.g. models/",
        )
    hashing.refuse_unsupported(path)
    if layout.is_pointer(path.name) or layout.is_card(path.name):
        raise UsageError(
            f"{path} is registry metadata, not a checkpoint", hint="pass the data path"
        )
    return path


def _names_its_run(given: dict[str, Any]) -> bool:
    run = given.get("run")
    return isinstance(run, dict) and bool(run.get("id") or run.get("name"))


def _placement(
    project: Project, path: Path, partial: dict[str, Any], force: bool, separate: bool
) -> overwritten.Placement:
    """Where the card goes: another run writing this path again gets a card of its own."""
    placement = overwritten.place(path, project.relative(path), partial, separate_run=separate)
    if placement.card_file != layout.card_path_for(path):
        _check_name_lengths(placement.card_file, path)
    _check_replaceable(project, placement.card_file, force)
    return placement


def _check_name_lengths(card_file: Path, checkpoint: Path) -> None:
    """The card's and `.dvc` file's names must fit the file system (NAME_MAX bytes)."""
    try:
        limit = os.pathconf(card_file.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    longest = max(card_file.name, layout.pointer_path_for(card_file).name, key=len)
    if len(os.fsencode(longest)) > limit:
        raise UsageError(
            f"{checkpoint}: name too long "
            f"for its card ({len(os.fsencode(longest))} bytes; this file system allows {limit})",
            hint="rename the checkpoint to a shorter name",
        )


def _check_replaceable(project: Project, card_file: Path, force: bool) -> None:
    """A committed card is immutable; an uncommitted one is replaced only with --force."""
    relative = project.relative(card_file)
    listed = git.run_git(
        project.root, "--literal-pathspecs", "ls-tree", "--name-only", "HEAD", "--", relative,
        check=False,
    )  # fmt: skip
    if listed.strip():
        raise StateError(
            f"{card_file} is committed: cards are immutable once committed",
            hint="save the new checkpoint to a new path (e.g. the next step); "
            "`dvcckpt retire` the old one if it should no longer be used",
        )
    if card_file.exists() and not force:
        raise StateError(
            f"{card_file} already exists",
            hint="save each checkpoint to a new path, or pass --force to replace an "
            "uncommitted card (another run writing it again: give its --run-id)",
        )


def _check_limits(draft: dict[str, Any], card_file: Path) -> None:
    found = limits.problems(draft)
    if found:
        raise UsageError(
            f"{card_file}: {found[0]}",
            hint="cards hold finite numbers, 64-bit integers and bounded strings; "
            "fix the value given for that field",
        )


def _check_writable(directory: Path) -> None:
    if not os.access(directory, os.W_OK):
        raise StateError(
            f"{directory} is not writable: the card and .dvc file are written there",
            hint=f"make {directory} writable (chmod u+w) or move the checkpoint",
        )


def _captured(project: Project, provenance: Provenance) -> dict[str, Any]:
    return {
        "code": capture.code(
            project.root, provenance.script, provenance.command, provenance.config_file
        ),
        "checkpoint": {
            "created_at": capture.now_utc(),
            "created_by": capture.user(project.root),
        },
    }


def _draft(
    project: Project, path: Path, merged: dict[str, Any], running_program: bool
) -> dict[str, Any]:
    """The card minus content hashes: identity, naming and defaults resolved."""
    config = project.config
    meta = merged.setdefault("checkpoint", {})
    meta.setdefault("phase", DEFAULT_PHASE)
    meta.setdefault("kind", DEFAULT_KIND)
    if meta.get("step") is None and (found := _STEP_IN_NAME.search(path.name)):
        meta["step"] = int(found.group(1))
    if config.phases is not None and meta["phase"] not in config.phases:
        raise UsageError(
            f"phase {meta['phase']!r} is not one of {', '.join(config.phases)}",
            hint=f"use one of those, or add it to `phases` in {config.source}",
        )
    merged.setdefault("model", _default_model(path, config.project))
    meta["path"] = project.relative(path)
    meta["format"] = "directory" if path.is_dir() else "file"
    merged["schema"] = {"id": schema.CARD_SCHEMA_ID, "version": schema.card_version_string()}
    names.assign(config, merged, _run_fields(config, merged), running_program)
    return fragments.prune(merged)


def _default_model(path: Path, project_name: str) -> str:
    parent = path.resolve().parent.name
    return parent if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", parent) else project_name


def _run_fields(config: ProjectConfig, card_data: dict[str, Any]) -> dict[str, Any]:
    params = card_data.get("params", {})
    keyparam = config.keyparam or next((k for k in ("lr", "learning_rate") if k in params), None)
    return {
        "project": config.project,
        "task": card_data.get("run", {}).get("task"),
        "model": card_data["model"],
        "keyparam": naming.keyparam_token(keyparam, params),
        "date": naming.today(),
        "phase": card_data["checkpoint"]["phase"],
        "seed": card_data.get("seeds", {}).get("seed"),
    }


def _with_placeholders(draft: dict[str, Any], pipeline: str | None = None) -> dict[str, Any]:
    """The card as it will be, hashes and the environment not yet known (`pipeline`:
    the dvc.yaml of a stage output)."""
    meta = {**draft["checkpoint"], "size": 0, "sha256": "0" * 64}
    file = pipeline or layout.pointer_for(meta["path"])
    meta["dvc"] = {"file": file, "md5": "0" * 32, "size": 0}
    env = draft.get("env") or savecheck.environment_placeholder()
    return fields.ordered({**draft, "checkpoint": meta, "env": env})


def _hashes(
    project: Project, content: hashing.ContentDigest, pointer: dvcfiles.DvcPointer
) -> dict[str, Any]:
    dvc: dict[str, Any] = {
        "file": project.relative(pointer.file),
        "md5": pointer.md5,
        "size": pointer.size,
    }
    if pointer.nfiles is not None:
        dvc["nfiles"] = pointer.nfiles
    return {"size": content.size, "files": content.files, "sha256": content.sha256, "dvc": dvc}


def _normalized(project: Project, path: Path, fragment: dict[str, Any]) -> dict[str, Any]:
    """Resolve file references in user input into repository paths and hashes."""
    result = dict(fragment)
    if isinstance(result.get("seeds"), int):
        result["seeds"] = {"seed": result["seeds"]}
    result = fragments.seed_from_params(result)
    data = result.get("data")
    if isinstance(data, dict) and isinstance(data.get("splits"), dict):
        splits = {name: _split(project, value) for name, value in data["splits"].items()}
        result["data"] = {**data, "splits": splits}
    if "artifacts" in result:
        result["artifacts"] = [_artifact(project, path, item) for item in result["artifacts"]]
    if "parents" in result:
        result["parents"] = [_parent(project, item) for item in result["parents"]]
    return result


def _split(project: Project, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    candidate = _local_file(project, value)
    if candidate is None:
        return {"hash": value}
    content = hashing.content_digest(candidate)
    return {"hash": f"sha256:{content.sha256}", "path": project.relative(candidate)}


def _artifact(project: Project, checkpoint: Path, item: Any) -> Any:
    entry = {"path": item} if isinstance(item, str) else dict(item)
    if not isinstance(entry.get("path"), str):
        raise UsageError(f"artifact {item!r} has no path", hint="give each artifact a path")
    found = _local_file(project, entry["path"], checkpoint.parent)
    if found is not None:
        entry["path"] = project.relative(found)
        if found.is_file():
            entry.setdefault("sha256", hashing.sha256_file(found))
    return entry


def _parent(project: Project, item: Any) -> dict[str, Any]:
    if isinstance(item, str):
        relation, sep, name = item.partition("=")
        if not sep:
            raise UsageError(
                f"--parent {item!r}: expected RELATION=NAME",
                hint=f"for example --parent finetuned_from=base-pretrain-full-step010000; "
                f"relations: {', '.join(RELATIONS)}",
            )
        item = {"relation": relation, "name": name}
    entry = dict(item)
    if entry.get("relation") not in RELATIONS:
        raise UsageError(
            f"parent relation {entry.get('relation')!r} is not one of {', '.join(RELATIONS)}",
            hint="for example --parent finetuned_from=NAME",
        )
    from dvcckpt.cards import resolve

    known = resolve.find_by_name(project, str(entry.get("name")))
    if known is not None:
        entry.setdefault("path", known.data["checkpoint"]["path"])
        entry.setdefault("sha256", known.data["checkpoint"]["sha256"])
    return entry


def _local_file(project: Project, reference: str, *bases: Path) -> Path | None:
    """An existing file/dir inside the repository named by `reference`, if any."""
    for base in (Path.cwd(), *bases, project.root):
        try:
            candidate = (base / reference).resolve()
            if candidate.exists() and candidate.is_relative_to(project.root):
                return candidate
        except (OSError, ValueError):  # too long, NUL byte...: not a file name
            continue
    return None
