"""Fault drills for the write side: `add`, `promote`, `retire` killed, racing, out of
space, read-only, or blocked by a stale `.git/index.lock`.

Kills are real: the installed `dvcckpt` runs as a subprocess with DVCCKPT_FAULT_POINT
naming the point where it SIGKILLs itself (adapters/atomic.py lists the points). After
each fault: the checkpoint is intact in the work tree, no card or `.dvc` file is half
written, nothing untracked and unignored is left behind, the message is clear, and
re-running the same command gives exactly what an uninterrupted run gives.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import BIN, Result, git, run_process, write_checkpoint
from tests.corpus import assert_user_error, remounted_read_only, tmpfs

CKPT = "models/m/step-100.pt"
CARD = CKPT + ".ckpt.yaml"
POINTER = CKPT + ".dvc"
SIZE = 3 << 20  # several copy chunks would be needed at 1 MiB; one 8 MiB chunk suffices


def add(root: Path, *extra: str, fault: str | None = None, path: str = CKPT) -> Result:
    env = {"DVCCKPT_FAULT_POINT": fault} if fault else {}
    return run_process("add", path, "--step", "100", *extra, cwd=root, env=env)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def untracked(root: Path) -> list[str]:
    """What `git add -A` would pick up besides checkpoints not yet registered and registry
    files (junk from a killed run)."""
    out = git(root, "status", "--porcelain=v1", "--untracked-files=all")
    paths = [line[3:] for line in out.splitlines() if line.startswith("??")]
    expected = (".ckpt.yaml", ".dvc", ".gitignore", ".pt", ".bin")
    return [p for p in paths if not p.endswith(expected)]


def assert_consistent(root: Path, original: str, path: str = CKPT) -> None:
    """The checkpoint is intact; a card or pointer present is whole and agrees with it."""
    assert sha(root / path) == original, "the checkpoint in the work tree changed"
    assert untracked(root) == [], untracked(root)
    pointer_file = root / (path + ".dvc")
    if pointer_file.exists():
        out = yaml.safe_load(pointer_file.read_text())["outs"][0]
        assert out["md5"] == hashlib.md5((root / path).read_bytes()).hexdigest()
    card_file = root / (path + ".ckpt.yaml")
    if card_file.exists():
        assert yaml.safe_load(card_file.read_text())["checkpoint"]["sha256"] == original


def assert_registered(root: Path, original: str, path: str = CKPT) -> None:
    """What an uninterrupted `add` leaves: card, pointer and .gitignore staged, data cached."""
    assert_consistent(root, original, path)
    staged = set(git(root, "diff", "--cached", "--name-only").split())
    folder = path.rpartition("/")[0]
    assert {path + ".ckpt.yaml", path + ".dvc", f"{folder}/.gitignore"} <= staged
    index_card = git(root, "show", f":{path}.ckpt.yaml")
    assert index_card == (root / (path + ".ckpt.yaml")).read_text()
    assert git(root, "show", f":{path}.dvc") == (root / (path + ".dvc")).read_text()
    assert f"/{path.rpartition('/')[2]}" in (root / folder / ".gitignore").read_text().split()
    md5 = yaml.safe_load((root / (path + ".dvc")).read_text())["outs"][0]["md5"]
    cached = root / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    assert hashlib.md5(cached.read_bytes()).hexdigest() == md5
    status = subprocess.run(
        [str(BIN / "dvc"), "status", path + ".dvc"], cwd=root, capture_output=True, text=True
    )
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout


@pytest.mark.parametrize("point", ["cache-copy", "cached", "staged", "written"])
def test_add_killed_at_any_point_keeps_the_checkpoint_and_reruns(repo: Path, point: str) -> None:
    original = sha(write_checkpoint(repo / CKPT, size=SIZE))
    killed = add(repo, fault=point)
    assert killed.code == -signal.SIGKILL, (killed.code, killed.err)
    assert_consistent(repo, original)
    again = add(repo)
    assert again.code == 0, again.err
    assert_registered(repo, original)


def test_add_of_a_directory_killed_mid_copy_reruns(repo: Path) -> None:
    folder = repo / "models/m/checkpoint-5"
    for index in range(3):
        write_checkpoint(folder / f"part-{index}.bin", size=1 << 20, seed=index)
    killed = run_process(
        "add", "models/m/checkpoint-5", cwd=repo, env={"DVCCKPT_FAULT_POINT": "cache-copy"}
    )
    assert killed.code == -signal.SIGKILL
    assert sorted(p.name for p in folder.iterdir()) == ["part-0.bin", "part-1.bin", "part-2.bin"]
    assert untracked(repo) == [] and not (repo / "models/m/checkpoint-5.dvc").exists()
    assert run_process("add", "models/m/checkpoint-5", cwd=repo).code == 0
    assert (repo / "models/m/checkpoint-5.ckpt.yaml").is_file()


def test_ctrl_c_mid_copy_cleans_up_at_once(repo: Path) -> None:
    original = sha(write_checkpoint(repo / CKPT, size=SIZE))
    interrupted = add(repo, fault="cache-copy:SIGINT")
    assert interrupted.code == 130, interrupted.err
    assert "Traceback" not in interrupted.err
    assert list((repo / ".git/dvcckpt/tmp").iterdir()) == []
    assert_consistent(repo, original)
    assert not (repo / POINTER).exists() and not (repo / CARD).exists()
    assert add(repo).code == 0
    assert_registered(repo, original)


def test_killed_temporary_files_are_swept_by_the_next_write(repo: Path) -> None:
    write_checkpoint(repo / CKPT, size=SIZE)
    assert add(repo, fault="cache-copy").code == -signal.SIGKILL
    scratch = repo / ".git/dvcckpt/tmp"
    assert list(scratch.iterdir()), "the killed copy should have left its temporary file"
    assert add(repo).code == 0
    assert list(scratch.iterdir()) == []


def test_two_adds_at_once_of_different_files_both_register(repo: Path) -> None:
    paths = [f"models/m/step-{n}.pt" for n in (1, 2)]
    originals = [sha(write_checkpoint(repo / p, size=SIZE, seed=n)) for n, p in enumerate(paths)]
    procs = [
        subprocess.Popen([str(BIN / "dvcckpt"), "add", p], cwd=repo, stderr=subprocess.PIPE)
        for p in paths
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    for path, original in zip(paths, originals, strict=True):
        assert_registered(repo, original, path)


def test_two_adds_at_once_of_the_same_file_register_it_once(repo: Path) -> None:
    original = sha(write_checkpoint(repo / CKPT, size=SIZE))
    command = [str(BIN / "dvcckpt"), "add", CKPT]
    procs = [subprocess.Popen(command, cwd=repo, stderr=subprocess.PIPE) for _ in range(2)]
    results = [(proc.wait(timeout=120), proc.stderr.read().decode()) for proc in procs]  # type: ignore[union-attr]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 4], results
    loser = next(err for code, err in results if code == 4)
    assert_user_error(4, loser, names=("already exists",))
    assert_registered(repo, original)


# -- full disk, read-only repository ---------------------------------------------------


def test_full_disk_is_a_clear_error_and_the_rerun_succeeds(repo: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "6m") as mount:
        root = mount / "repo"
        shutil.copytree(repo, root, symlinks=True)
        # The work-tree copy fits, a second copy (the cache) does not.
        original = sha(write_checkpoint(root / CKPT, size=7 << 19))
        before = set(git(root, "status", "--porcelain", "--untracked-files=all").splitlines())
        full = add(root)
        assert_user_error(full.code, full.err, names=("no space left", ".dvc/cache"))
        assert full.code == 4
        assert_consistent(root, original)
        after = set(git(root, "status", "--porcelain", "--untracked-files=all").splitlines())
        assert after == before  # no card, no pointer, no .gitignore entry
        assert list((root / ".git/dvcckpt/tmp").iterdir()) == []
        subprocess.run(["mount", "-o", "remount,size=32m", str(mount)], check=True)
        assert add(root).code == 0
        assert_registered(root, original)


def test_read_only_repository_is_a_clear_error(repo: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "32m") as mount:
        root = mount / "repo"
        shutil.copytree(repo, root, symlinks=True)
        original = sha(write_checkpoint(root / CKPT, size=1 << 16))
        with remounted_read_only(mount):
            refused = add(root)
            assert_user_error(refused.code, refused.err, names=("models/m",))
            assert "writable" in refused.err or "read-only" in refused.err
        assert_consistent(root, original)
        assert not (root / CARD).exists() and not (root / POINTER).exists()
        assert add(root).code == 0
        assert_registered(root, original)


def test_promote_in_a_read_only_repository_is_a_clear_error(repo: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "32m") as mount:
        root = mount / "repo"
        shutil.copytree(repo, root, symlinks=True)
        committed_checkpoint(root)
        before = (root / CARD).read_text()
        with remounted_read_only(mount):
            refused = promote(root)
            assert_user_error(refused.code, refused.err)
            assert "writable" in refused.err or "read-only" in refused.err.lower()
        assert (root / CARD).read_text() == before
        assert promote(root).code == 0
        assert decisions(root) == (1, 1)


# -- a stale .git/index.lock -----------------------------------------------------------


def test_stale_index_lock_writes_nothing_and_is_named(repo: Path) -> None:
    original = sha(write_checkpoint(repo / CKPT, size=1 << 16))
    lock = repo / ".git/index.lock"
    lock.touch()
    refused = add(repo)
    assert_user_error(refused.code, refused.err, names=("index.lock", "rm "))
    assert not (repo / CARD).exists() and not (repo / POINTER).exists()
    assert_consistent(repo, original)
    lock.unlink()
    assert add(repo).code == 0
    assert_registered(repo, original)


GATES = """\
version: 1
gates:
  - stage: staging
    rules:
      - {name: dev-macro-f1, metric: metrics.dev.macro_f1, op: ">=", value: 0.80}
