"""`dvcckpt check` as a real pre-commit hook: the pre-commit framework and the native hook."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from dvcckpt.cards import card
from tests.conftest import BIN, PreCommit, Result, git, pre_commit_config, write_checkpoint


@pytest.fixture(scope="session")
def hook_repository(pre_commit: PreCommit) -> Path:
    """This project's current source as a hook repository at tag v0 (what `rev:` points at)."""
    return pre_commit.repository


@pytest.fixture(scope="session")
def hook_env(pre_commit: PreCommit) -> dict[str, str]:
    return pre_commit.env


def commit(repo: Path, env: dict[str, str], message: str = "change") -> Result:
    done = subprocess.run(
        ["git", "commit", "-m", message],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture(params=["pre-commit framework", "dvcckpt install-hook"])
def hooked(request, repo: Path, hook_repository: Path, hook_env: dict[str, str], cli) -> Path:
    if request.param == "pre-commit framework":
        (repo / ".pre-commit-config.yaml").write_text(pre_commit_config(hook_repository))
        subprocess.run(
            [str(BIN / "pre-commit"), "install"],
            cwd=repo,
            check=True,
            capture_output=True,
            env={**os.environ, **hook_env},
        )
        git(repo, "add", ".pre-commit-config.yaml")
    else:
        result = cli("install-hook")
        assert result.code == 0, result.err
        assert (repo / ".git/hooks/pre-commit").read_text().count("dvcckpt") >= 2
    return repo


def add_and_commit(repo: Path, cli, env: dict[str, str], name: str = "m/step-1.pt") -> Path:
    write_checkpoint(repo / name)
    assert cli("add", name, "-p", "lr=0.1", "-m", "dev.f1=0.7", "--seed", "1").code == 0
    result = commit(repo, env, "add checkpoint")
    assert result.code == 0, result.out + result.err
    return repo / f"{name}.ckpt.yaml"


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def assert_refused(repo: Path, env: dict[str, str], *needles: str) -> None:
    before = head(repo)
    result = commit(repo, env)
    output = result.out + result.err
    assert result.code != 0, output
    assert head(repo) == before
    for needle in needles:
        assert needle in output, output


def test_good_card_is_committed(hooked: Path, cli, hook_env) -> None:
    card_file = add_and_commit(hooked, cli, hook_env)
    assert git(hooked, "ls-files", str(card_file.relative_to(hooked))).strip()


def test_schema_broken_card_is_refused_with_field_path(hooked: Path, cli, hook_env) -> None:
    write_checkpoint(hooked / "m/step-2.pt")
    assert cli("add", "m/step-2.pt").code == 0
    card_file = hooked / "m/step-2.pt.ckpt.yaml"
    card_file.write_text(card_file.read_text().replace("kind: full", "kind: fp8"))
    git(hooked, "add", "m/step-2.pt.ckpt.yaml")
    assert_refused(hooked, hook_env, "checkpoint.kind", "'fp8' is not one of")


def test_edited_immutable_field_is_refused(hooked: Path, cli, hook_env) -> None:
    card_file = add_and_commit(hooked, cli, hook_env)
    card_file.write_text(card_file.read_text().replace("lr: 0.1", "lr: 0.01"))
    git(hooked, "add", str(card_file))
    assert_refused(hooked, hook_env, "params.lr: is immutable once committed")


def test_tampered_metric_is_refused(hooked: Path, cli, hook_env) -> None:
    card_file = add_and_commit(hooked, cli, hook_env)
    card_file.write_text(card_file.read_text().replace("f1: 0.7", "f1: 0.9"))
    git(hooked, "add", str(card_file))
    assert_refused(hooked, hook_env, "metrics.dev.f1: is immutable")


def test_appended_evaluation_is_accepted(hooked: Path, cli, hook_env) -> None:
    card_file = add_and_commit(hooked, cli, hook_env)
    editable = card.read(card_file, editable=True)
    editable.document["evaluations"] = [
        {"step": 1, "split": "test", "metrics": {"f1": 0.69}, "at": "2026-02-01T09:00:00Z"}
    ]
    editable.document["tags"] = ["reviewed"]
    card.write(card_file, editable.document)
    git(hooked, "add", str(card_file))
    before = head(hooked)
    result = commit(hooked, hook_env)
    assert result.code == 0, result.out + result.err
    assert head(hooked) != before


def test_dvc_md5_mismatch_is_refused(hooked: Path, cli, hook_env) -> None:
    write_checkpoint(hooked / "m/step-3.pt")
    assert cli("add", "m/step-3.pt").code == 0
    pointer = hooked / "m/step-3.pt.dvc"
    text = pointer.read_text()
    md5 = text.split("md5: ")[1].split()[0]
    pointer.write_text(text.replace(md5, "0" * 32))
    git(hooked, "add", "m/step-3.pt.dvc")
    assert_refused(hooked, hook_env, "checkpoint.dvc.md5")


def test_deleted_card_is_refused_and_retiring_is_accepted(hooked: Path, cli, hook_env) -> None:
    card_file = add_and_commit(hooked, cli, hook_env)
    git(hooked, "rm", "--quiet", str(card_file.relative_to(hooked)))
    assert_refused(hooked, hook_env, "deleting a committed card is refused")
    git(hooked, "reset", "--quiet", "--hard")
    result = cli("retire", "m/step-1.pt", "--reason", "diverged after warm-up")
    assert result.code == 0, result.err
    committed = commit(hooked, hook_env, "retire")
    assert committed.code == 0, committed.out + committed.err
    assert not (hooked / "m/step-1.pt.dvc").exists()
    assert card.read(card_file).data["tombstone"]["reason"] == "diverged after warm-up"
