"""Shared fixtures: real git + DVC repositories, prepared once and copied per test."""

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
