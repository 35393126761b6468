"""The promotion policy in force at a commit: its dvcckpt.yaml, gates.yaml and allowed signers.

A decision is judged by the policy of the first parent of the commit that
brings it in (for a pull request: its base), never by files the change itself
edits, so lowering a threshold or adding a key in the same change has no effect.
Policy files that cannot be read there make every decision they govern invalid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dvcckpt.adapters import git
from dvcckpt.core.config import CONFIG_FILE, ProjectConfig, default_project_name
from dvcckpt.core.gates import GATES_FILE
from dvcckpt.core.limits import DEFAULT_MAX_BYTES
from dvcckpt.errors import DvcckptError
from dvcckpt.project import Project, config_from_text, gates_from_text


@dataclass(frozen=True)
class Policy:
    rev: str | None  # the commit it was read from (None: before the first commit)
    config: ProjectConfig
    gates: dict[str, Any] | None  # None: no gates.yaml
    gates_blob: str | None
    signers: str  # allowed-signers text ("" when none is configured)
    problem: str | None = None  # why this policy cannot be trusted, if it cannot

    @property
    def label(self) -> str:
        return self.rev[:8] if self.rev else "(no commit)"


class PolicyReader:
    """Policies at many commits, read through batched `git cat-file` calls and cached."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._cache: dict[str | None, Policy] = {}

    def at(self, rev: str | None) -> Policy:
        if rev not in self._cache:
            self.prefetch([rev])
        return self._cache[rev]

    def prefetch(self, revs: list[str | None]) -> None:
        todo = [r for r in dict.fromkeys(revs) if r not in self._cache]
        if not todo:
            return
        root = self.project.root
        commits = [r for r in todo if r is not None]
        files = git.read_blobs(
            root, [f"{r}:{name}" for r in commits for name in (CONFIG_FILE, GATES_FILE)]
        )
        configs: dict[str, ProjectConfig | str] = {}
        for commit in commits:
            configs[commit] = self._config(files.get(f"{commit}:{CONFIG_FILE}"), commit)
        signer_specs = {
            commit: f"{commit}:{config.allowed_signers}"
            for commit, config in configs.items()
            if isinstance(config, ProjectConfig) and config.allowed_signers
        }
        signers = git.read_blobs(root, list(signer_specs.values()))
        for rev in todo:
            if rev is None:
                self._cache[None] = Policy(None, self._default(), None, None, "")
                continue
            config = configs[rev]
            if isinstance(config, str):
                self._cache[rev] = Policy(rev, self._default(), None, None, "", config)
                continue
            signer_text = signers.get(signer_specs[rev]) if rev in signer_specs else b""
            self._cache[rev] = self._policy(rev, config, files.get(f"{rev}:{GATES_FILE}"),
                                            signer_text)  # fmt: skip

    def _default(self) -> ProjectConfig:
        return ProjectConfig(project=default_project_name(self.project.root))

    def _config(self, content: bytes | None, rev: str) -> ProjectConfig | str:
        try:
            text = _text(content, CONFIG_FILE)
            return config_from_text(text, Path(f"{rev[:8]}:{CONFIG_FILE}"), self._default().project)
        except DvcckptError as exc:
            return f"{CONFIG_FILE} at {rev[:8]} is invalid: {exc.message}"

    def _policy(
        self, rev: str, config: ProjectConfig, gates_content: bytes | None, signers: bytes | None
    ) -> Policy:
        problem = None
        document = None
        if signers is None:
            problem = f"the allowed signers file {config.allowed_signers} is missing at {rev[:8]}"
        if gates_content is not None:
            try:
                text = _text(gates_content, GATES_FILE) or ""
                document = gates_from_text(text, Path(f"{rev[:8]}:{GATES_FILE}"))
            except DvcckptError as exc:
                problem = f"{GATES_FILE} at {rev[:8]} is invalid: {exc.message}"
        blob = git.blob_id(gates_content) if gates_content is not None else None
        text = (signers or b"").decode("utf-8", "replace")
        return Policy(rev, config, document, blob, text, problem)


def _text(content: bytes | None, name: str) -> str | None:
    if content is None:
        return None
    if len(content) > DEFAULT_MAX_BYTES:
        raise DvcckptError(f"{name} is larger than {DEFAULT_MAX_BYTES} bytes", hint="")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        raise DvcckptError(f"{name} is not UTF-8 text", hint="") from None
