"""How `add` tracks a checkpoint for DVC: a new `.dvc` file, or a pipeline stage's lock.

Most checkpoints get a `.dvc` file written the way `dvc add` would (`adapters.dvctrack`).
A checkpoint that is an output of a `dvc.yaml` stage is already tracked through
`dvc.lock`: it is checked against the lock instead (`adapters.dvcpipeline`), and the
`dvc.yaml` and `dvc.lock` are staged with its card, since the hook checks the card
against the staged lock.
"""

from __future__ import annotations

from pathlib import Path

from dvcckpt.adapters import dvcpipeline, dvctrack
from dvcckpt.adapters.dvcpipeline import StageOutput
from dvcckpt.project import Project

Tracked = dvctrack.Tracked | dvcpipeline.Recorded


def stage_output(project: Project, path: Path) -> StageOutput | None:
    """The pipeline stage output `path` is (None if it is none; refused if it lies inside
    or around one, or DVC does not cache it)."""
    return dvcpipeline.output_of(project.root, project.dvc_root, path)


def track(project: Project, path: Path, output: StageOutput | None) -> Tracked:
    """Cache the checkpoint for a new `.dvc` file, or check a stage output against dvc.lock."""
    if output is None:
        return dvctrack.track(project.root, project.dvc_root, path)
    return dvcpipeline.recorded(project.root, project.dvc_root, output, path)


def files(project: Project, path: Path, tracked: Tracked, stage: bool) -> dict[Path, bytes | None]:
    """What is written and staged with the card: the `.dvc` file and `.gitignore` entry,
    or for a stage output the `dvc.yaml` and `dvc.lock` it was checked against."""
    found: dict[Path, bytes | None] = {}
    if isinstance(tracked, dvcpipeline.Recorded):
        if stage:
            found.update(dvcpipeline.staged_files(project.root, tracked))
    else:
        found[tracked.pointer.file] = tracked.pointer_text
    gitignore, entry = dvctrack.gitignore_update(project.root, path)
    if entry is not None or (stage and gitignore.is_file()):
        found[gitignore] = entry if entry is not None else gitignore.read_bytes()
    return found
