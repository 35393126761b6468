"""`add` and `dvcckpt.save` apply the hook's policy before anything is written.

Real repositories set up by `dvcckpt init` (the default dvcckpt.yaml requires
code.commit, env.python and seeds.seed, and data.splits for finetune) with the
native pre-commit hook installed, so "the hook accepts it" means a real `git commit`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import dvcckpt
from dvcckpt.errors import CardError
from tests.conftest import Result, git, write_checkpoint
from tests.corpus import assert_user_error, changed, snapshot


@pytest.fixture
def project(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository as `dvcckpt init` leaves it, committed, with the native hook."""
    root = tmp_path / "proj"
    assert cli("init", str(root), "--project", "demo").code == 0
    monkeypatch.chdir(root)
    git(root, "config", "user.email", "ada@example.com")
    git(root, "config", "user.name", "Ada")
    assert cli("install-hook").code == 0
    git(root, "add", "--all")
    git(root, "commit", "-qm", "set up dvcckpt", "--no-verify")
    return root


def commit(root: Path, message: str = "add checkpoint") -> Result:
    done = subprocess.run(["git", "commit", "-m", message], cwd=root, capture_output=True,
                          text=True, env=dict(os.environ), check=False)  # fmt: skip
    return Result(done.returncode, done.stdout, done.stderr)


def staged(root: Path) -> str:
    return git(root, "diff", "--cached", "--name-only")


def hook_lines(cli, card_file: str) -> list[str]:
    """What `dvcckpt check` (the hook) says about a card, one line per finding."""
    result = cli("check", card_file)
    return [line for line in result.out.splitlines() if line.startswith(card_file)]


def test_add_refuses_what_the_hook_refuses_with_its_messages_and_writes_nothing(
    project: Path, cli
) -> None:
    write_checkpoint(project / "models/bert/step-100.pt")
    before, index = snapshot(project), staged(project)
    refused = cli("add", "models/bert/step-100.pt", "--phase", "finetune")
    assert_user_error(refused.code, refused.err, names=("models/bert/step-100.pt.ckpt.yaml",))
    assert refused.code == 3 and "next: git commit" not in refused.out
    # Nothing cached, written or staged: no card, no .dvc, no .gitignore, no cache object.
    assert changed(before, snapshot(project)) == [] and staged(project) == index
    details = [line.strip() for line in refused.err.splitlines() if line.startswith("  ")]
    hint = next(line for line in refused.err.splitlines() if line.startswith("hint:"))
    assert "--seed 42" in hint and "--split test=PATH" in hint and "--draft" in hint

    # The same card written as a draft: the hook lists exactly the same findings.
    drafted = cli("add", "models/bert/step-100.pt", "--phase", "finetune", "--draft")
    assert drafted.code == 0, drafted.err
    assert details == hook_lines(cli, "models/bert/step-100.pt.ckpt.yaml")
    assert details == [
        "models/bert/step-100.pt.ckpt.yaml: seeds.seed: is missing (required for every card "
        "by dvcckpt.yaml)",
        "models/bert/step-100.pt.ckpt.yaml: data.splits: is missing (required for phase "
        "'finetune' by dvcckpt.yaml)",
    ]


