"""`dvcckpt init`: set up a new or existing repository; safe to run again.

Existing files are kept; `.pre-commit-config.yaml` is merged (other hooks are
kept) and only gains the dvcckpt hook if it lacks one.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dvcckpt.adapters import dvcrepo as store
from dvcckpt.adapters import git, yamldoc
from dvcckpt.core import config, resources
from dvcckpt.errors import ConfigError, StateError

HOOK_ID = "dvcckpt-check"
PRE_COMMIT_CONFIG = ".pre-commit-config.yaml"
# (template, destination) pairs written when missing.
FILES = (
    ("dvcckpt.yaml", "dvcckpt.yaml"),
    ("gates.yaml", "gates.yaml"),
    ("github/workflows/dvcckpt.yml", ".github/workflows/dvcckpt.yml"),
    ("github/pull_request_template.md", ".github/pull_request_template.md"),
)


@dataclass(frozen=True)
class Action:
    path: str
    what: str  # created, kept, merged, initialised

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "action": self.what}


def init(directory: Path, project_name: str | None = None) -> list[Action]:
    root = directory.resolve()
    root.mkdir(parents=True, exist_ok=True)
    actions = []
    if not (root / ".git").exists():
        git.run_git(root, "init", "--quiet")
        actions.append(Action(".git", "initialised"))
    elif git.toplevel(root) != root:
        raise StateError(
            f"{root} is inside the git repository {git.toplevel(root)}",
            hint="run `dvcckpt init` at the repository root",
        )
    if not (root / ".dvc").is_dir():
        store.init(root)
        actions.append(Action(".dvc", "initialised"))
    fill = {"project": project_name or config.default_project_name(root)}
    for template, destination in FILES:
        actions.append(_write_missing(root, template, destination, fill))
    actions.append(_merge_pre_commit(root))
    return actions


def _write_missing(root: Path, template: str, destination: str, fill: dict[str, str]) -> Action:
    target = root / destination
    if target.exists():
        return Action(destination, "kept")
    text = resources.template_path(template).read_text(encoding="utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(string.Template(text).safe_substitute(fill), encoding="utf-8")
    return Action(destination, "created")


def _merge_pre_commit(root: Path) -> Action:
    target = root / PRE_COMMIT_CONFIG
    ours = yamldoc.load_untrusted(
        resources.template_path("pre-commit-config.yaml").read_text(encoding="utf-8"), "template"
    )
    if not target.exists():
        target.write_text(yamldoc.dump(ours), encoding="utf-8")
        return Action(PRE_COMMIT_CONFIG, "created")
    existing: Any = yamldoc.load_untrusted(target.read_text(encoding="utf-8"), str(target))
    if existing is None:
        existing = {}
    if not isinstance(existing, dict) or not isinstance(existing.setdefault("repos", []), list):
        raise ConfigError(
            f"{target}: expected a mapping with a `repos` list",
            hint="fix the file, or move it aside and re-run `dvcckpt init`",
        )
    hooks = [
        h.get("id") for r in existing["repos"] if isinstance(r, dict) for h in r.get("hooks", [])
    ]
    if HOOK_ID in hooks:
        return Action(PRE_COMMIT_CONFIG, "kept")
    existing["repos"].extend(ours["repos"])
    from dvcckpt.adapters import atomic

    atomic.write_text(target, yamldoc.dump(existing))
    return Action(PRE_COMMIT_CONFIG, "merged")
