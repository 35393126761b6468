"""The repository a command works in: git work tree, DVC root, its policy files and catalog.

Policy files are `dvcckpt.yaml` (settings, validated into `core.config.ProjectConfig`)
and `gates.yaml` (quality gates, evaluated by `core.gates`); both are read here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dvcckpt.adapters import git, yamldoc
from dvcckpt.adapters.paths import repo_relative
from dvcckpt.core import config as config_module
from dvcckpt.core import gates, schema
from dvcckpt.core.config import CONFIG_FILE, ProjectConfig
from dvcckpt.core.gates import GATES_FILE
from dvcckpt.errors import CardError, ConfigError, StateError, UsageError

if TYPE_CHECKING:
    from dvcckpt.catalog import Catalog


@dataclass(frozen=True)
class Project:
    root: Path  # git work tree
    dvc_root: Path  # nearest directory with `.dvc/` (may be a subdirectory of a monorepo)
    config: ProjectConfig

    @classmethod
    def discover(cls, start: Path | None = None, require_dvc: bool = True) -> Project:
        here = (start or Path.cwd()).resolve()
        root = git.toplevel(here)
        dvc_root = _dvc_root(here if here.is_dir() else here.parent, root)
        if dvc_root is None:
            if require_dvc:
                raise StateError(
                    f"{root} is a git repository but not a DVC repository",
                    hint=f"run `dvc init` in {root}",
                )
            dvc_root = root
        return cls(root=root, dvc_root=dvc_root, config=load_config(root))

    @cached_property
    def catalog(self) -> Catalog:
        """The catalog of this repository, opened (and brought up to date) once per command.

        Every service a command calls shares it: one `git` refresh, one file lock, one
        SQLite connection.
        """
        from dvcckpt.catalog import Catalog

        return Catalog(self.root)

    def relative(self, path: Path) -> str:
        """Repository-relative POSIX path; refuses anything outside the work tree."""
        relative = repo_relative(path, self.root)
        if relative is None:
            raise UsageError(
                f"{path} is outside the repository {self.root}",
                hint="checkpoints and the files they reference must live inside the repository",
            )
        return relative

    def inside(self, relative: str) -> Path:
        """Absolute path of a repository-relative path taken from a card (untrusted)."""
        candidate = (self.root / relative).resolve()
        if not candidate.is_relative_to(self.root):
            raise UsageError(
                f"path {relative!r} leads outside the repository",
                hint="card paths are relative to the repository root, without `..`",
            )
        return candidate


def load_config(root: Path) -> ProjectConfig:
    """The configuration of the repository at `root` (defaults if it has no file)."""
    path = root / CONFIG_FILE
    text = _read_policy_file(path) if os.path.lexists(path) else None
    return config_from_text(text, path, default_name=config_module.default_project_name(root))


def config_from_text(text: str | None, path: Path, default_name: str) -> ProjectConfig:
    """Settings from the text of a `dvcckpt.yaml` (None: the file is absent, defaults)."""
    if text is None:
        return ProjectConfig(project=default_name)
    document = _policy_document(text, path)
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a mapping of settings", hint=config_module.HINT)
    _refuse(path, config_module.unknown_fields(document, schema.CONFIG_SCHEMA), HINT_CONFIG)
    schema.validate_config(document, str(path))
    _refuse(path, config_module.setting_problems(document), HINT_CONFIG)
    return config_module.from_document(document, path)


def load_gates(root: Path) -> dict[str, Any]:
    """The validated gates document of the repository (ConfigError if absent or invalid)."""
    path = root / GATES_FILE
    if not os.path.lexists(path):
        raise ConfigError(
            f"{path} does not exist", hint="`dvcckpt init` writes an example gates.yaml"
        )
    try:
        stages: tuple[str, ...] | None = load_config(root).stages
    except ConfigError:
        stages = None  # a broken dvcckpt.yaml is reported as itself, not as gates.yaml
    return gates_from_text(_read_policy_file(path), path, stages)


def gates_from_text(text: str, path: Path, stages: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A validated gates document from its text (its stages among `stages`, if given).

    Unknown keys and rules mixing kinds are reported before the schema (whose
    messages for them are vague), non-finite thresholds after it.
    """
    document = _policy_document(text, path)
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a mapping with `version` and `gates`", HINT_GATES)
    unknown = config_module.unknown_fields(document, "gates.v1")
    _refuse(path, [gates.labelled(problem, document) for problem in unknown], HINT_GATES)
    _refuse(path, gates.shape_problems(document), HINT_GATES)
    found = schema.problems(document, "gates.v1")
    _refuse(path, [gates.labelled(problem, document) for problem in found], HINT_GATES)
    _refuse(path, gates.value_problems(document), HINT_GATES)
    if stages is not None:
        _refuse(path, gates.stage_problems(document, stages), HINT_GATES)
    return document


HINT_CONFIG = "fix dvcckpt.yaml; `dvcckpt schema --config` prints its schema"
HINT_GATES = "fix gates.yaml; `dvcckpt schema --gates` prints its schema"


def _refuse(path: Path, problems: list[str], hint: str) -> None:
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(f"{path}: {problems[0]}{more}", hint=hint, details=problems[1:])


def _read_policy_file(path: Path) -> str:
    """The text of a policy file; anything but a readable UTF-8 file is a ConfigError naming it."""
    if path.is_symlink() or not path.is_file():
        raise ConfigError(
            f"{path}: not a regular file",
            hint=f"{path.name} must be a plain file committed at the repository root",
        )
    try:
        return yamldoc.read_text(path)
    except CardError as exc:
        raise ConfigError(exc.message, exc.hint) from exc
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot be read ({exc.strerror or exc})",
            hint=f"check that {path.name} is readable by you",
        ) from exc


def _policy_document(text: str, path: Path) -> Any:
    try:
        return yamldoc.load_fast(text, str(path))
    except CardError as exc:
        raise ConfigError(exc.message, exc.hint) from exc


def _dvc_root(start: Path, git_root: Path) -> Path | None:
    for directory in (start, *start.parents):
        if (directory / ".dvc").is_dir():
            return directory
        if directory == git_root:
            break
    return None
