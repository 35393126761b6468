"""The hook's own failures: unusual card paths, and a hook that runs no repository code.

Driven through the real pre-commit framework and the native hook that
`install-hook` writes, with real `git commit`s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dvcckpt.adapters import git as git_adapter
from dvcckpt.cards import check as hook
from tests.conftest import BIN, PreCommit, git, pre_commit_config, write_checkpoint
from tests.test_hook import commit

UNUSUAL_PATHS = [
    "m/my model/step 1.pt",  # spaces in a folder and a file name
    "m/ünïcødé.pt",
    "m/q'uo\"te.pt",
    "m/-leading-dash.pt",
    "m/[ab]*.pt",  # glob characters: git must not read them as a pattern
    "m/missing x.pt",  # the same shape as cat-file's `NAME missing` line
]


@pytest.fixture(params=["pre-commit framework", "dvcckpt install-hook"])
def hooked(request, repo: Path, pre_commit: PreCommit, cli) -> tuple[Path, dict[str, str]]:
    if request.param == "pre-commit framework":
        (repo / ".pre-commit-config.yaml").write_text(pre_commit_config(pre_commit.repository))
        subprocess.run(
            [str(BIN / "pre-commit"), "install"],
            cwd=repo,
            check=True,
            capture_output=True,
            env={**os.environ, **pre_commit.env},
        )
        git(repo, "add", ".pre-commit-config.yaml")
    else:
        assert cli("install-hook").code == 0
    return repo, pre_commit.env


def test_cards_at_unusual_paths_commit_and_a_bad_one_is_still_refused(hooked, cli) -> None:
    repo, env = hooked
    for step, name in enumerate(UNUSUAL_PATHS, start=1):
        write_checkpoint(repo / name, seed=step)
        result = cli("add", name, "--step", str(step), "--model", f"m{step}")
        assert result.code == 0, result.err
    result = commit(repo, env)
    assert result.code == 0, result.out + result.err
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    # The hook really read those cards: an edit to an immutable field is refused.
    card_file = repo / f"{UNUSUAL_PATHS[0]}.ckpt.yaml"
    card_file.write_text(card_file.read_text().replace("step: 1", "step: 99"))
    git(repo, "add", "--", str(card_file.relative_to(repo)))
    refused = commit(repo, env)
    assert refused.code != 0 and "checkpoint.step" in refused.out + refused.err


@pytest.mark.parametrize(
    "name", ["m/new\nline.pt.ckpt.yaml", "m/tab\there.pt.ckpt.yaml", "m/cr\r.pt.ckpt.yaml"]
)
def test_a_card_path_with_control_characters_is_a_finding_not_a_crash(
    repo: Path, cli, name: str
) -> None:
    write_checkpoint(repo / "m/a.pt")
    assert cli("add", "m/a.pt", "--step", "1").code == 0
    (repo / name).write_bytes((repo / "m/a.pt.ckpt.yaml").read_bytes())
    git(repo, "add", "--", name)
    for args in ((), ("--all",)):
        result = cli("check", *args)
        assert result.code == 1, result.err
        lines = result.out.splitlines()
        assert all(": " in line for line in lines), result.out  # no forged lines
        assert any("checkpoint.path" in line for line in lines), result.out


def test_read_blobs_reads_any_path_and_any_revision_spec(repo: Path) -> None:
    names = ["a b", "missing", "x missing", "new\nline", "cr\r", "-dash", "tab\tx", "ü"]
    for index, name in enumerate(names):
        (repo / name).write_bytes(f"content {index}".encode())
    git(repo, "add", "--", *names)
    git(repo, "commit", "--quiet", "--no-verify", "-m", "files")
    specs = [f":{n}" for n in names] + [f"HEAD:{n}" for n in names]
    specs += [":nope", "HEAD:nope x", "HEAD", "--all", "HEAD:new\nnope"]
    blobs = git_adapter.read_blobs(repo, specs)
    for index, name in enumerate(names):
        assert blobs[f":{name}"] == blobs[f"HEAD:{name}"] == f"content {index}".encode()
    assert [blobs[s] for s in specs[2 * len(names) :]] == [None] * 5


def test_native_hook_runs_the_console_script_not_repository_code(repo: Path, cli) -> None:
    # A change that plants a `click` package at the repository root: `python -m dvcckpt`
    # run from the root (as git runs hooks) would import it.
    marker = repo.parent / "planted-code-ran"
    (repo / "click").mkdir()
    (repo / "click/__init__.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\nraise SystemExit(0)\n"
    )
    git(repo, "add", "click/__init__.py")
    git(repo, "commit", "--quiet", "--no-verify", "-m", "planted")
    assert cli("install-hook").code == 0
    script = (repo / ".git/hooks/pre-commit").read_text()
    assert " -m dvcckpt" not in script and "dvcckpt check" in script
    write_checkpoint(repo / "m/a.pt")
    assert cli("add", "m/a.pt", "--step", "1").code == 0
    card_file = repo / "m/a.pt.ckpt.yaml"
    card_file.write_text(card_file.read_text().replace("kind: full", "kind: fp8"))
    git(repo, "add", "m/a.pt.ckpt.yaml")
    result = commit(repo, {})
    assert not marker.exists(), "the hook imported code from the repository"
    assert result.code != 0 and "checkpoint.kind" in result.out + result.err  # dvcckpt ran


def test_hook_script_falls_back_to_dvcckpt_on_path(repo: Path, cli, tmp_path: Path) -> None:
    assert cli("install-hook").code == 0
    text = (repo / ".git/hooks/pre-commit").read_text()
    assert text.startswith("#!/bin/sh\n") and hook.HOOK_MARKER in text
    assert str(BIN / "dvcckpt") in text
    assert text.rstrip().endswith('exec dvcckpt check "$@"')


def test_install_hook_never_writes_through_a_symlink(repo: Path, cli, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("#!/bin/sh\n# someone else's hook\n")
    hook_file = repo / ".git/hooks/pre-commit"
    hook_file.symlink_to(target)
    refused = cli("install-hook")
    assert refused.code == 4 and "not written by dvcckpt" in refused.err
    assert cli("install-hook", "--force").code == 0
    assert target.read_text() == "#!/bin/sh\n# someone else's hook\n"
    assert not hook_file.is_symlink() and hook.HOOK_MARKER in hook_file.read_text()


def test_install_hook_onto_a_folder_is_a_clear_error(repo: Path, cli) -> None:
    (repo / ".git/hooks/pre-commit").mkdir()
    result = cli("install-hook", "--force")
    assert result.code == 4 and "is a folder" in result.err and "Traceback" not in result.err


def test_a_repository_folder_with_spaces_works_with_the_native_hook(
    repo: Path, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spaced = tmp_path / "my repo "  # a trailing space too: git's output must not be stripped
    shutil.copytree(repo, spaced, symlinks=True)
    monkeypatch.chdir(spaced)
    assert cli("install-hook").code == 0
    assert (spaced / ".git/hooks/pre-commit").is_file()
    write_checkpoint(spaced / "m/a.pt")
    assert cli("add", "m/a.pt", "--step", "1").code == 0
    result = commit(spaced, {})
    assert result.code == 0, result.out + result.err


def test_a_staged_card_at_a_path_no_file_system_can_hold_is_a_finding(repo: Path, cli) -> None:
    # Such paths reach the index from a tree built elsewhere (git allows any length).
    write_checkpoint(repo / "m/a.pt")
    assert cli("add", "m/a.pt", "--step", "1").code == 0
    long_name = "m/" + "x" * 300 + ".pt"
    text = (repo / "m/a.pt.ckpt.yaml").read_text().replace("path: m/a.pt", f"path: {long_name}")
    blob = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"], cwd=repo, input=text.encode(),
        capture_output=True, check=True,
    ).stdout.decode().strip()  # fmt: skip
    git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{long_name}.ckpt.yaml")
    result = cli("check")
    assert result.code == 1, result.err
    assert f"{long_name}.ckpt.yaml: checkpoint.path: cannot be examined" in result.out
    assert "Traceback" not in result.err and "internal error" not in result.err
