"""Shared fixtures: real git + DVC repositories, prepared once and copied per test.

Every test runs hermetically: git and DVC read no user or system configuration and
no caller's repository leaks in through GIT_* variables (see `hermetic_env`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dvcckpt.adapters import dvcrepo as store
from dvcckpt.cli import main

BIN = Path(sys.executable).parent
GIT_CONFIG = (
    "[user]\n\tname = Ada Trainer\n\temail = ada@example.com\n[init]\n\tdefaultBranch = main\n"
)
# Inherited variables that would point git at a caller's repository, index, objects,
# identity, dates or configuration (a suite started from a git hook has several set).
KEEP_GIT_VARIABLES = frozenset({"GIT_EXEC_PATH"})


@dataclass
class Result:
    code: int
    out: str
    err: str


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def isolate(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Point git's and DVC's configuration and DVC's site cache at fresh folders in `home`."""
    for name in [n for n in os.environ if n.startswith("GIT_") and n not in KEEP_GIT_VARIABLES]:
        monkeypatch.delenv(name)
    home.mkdir(parents=True, exist_ok=True)
    gitconfig = home / "gitconfig"
    gitconfig.write_text(GIT_CONFIG)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for variable, folder in (
        ("DVC_GLOBAL_CONFIG_DIR", "dvc-global"),
        ("DVC_SYSTEM_CONFIG_DIR", "dvc-system"),
        ("DVC_SITE_CACHE_DIR", "dvc-site-cache"),
    ):
        (home / folder).mkdir(exist_ok=True)
        monkeypatch.setenv(variable, str(home / folder))
    monkeypatch.setenv("DVC_TEST", "true")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")


@pytest.fixture(scope="session", autouse=True)
def hermetic_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The same isolation for session-scoped fixtures (set up before any test's own)."""
    with pytest.MonkeyPatch.context() as patch:
        isolate(patch, tmp_path_factory.mktemp("env-session"))
        yield


@pytest.fixture(autouse=True)
def hermetic_env(
    hermetic_session: None,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fresh global git config and DVC config/cache folders for every test, undone after it."""
    isolate(monkeypatch, tmp_path_factory.mktemp("env"))


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """git + DVC initialised and committed: built once (~0.1 s), copied per test (~5 ms)."""
    root = tmp_path_factory.mktemp("template") / "repo"
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "config", "user.name", "Ada Trainer")
    git(root, "config", "user.email", "ada@example.com")
    store.init(root)
    (root / "train.py").write_text("print('training')\n")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "-m", "init")
    return root


@pytest.fixture
def repo(template_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(template_repo, root, symlinks=True)
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Iterator[object]:
    """Run the CLI in-process (fast); returns exit code and captured output."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    yield run


def run_process(
    *args: str, cwd: Path, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> Result:
    """Run the installed `dvcckpt` executable as a user would."""
    done = subprocess.run(
        [*prefix, str(BIN / "dvcckpt"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def write_checkpoint(path: Path, size: int = 4096, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes((i * 31 + seed) % 251 for i in range(size)))
    return path
