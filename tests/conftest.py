"""Shared fixtures: real git + DVC repositories, prepared once and copied per test.

Every test runs hermetically: git and DVC read no user or system configuration and
no caller's repository leaks in through GIT_* variables (see `hermetic_env`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from dvcckpt.adapters import dvcrepo as store
from dvcckpt.cli import main

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
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


@dataclass(frozen=True)
class PreCommit:
    """This project's source as a pre-commit hook repository, and the environment to use it."""

    repository: Path
    env: dict[str, str]


# What the hook repository holds: what pre-commit needs to `pip install` the hook.
HOOK_SOURCES = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "dvcckpt", "schemas",
                "templates")  # fmt: skip


def pre_commit_config(repository: Path) -> str:
    config = f"repos:\n  - repo: {repository}\n    rev: v0\n    hooks:\n"
    return config + "      - id: dvcckpt-check\n"


def pre_commit_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder per pytest run, shared by all pytest-xdist workers (each has its own
    basetemp inside the run's)."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "pre-commit"


def pre_commit_env(folder: Path, environ: Mapping[str, str]) -> dict[str, str]:
    return {"PRE_COMMIT_HOME": str(folder / "home"), "PATH": f"{BIN}{os.pathsep}{environ['PATH']}"}


def prepare_pre_commit(folder: Path, environ: Mapping[str, str], wait: bool = True) -> bool:
    """Build the hook repository and install its hook environment, once per run.

    pre-commit builds a virtualenv for the hook and pip-installs this project into it
    (tens of seconds). Whoever takes the file lock first builds; the others wait
    (`wait`) or return False at once. Every command gets `environ` explicitly, so this
    also runs in a background thread while tests patch os.environ.
    """
    folder.mkdir(parents=True, exist_ok=True)
    env = {**environ, **pre_commit_env(folder, environ)}

    def run(*command: str, cwd: Path) -> None:
        subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)

    with (folder / "lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        ready = folder / "ready"
        if ready.exists():
            return True
        repository = folder / "hookrepo" / "dvcckpt"
        shutil.rmtree(folder / "hookrepo", ignore_errors=True)  # from a build that failed
        repository.mkdir(parents=True)
        for name in HOOK_SOURCES:
            source = ROOT / name
            if source.is_dir():
                ignore = shutil.ignore_patterns("__pycache__")
                shutil.copytree(source, repository / name, ignore=ignore)
            else:
                shutil.copy2(source, repository / name)
        run("git", "init", "--quiet", cwd=repository)
        run("git", "add", "--all", cwd=repository)
        run("git", "-c", "user.name=ci", "-c", "user.email=ci@example.com", "commit", "-qm", "v0",
            cwd=repository)  # fmt: skip
        run("git", "tag", "v0", cwd=repository)
        warm = folder / "warm"
        shutil.rmtree(warm, ignore_errors=True)
        warm.mkdir()
        run("git", "init", "--quiet", cwd=warm)
        (warm / ".pre-commit-config.yaml").write_text(pre_commit_config(repository))
        run(str(BIN / "pre-commit"), "install-hooks", cwd=warm)
        ready.touch()
        return True


@pytest.fixture(scope="session", autouse=True)
def pre_commit_warm_up(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    hermetic_session: None,
) -> Iterator[None]:
    """Start building the hook environment in the background as the session starts, if
    any collected test needs it, so that tests run meanwhile instead of waiting."""
    items = request.session.items
    if not any("pre_commit" in getattr(item, "fixturenames", ()) for item in items):
        yield
        return
    folder, environ = pre_commit_folder(tmp_path_factory), dict(os.environ)

    def build() -> None:
        # On failure the `pre_commit` fixture builds again and reports what went wrong.
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            prepare_pre_commit(folder, environ, wait=False)

    builder = threading.Thread(target=build, name="pre-commit warm-up", daemon=True)
    builder.start()
    yield
    builder.join()  # another worker may be waiting for this build


@pytest.fixture(scope="session")
def pre_commit(tmp_path_factory: pytest.TempPathFactory, hermetic_session: None) -> PreCommit:
    """The hook repository and a PRE_COMMIT_HOME with its environment installed."""
    folder = pre_commit_folder(tmp_path_factory)
    prepare_pre_commit(folder, os.environ)
    return PreCommit(folder / "hookrepo" / "dvcckpt", pre_commit_env(folder, os.environ))


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