"""


def committed_checkpoint(root: Path) -> None:
    (root / "gates.yaml").write_text(GATES)
    write_checkpoint(root / CKPT, size=1 << 16)
    git(root, "add", "gates.yaml")
    assert add(root, "-m", "dev.macro_f1=0.9").code == 0
    git(root, "commit", "--quiet", "--no-verify", "-m", "add checkpoint")


def decisions(root: Path) -> tuple[int, int]:
    """Decisions on the card in the work tree and in the index."""
    work = yaml.safe_load((root / CARD).read_text()).get("decisions") or []
    staged = yaml.safe_load(git(root, "show", f":{CARD}")).get("decisions") or []
    return len(work), len(staged)


def promote(root: Path, fault: str | None = None) -> Result:
    env = {"DVCCKPT_FAULT_POINT": fault} if fault else {}
    return run_process("promote", CKPT, "--to", "staging", "--rationale", "best dev F1",
                       cwd=root, env=env)  # fmt: skip


def test_promote_with_a_stale_index_lock_records_the_decision_once(repo: Path) -> None:
    committed_checkpoint(repo)
    before = (repo / CARD).read_text()
    (repo / ".git/index.lock").touch()
    refused = promote(repo)
    assert_user_error(refused.code, refused.err, names=("index.lock",))
    assert (repo / CARD).read_text() == before  # not written-but-unstaged
    (repo / ".git/index.lock").unlink()
    assert promote(repo).code == 0
    assert decisions(repo) == (1, 1)


@pytest.mark.parametrize("point", ["staged", "written"])
def test_promote_killed_then_rerun_records_the_decision_once(repo: Path, point: str) -> None:
    committed_checkpoint(repo)
    assert promote(repo, fault=point).code == -signal.SIGKILL
    assert untracked(repo) == []
    yaml.safe_load((repo / CARD).read_text())  # whole, old or new
    if decisions(repo) != (1, 1):
        assert promote(repo).code == 0
    assert decisions(repo) == (1, 1)


def test_retire_with_a_stale_index_lock_changes_nothing(repo: Path) -> None:
    committed_checkpoint(repo)
    before = (repo / CARD).read_text()
    (repo / ".git/index.lock").touch()
    refused = run_process("retire", CKPT, "--reason", "superseded", cwd=repo)
    assert_user_error(refused.code, refused.err, names=("index.lock",))
    assert (repo / CARD).read_text() == before and (repo / POINTER).exists()
    (repo / ".git/index.lock").unlink()
    assert run_process("retire", CKPT, "--reason", "superseded", cwd=repo).code == 0
    staged = git(repo, "diff", "--cached", "--name-status")
    assert f"D\t{POINTER}" in staged and f"M\t{CARD}" in staged
    assert not (repo / POINTER).exists()


# -- the registration is the one DVC would have made ------------------------------------


def test_add_writes_what_dvc_add_writes(repo: Path, template_repo: Path, tmp_path: Path) -> None:
    """Same `.dvc` file, `.gitignore` entry and cache objects as `dvc add` of the same data,
    for a file and for a folder (its `.dir` manifest included); DVC then sees it as its own."""
    plain = tmp_path / "plain"
    shutil.copytree(template_repo, plain, symlinks=True)
    tricky, accented = "m/x [1]#.pt", "m/modèle-é.pt"  # gitignore escaping, non-ASCII
    for root in (repo, plain):
        write_checkpoint(root / tricky, size=5000)
        write_checkpoint(root / accented, size=5000, seed=1)
        for name in ("a-b/c.bin", "a/b.bin", "z.bin"):  # "a-b" < "a/" as strings, not as parts
            write_checkpoint(root / "m/checkpoint-7" / name, size=300, seed=len(name))
    done = subprocess.run([str(BIN / "dvc"), "add", "-q", tricky, accented, "m/checkpoint-7"],
                          cwd=plain, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert run_process("add", tricky, "--step", "1", cwd=repo).code == 0
    assert run_process("add", accented, "--step", "2", cwd=repo).code == 0
    assert run_process("add", "m/checkpoint-7", cwd=repo).code == 0
    for name in (tricky + ".dvc", accented + ".dvc", "m/checkpoint-7.dvc", "m/.gitignore"):
        assert (repo / name).read_text() == (plain / name).read_text(), name
    objects = sorted(p.relative_to(plain).as_posix() for p in (plain / ".dvc/cache").rglob("*"))
    assert (
        sorted(p.relative_to(repo).as_posix() for p in (repo / ".dvc/cache").rglob("*")) == objects
    )
    for name in objects:
        if (plain / name).is_file():
            assert (repo / name).read_bytes() == (plain / name).read_bytes()
            assert stat.S_IMODE((repo / name).stat().st_mode) == 0o444
    status = subprocess.run([str(BIN / "dvc"), "status"], cwd=repo, capture_output=True, text=True)
    assert "up to date" in status.stdout, status.stdout


@pytest.mark.parametrize("kind", ["hardlink", "symlink", "copy", "reflink,hardlink"])
def test_add_follows_the_cache_type(repo: Path, kind: str) -> None:
    git(repo, "config", "-f", ".dvc/config", "cache.type", kind)
    original = sha(write_checkpoint(repo / CKPT, size=SIZE))
    assert add(repo).code == 0
    assert_registered(repo, original)
    md5 = yaml.safe_load((repo / POINTER).read_text())["outs"][0]["md5"]
    cached = repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    linked = "hardlink" in kind or kind == "symlink"
    assert os.path.samefile(cached, repo / CKPT) == linked


@pytest.mark.parametrize("point", ["staged", "written"])
def test_retire_killed_then_rerun_completes_it(repo: Path, point: str) -> None:
    committed_checkpoint(repo)
    command = ("retire", CKPT, "--reason", "superseded")
    killed = run_process(*command, cwd=repo, env={"DVCCKPT_FAULT_POINT": point})
    assert killed.code == -signal.SIGKILL
    assert untracked(repo) == []
    if "tombstone" not in (repo / CARD).read_text():
        assert run_process(*command, cwd=repo).code == 0
    staged = git(repo, "diff", "--cached", "--name-status")
    assert f"D\t{POINTER}" in staged and f"M\t{CARD}" in staged
    assert not (repo / POINTER).exists()
    assert git(repo, "show", f":{CARD}") == (repo / CARD).read_text()


def test_a_shared_cache_gets_group_writable_folders(repo: Path) -> None:
    git(repo, "config", "-f", ".dvc/config", "cache.shared", "group")
    write_checkpoint(repo / "models/m/checkpoint-9/w.bin", size=1000)
    assert run_process("add", "models/m/checkpoint-9", cwd=repo).code == 0
    for folder in (repo / ".dvc/cache/files/md5").rglob("*"):
        if folder.is_dir():
            assert stat.S_IMODE(folder.stat().st_mode) == 0o2775, folder


def test_temporaries_outside_a_repository_are_swept_only_when_old(tmp_path: Path) -> None:
    from dvcckpt.adapters import atomic

    done = subprocess.Popen(["true"])
    done.wait()
    old, recent = tmp_path / f".a.{done.pid}-0011aabb.tmp", tmp_path / f".b.{done.pid}-0011aabb.tmp"
    mine = tmp_path / f".c.{done.pid}-00aa.tmp"  # not our pattern: never touched
    for path in (old, recent, mine):
        path.write_text("partial")
    os.utime(old, (0, 0))
    atomic.write_text(tmp_path / "x.txt", "whole\n")
    assert not old.exists() and recent.exists() and mine.exists()
    assert (tmp_path / "x.txt").read_text() == "whole\n"
