"""Interoperability with GTO and DVC's model registry conventions.

`dvcckpt tag` (run on the main branch after a promotion is merged) mirrors
stage decisions as GTO-format annotated tags: `MODEL@vX.Y.Z` per promoted
checkpoint, on a commit whose `dvc.yaml` `artifacts:` entry names that
checkpoint (so `dvc artifacts get MODEL` fetches it), and `MODEL#STAGE#N` per
promotion on the same commit (which is how GTO ties a stage to a version).
Safe to re-run: existing tags are recognised by their messages.

With an SSH signing key configured in git (`gpg.format ssh` and
`user.signingkey`, the key decisions are signed with), the tags are signed
(`git tag -s`, git's namespace), so `git tag -v` checks them; otherwise they
are plain annotated tags.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dvcckpt.adapters import atomic, git, signing, yamldoc
from dvcckpt.errors import UsageError
from dvcckpt.project import Project
from dvcckpt.promotion import stages

GTO_NAME = re.compile(r"^[a-z0-9]([a-z0-9-/]*[a-z0-9])?$")
DVC_YAML = "dvc.yaml"


def register(project: Project, dry_run: bool = False) -> list[str]:
    """Create the missing tags (and registration commits); returns what was (or would be) done."""
    branch = stages.main_branch(project)
    if git.current_branch(project.root) != branch:
        raise UsageError(f"run `dvcckpt tag` on {branch}", hint=f"git switch {branch} && git pull")
    catalog = project.catalog
    key = signing.signing_key(project.root)
    existing = _existing_tags(project.root)
    versions = _versions(existing)
    done: list[str] = []
    for decision in stages.decisions(project, branch):
        if decision.verdict != "promoted" or not decision.stage:
            continue
        if not GTO_NAME.match(decision.model):
            done.append(
                f"skipped {decision.model}: GTO names are lowercase letters, digits, - and /"
            )
            continue
        known = versions.setdefault(decision.model, {})
        if decision.name not in known:
            tag = f"{decision.model}@v0.{len(known) + 1}.0"
            commit = (
                "HEAD"
                if dry_run
                else _registration_commit(
                    project, decision.model, catalog.get(decision.name, branch).card or {}
                )
            )
            _tag(
                project,
                tag,
                commit,
                f"dvcckpt: version of {decision.name}",
                dry_run,
                done,
                existing,
                key,
            )
            known[decision.name] = tag
        message = (
            f"dvcckpt: {decision.name} promoted to {decision.stage} at {decision.entry.get('at')}"
        )
        if message not in existing.values():
            count = sum(1 for t in existing if t.startswith(f"{decision.model}#"))
            stage_tag = f"{decision.model}#{decision.stage}#{count + 1}"
            # GTO reads a stage tag as assigning the version tagged on the same commit.
            _tag(project, stage_tag, known[decision.name], message, dry_run, done, existing, key)
    return done


def _versions(existing: dict[str, str]) -> dict[str, dict[str, str]]:
    versions: dict[str, dict[str, str]] = {}
    for tag, message in existing.items():
        if "@v" in tag and message.startswith("dvcckpt: version of "):
            versions.setdefault(tag.split("@")[0], {})[
                message.removeprefix("dvcckpt: version of ")
            ] = tag
    return versions


def _tag(
    project: Project,
    tag: str,
    target: str,
    message: str,
    dry_run: bool,
    done: list[str],
    existing: dict[str, str],
    key: Path | None,
) -> None:
    """An annotated tag, signed with `key` (an SSH key file) when there is one."""
    if not dry_run:
        sign = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "tag", "-s"]
        command = sign if key is not None else ["tag", "-a"]
        git.run_git(project.root, *command, tag, "-m", message, f"{target}^{{commit}}")
    existing[tag] = message
    signed = " (signed)" if key is not None else ""
    done.append(f"{'would tag' if dry_run else 'tagged'} {tag}{signed}")


def _registration_commit(project: Project, model: str, card: dict[str, Any]) -> str:
    """A commit whose dvc.yaml names this checkpoint as the model's artifact (for `dvc artifacts get`)."""
    meta = card.get("checkpoint", {})
    entry = {
        "path": meta.get("path"),
        "type": "model",
        "desc": card.get("name"),
        "meta": {"checkpoint": card.get("name"), "sha256": meta.get("sha256")},
    }
    path = project.root / DVC_YAML
    _merge_dvc_yaml(path, {model: entry})
    spec = f"HEAD:{DVC_YAML}"
    # Compared with the last commit, not the work tree: a run that wrote dvc.yaml but
    # could not commit it (a stale index.lock) is completed by the next run.
    current = path.read_bytes()
    if current != git.read_blobs(project.root, [spec])[spec]:
        atomic.commit(project.root, {path: current})  # names a stale index.lock
        git.run_git(
            project.root,
            "commit",
            "--quiet",
            "-m",
            f"Register {card.get('name')} as {model}",
            "--",
            DVC_YAML,
        )
    return git.head_commit(project.root) or "HEAD"


def _existing_tags(root: Path) -> dict[str, str]:
    out = git.run_git(
        root, "for-each-ref", "--format=%(refname:short)%00%(contents:subject)", "refs/tags"
    )
    return dict(line.split("\0", 1) for line in out.splitlines() if "\0" in line)


def _merge_dvc_yaml(path: Path, entries: dict[str, Any]) -> bool:
    """Set artifacts in dvc.yaml (keeping everything else); True if the file changed."""
    document: Any = (
        yamldoc.load_untrusted(path.read_text(encoding="utf-8"), str(path))
        if path.exists()
        else None
    )
    if document is None:
        document = {}
    artifacts = document.setdefault("artifacts", {})
    changed = False
    for name, entry in entries.items():
        if yamldoc.to_plain(artifacts.get(name)) != entry:
            artifacts[name] = entry
            changed = True
    if changed:
        atomic.write_text(path, yamldoc.dump(document))
    return changed