def test_a_draft_is_written_says_the_commit_will_fail_and_the_commit_does(
    project: Path, cli
) -> None:
    write_checkpoint(project / "models/bert/step-100.pt")
    drafted = cli("add", "models/bert/step-100.pt", "--draft")
    assert drafted.code == 0, drafted.err
    warnings = [line for line in drafted.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "seeds.seed" in warnings[0] and "--seed 42" in warnings[0]
    assert "git commit` will refuse it" in warnings[0]
    assert "next: git commit" not in drafted.out and "registered " in drafted.out
    assert "models/bert/step-100.pt.ckpt.yaml" in staged(project)
    refused = commit(project)
    assert refused.code != 0 and "seeds.seed: is missing" in refused.out + refused.err


def test_with_the_fields_given_add_writes_a_card_the_real_hook_commits(project: Path, cli) -> None:
    (project / "data").mkdir()
    (project / "data/test.csv").write_text("text,label\nok,pos\n")
    write_checkpoint(project / "models/bert/step-100.pt")
    added = cli("add", "models/bert/step-100.pt", "--phase", "finetune", "--seed", "7",
                "--split", "test=data/test.csv")  # fmt: skip
    assert added.code == 0, added.err
    assert added.err == "" and "next: git commit" in added.out
    done = commit(project)
    assert done.code == 0, done.out + done.err


@pytest.mark.parametrize(
    "spelling",
    [("-p", "seed=7"), ("--params", "params.json"), ("--from", "run.json")],
    ids=["-p", "--params", "--from"],
)
def test_a_seed_parameter_satisfies_the_required_seed(
    project: Path, cli, spelling: tuple[str, str]
) -> None:
    (project / "params.json").write_text(json.dumps({"seed": 7}))
    (project / "run.json").write_text(json.dumps({"params": {"seed": 7}, "step": 5}))
    write_checkpoint(project / "models/bert/step-5.pt")
    added = cli("add", "models/bert/step-5.pt", *spelling)
    assert added.code == 0, added.err
    assert commit(project).code == 0


def test_a_name_against_the_pattern_is_refused_at_add_time(project: Path, cli) -> None:
    write_checkpoint(project / "models/bert/step-100.pt")
    before = snapshot(project)
    refused = cli("add", "models/bert/step-100.pt", "--seed", "1", "--name", "my-favourite")
    assert_user_error(refused.code, refused.err, names=("name",))
    assert "'my-favourite' does not follow the naming pattern" in refused.err
    assert changed(before, snapshot(project)) == []
    # --draft forgives missing fields only, never a wrong name.
    drafted = cli("add", "models/bert/step-100.pt", "--name", "my-favourite", "--draft")
    assert drafted.code == 3 and changed(before, snapshot(project)) == []


def test_without_a_commit_code_commit_is_missing_and_the_hint_says_commit(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "fresh"
    assert cli("init", str(root)).code == 0
    monkeypatch.chdir(root)
    write_checkpoint(root / "m/step-1.pt")
    refused = cli("add", "m/step-1.pt", "--seed", "1")
    assert_user_error(refused.code, refused.err, names=("code.commit",))
    assert "commit the training code first" in refused.err


def test_save_refuses_like_add_and_a_draft_warns_on_stderr(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_checkpoint(project / "models/bert/step-100.pt")
    before = snapshot(project)
    with pytest.raises(CardError) as caught:
        dvcckpt.save("models/bert/step-100.pt", step=100)
    assert caught.value.exit_code == 3
    assert caught.value.details == [
        "models/bert/step-100.pt.ckpt.yaml: seeds.seed: is missing (required for every card "
        "by dvcckpt.yaml)"
    ]
    assert "seeds=42" in caught.value.hint
    assert changed(before, snapshot(project)) == []

    capsys.readouterr()
    saved = dvcckpt.save("models/bert/step-100.pt", step=100, draft=True)
    err = capsys.readouterr().err
    assert err.startswith("warning: models/bert/step-100.pt.ckpt.yaml is a draft")
    assert "seeds.seed" in err and "seeds" not in saved.data
    assert commit(project).code != 0

    write_checkpoint(project / "models/bert/step-200.pt", seed=2)
    complete = dvcckpt.save("models/bert/step-200.pt", step=200, seeds=3)
    assert capsys.readouterr().err == "" and complete.data["seeds"] == {"seed": 3}


@pytest.mark.parametrize(
    "estimate",
    [{"value": 0.5, "ci": [0.9, 0.1]}, {"value": 5, "ci": [0.1, 0.2]}],
    ids=["low above high", "value outside"],
)
def test_an_interval_from_a_metrics_file_that_is_none_is_refused_before_writing(
    project: Path, cli, estimate: dict[str, object]
) -> None:
    write_checkpoint(project / "models/bert/step-100.pt")
    (project / "m.json").write_text(json.dumps({"test": {"f1": estimate}}))
    before, index = snapshot(project), staged(project)
    refused = cli("add", "models/bert/step-100.pt", "--seed", "1", "--metrics", "m.json")
    assert_user_error(refused.code, refused.err, names=("metrics.test.f1",))
    assert changed(before, snapshot(project)) == [] and staged(project) == index
