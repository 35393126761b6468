"""User mistakes get one `error:` line, a `hint:`, the documented exit code, no traceback."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Result, git, run_process, write_checkpoint


def assert_clean_error(result: Result, code: int, *needles: str) -> None:
    assert result.code == code, (result.code, result.out, result.err)
    lines = result.err.strip().splitlines()
    assert lines[0].startswith("error: ") and lines[-1].startswith("hint: "), result.err
    assert sum(line.startswith("error:") for line in lines) == 1
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in result.err


def test_not_a_git_repository(tmp_path: Path) -> None:
    write_checkpoint(tmp_path / "a.pt")
    result = run_process("add", "a.pt", cwd=tmp_path)
    assert_clean_error(result, 4, "not inside a git repository", "git init")


def test_git_repository_without_dvc(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet")
    write_checkpoint(tmp_path / "a.pt")
    result = run_process("add", "a.pt", cwd=tmp_path)
    assert_clean_error(result, 4, "not a DVC repository", "dvc init")


def test_missing_checkpoint_file(repo: Path) -> None:
    result = run_process("add", "models/nope.pt", cwd=repo)
    assert_clean_error(result, 2, "models/nope.pt: no such file")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--kind", "fp16"], "'fp16' is not one of"),
        (["--step", "-3"], "--step"),
        (["-m", "dev.macro_f1=high"], "'high' is not a number"),
        (["-m", "dev.macro_f1=nan"], "not a finite number"),
        (["-m", "macro_f1=0.8"], "name the split"),
        (["-p", "lr"], "expected KEY=VALUE"),
        (["--seed", "forty"], "seeds are integers"),
        (["--parent", "cousin_of=x"], "not one of resumed_from"),
        (["--no-such-option"], "No such option"),
    ],
)
def test_bad_option_values_are_usage_errors(repo: Path, cli, args: list[str], needle: str) -> None:
    write_checkpoint(repo / "m/a.pt")
    result = cli("add", "m/a.pt", "--step", "1", *args)
    assert_clean_error(result, 2, needle)
    assert not (repo / "m/a.pt.dvc").exists()  # nothing happened


def test_nan_in_metrics_file_is_refused_before_anything_is_written(repo: Path, cli) -> None:
    (repo / "metrics.yaml").write_text("dev:\n  macro_f1: .nan\n  loss: 0.3\n")
    write_checkpoint(repo / "m/a.pt")
    result = cli("add", "m/a.pt", "--step", "1", "--metrics", "metrics.yaml")
    assert_clean_error(result, 3, "metrics.dev.macro_f1", "not a finite number")
    assert not (repo / "m/a.pt.dvc").exists() and not (repo / "m/a.pt.ckpt.yaml").exists()
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""


@pytest.fixture
def card_file(repo: Path, cli) -> Path:
    write_checkpoint(repo / "m/a.pt")
    assert cli("add", "m/a.pt", "--step", "1", "-m", "dev.macro_f1=0.8").code == 0
    return repo / "m/a.pt.ckpt.yaml"


def test_nan_metric_in_a_card_names_the_field(card_file: Path, cli) -> None:
    card_file.write_text(card_file.read_text().replace("macro_f1: 0.8", "macro_f1: .nan"))
    assert_clean_error(cli("show", str(card_file)), 3, "metrics.dev.macro_f1: nan is not a finite")


def test_unknown_newer_schema_version_asks_for_an_upgrade(card_file: Path, cli) -> None:
    card_file.write_text(card_file.read_text().replace("version: '1.1'", "version: '1.7'"))
    assert_clean_error(cli("show", str(card_file)), 3, "1.7 is newer", "upgrade dvcckpt")


def test_alias_bomb_is_refused(card_file: Path, cli) -> None:
    bomb = ["x-bomb:", '  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        bomb.append(f"  {level}: &{level} [{', '.join(['*' + previous] * 9)}]")
    card_file.write_text(card_file.read_text() + "\n".join(bomb) + "\n")
    assert_clean_error(cli("show", str(card_file)), 3, "anchors and aliases are not allowed")


def test_oversized_card_is_refused(card_file: Path, cli) -> None:
    card_file.write_text(card_file.read_text() + "notes: '" + "x" * (1 << 20) + "'\n")
    assert_clean_error(cli("show", str(card_file)), 3, "over the 1048576-byte limit")


def test_schema_violations_are_all_listed(card_file: Path, cli) -> None:
    text = card_file.read_text().replace("kind: full", "kind: fp16").replace("step: 1", "step: -1")
    card_file.write_text(text)
    result = cli("show", str(card_file))
    assert_clean_error(result, 3, "checkpoint.kind", "checkpoint.step", "(and 1 more)")


def test_python_tags_are_refused(card_file: Path, cli) -> None:
    card_file.write_text(
        card_file.read_text() + "x-evil: !!python/object/apply:os.system ['true']\n"
    )
    assert_clean_error(cli("show", str(card_file)), 3, "tag 'tag:yaml.org,2002:python")


def test_unknown_checkpoint_name(repo: Path, cli) -> None:
    assert_clean_error(cli("show", "no-such-model"), 4, "no checkpoint named 'no-such-model'")


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_unwritable_directory(repo: Path) -> None:
    # Root ignores file modes; inside an unprivileged user namespace it does not.
    folder = repo / "readonly"
    write_checkpoint(folder / "a.pt")
    folder.chmod(0o555)
    probe = subprocess.run(["unshare", "--user", "touch", str(folder / "probe")], check=False)
    assert probe.returncode != 0, "the user namespace should not be able to write here"
    result = run_process(
        "add",
        "readonly/a.pt",
        "--step",
        "1",
        cwd=repo,
        prefix=("unshare", "--user"),
        env={
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "safe.directory",
            "GIT_CONFIG_VALUE_0": "*",
        },
    )
    folder.chmod(0o755)
    assert_clean_error(result, 4, "readonly", "writable")
    assert not (folder / "a.pt.ckpt.yaml").exists()


def test_traceback_flag_shows_the_traceback_for_debugging(repo: Path) -> None:
    result = run_process("show", "nope", "--traceback", cwd=repo)
    assert result.code == 4 and "Traceback" in result.err
