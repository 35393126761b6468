"""The hook's reading of pipeline-output cards: the staged `dvc.yaml` and `dvc.lock`.

A card whose `checkpoint.dvc.file` is a `dvc.yaml` has no `.dvc` file: it agrees with
the `dvc.lock` beside that `dvc.yaml` (`core.pipeline` holds the rules). A staged
`dvc.lock` also brings the cards of the outputs it records into the check, so a stage
run again cannot silently replace a registered checkpoint.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from dvcckpt.adapters import git, yamldoc
from dvcckpt.core import layout, pipeline
from dvcckpt.core.policy import Finding
from dvcckpt.errors import CardError


def is_stage_output(card: dict[str, Any]) -> bool:
    return pipeline.is_pipeline_file(str(card["checkpoint"]["dvc"]["file"]))


def findings(root: Path, path: str, card: dict[str, Any]) -> list[Finding]:
    """A stage output's card agrees with the staged lock: what the commit will hold, also
    when the card itself is read from the work tree (`dvcckpt check FILE`)."""
    yaml_file = str(card["checkpoint"]["dvc"]["file"])
    names = (yaml_file, pipeline.lock_for(yaml_file))
    staged = git.read_blobs(root, [f":{name}" for name in names])
    declared, locked = (parsed(staged.get(f":{n}"), n) for n in names)
    return pipeline.findings(path, card, declared, locked)


def cards_of_lock(root: Path, lock: str) -> list[str]:
    """Cards of the outputs a staged `dvc.lock` records (paths without a card included:
    the caller skips those the index does not hold)."""
    if PurePosixPath(lock).name != pipeline.LOCK_FILE:
        return []
    yaml_file = str(PurePosixPath(lock).with_name(pipeline.PIPELINE_FILE))
    blobs = git.read_blobs(root, [f":{lock}", f":{yaml_file}"])
    try:
        locked, declared = (yamldoc.load_fast(blobs.get(f":{n}") or b"{}", n)
                            for n in (lock, yaml_file))  # fmt: skip
    except CardError:
        return []  # the cards using this lock report it unreadable
    return [layout.card_for(p) for p in pipeline.recorded_outputs(locked, declared, yaml_file)]


def parsed(content: bytes | None, name: str) -> Any:
    """A DVC file (`.dvc`, `dvc.yaml`, `dvc.lock`) parsed: None if missing, a string
    saying why if unreadable (the policy reports both)."""
    if content is None:
        return None
    try:
        return yamldoc.load_fast(content, name)
    except CardError as exc:
        return exc.message.removeprefix(f"{name}: ")
