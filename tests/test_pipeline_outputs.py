"""Checkpoints that are outputs of a DVC pipeline stage, on real git, DVC and `dvc repro`.

`add` records the card against the stage's `dvc.lock` entry (no `.dvc` file, which
would make DVC refuse the pipeline), the pre-commit hook checks the card against the
staged lock, and push, pull and verify work from the card.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from dvcckpt.cards import card
from tests.conftest import Result, git

TRAIN = """\
import os, sys
os.makedirs("models/hf", exist_ok=True)
with open("models/model.pt", "wb") as f:
    f.write(bytes(range(256)) * int(sys.argv[1]))
with open("models/hf/weights.bin", "wb") as f:
    f.write(b"w" * 3000)
with open("models/hf/config.json", "w") as f:
    f.write('{"hidden_size": 32}')
with open("models/metrics.json", "w") as f:
    f.write('{"loss": 0.5}')
"""
PIPELINE = f"""\
stages:
  train:
    cmd: {sys.executable} train.py ${{size}}
    deps: [train.py]
    outs:
      - models/model.pt
      - models/hf
      - models/metrics.json:
          cache: false
"""


def run(repo: Path, *command: str) -> Result:
    done = subprocess.run(command, cwd=repo, capture_output=True, text=True, check=False)
    return Result(done.returncode, done.stdout, done.stderr)


def dvc(repo: Path, *args: str) -> Result:
    result = run(repo, str(Path(sys.executable).parent / "dvc"), *args)
    assert result.code == 0, result.out + result.err
    return result


def pipeline_repo(repo: Path, cli, size: int = 20) -> Path:
    """The stage committed, run once by `dvc repro`, and the hook installed."""
    (repo / "train.py").write_text(TRAIN)
    (repo / "params.yaml").write_text(f"size: {size}\n")
    (repo / "dvc.yaml").write_text(PIPELINE)
    git(repo, "add", "train.py", "params.yaml", "dvc.yaml")
    git(repo, "commit", "--quiet", "-m", "pipeline")
    dvc(repo, "repro", "--quiet")
    assert cli("install-hook").code == 0
    return repo


def commit(repo: Path, message: str = "change") -> Result:
    return run(repo, "git", "commit", "-m", message)


def locked(repo: Path, path: str) -> dict[str, object]:
    from dvcckpt.adapters import yamldoc

    lock = yamldoc.load_fast((repo / "dvc.lock").read_text(), "dvc.lock")
    return next(o for o in lock["stages"]["train"]["outs"] if o["path"] == path)


def test_stage_outputs_register_against_dvc_lock_commit_and_verify(repo: Path, cli) -> None:
    pipeline_repo(repo, cli)
    added = cli("add", "models/model.pt", "--step", "100", "--run-id", "r1")
    assert added.code == 0, added.err
    folder = cli("add", "models/hf", "--model", "hf", "--step", "100", "--run-id", "r1")
    assert folder.code == 0, folder.err
    assert not list(repo.glob("models/*.dvc")), "a .dvc file would break the pipeline"

    meta = card.read(repo / "models/model.pt.ckpt.yaml").data["checkpoint"]
    data = (repo / "models/model.pt").read_bytes()
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    lock = locked(repo, "models/model.pt")
    assert meta["dvc"] == {"file": "dvc.yaml", "md5": lock["md5"], "size": len(data),
                           "stage": "train"}  # fmt: skip
    tree = card.read(repo / "models/hf.ckpt.yaml").data["checkpoint"]
    lock = locked(repo, "models/hf")
    assert tree["dvc"]["md5"] == lock["md5"] and str(lock["md5"]).endswith(".dir")
    assert (tree["dvc"]["nfiles"], tree["files"], tree["format"]) == (2, 2, "directory")

    staged = git(repo, "diff", "--cached", "--name-only").split()
    assert {"dvc.lock", "models/.gitignore", "models/model.pt.ckpt.yaml"} <= set(staged)
    done = commit(repo, "register the stage's checkpoints")
    assert done.code == 0, done.out + done.err
    assert "Data and pipelines are up to date" in dvc(repo, "status").out
    verified = cli("verify", "--all")
    assert verified.code == 0, verified.out + verified.err

    remote = repo.parent / "remote"
    dvc(repo, "remote", "add", "--default", "local", str(remote))
    pushed = cli("push", "--all")
    assert pushed.code == 0, pushed.err
    shutil.rmtree(repo / ".dvc/cache")
    shutil.rmtree(repo / "models/hf")
    (repo / "models/model.pt").unlink()
    pulled = cli("pull", "--all")
    assert pulled.code == 0, pulled.err
    assert (repo / "models/model.pt").read_bytes() == data
    assert cli("verify", "--all", "--remote").code == 0
    got = cli("get", ".", "hf-train-full-r1-step000100", "-o", str(repo.parent / "got"))
    assert got.code == 0, got.err
    assert (repo.parent / "got/weights.bin").read_bytes() == b"w" * 3000


def test_output_that_differs_from_dvc_lock_is_refused(repo: Path, cli) -> None:
    pipeline_repo(repo, cli)
    with (repo / "models/model.pt").open("r+b") as handle:
        handle.write(b"X")  # edited after the stage ran: dvc.lock no longer describes it
    refused = cli("add", "models/model.pt", "--step", "1")
    assert refused.code == 4
    assert "does not match dvc.lock (stage train)" in refused.err
    assert "dvc repro train" in refused.err and "dvc commit train" in refused.err
    assert not (repo / "models/model.pt.ckpt.yaml").exists()


def test_hook_refuses_a_card_its_staged_dvc_lock_disagrees_with(repo: Path, cli) -> None:
    pipeline_repo(repo, cli)
    assert cli("add", "models/model.pt", "--step", "1").code == 0
    good = (repo / "dvc.lock").read_text()
    md5 = str(locked(repo, "models/model.pt")["md5"])
    (repo / "dvc.lock").write_text(good.replace(md5, "f" * 32))
    git(repo, "add", "dvc.lock")
    refused = commit(repo)
    assert refused.code != 0
    assert f"checkpoint.dvc.md5: card says {md5}, dvc.lock says {'f' * 32}" in refused.err

    git(repo, "rm", "--cached", "--quiet", "dvc.lock")
    refused = commit(repo)
    assert refused.code != 0 and "dvc.lock is not staged" in refused.err

    (repo / "dvc.lock").write_text(good)
    git(repo, "add", "dvc.lock")
    assert commit(repo).code == 0


def test_stage_run_again_over_a_registered_checkpoint_is_refused(repo: Path, cli) -> None:
    pipeline_repo(repo, cli)
    assert cli("add", "models/model.pt", "--step", "1", "--run-id", "a1").code == 0
    assert commit(repo, "register").code == 0
    (repo / "params.yaml").write_text("size: 30\n")
    dvc(repo, "repro", "--quiet")  # overwrites models/model.pt and its dvc.lock entry
    git(repo, "add", "params.yaml", "dvc.lock")
    refused = commit(repo, "retrain")
    assert refused.code != 0
    assert "the stage's output is no longer this checkpoint" in refused.err

    dvc(repo, "remote", "add", "--default", "local", str(repo.parent / "remote"))
    push = cli("push", "--all")  # DVC would upload what dvc.lock records now
    assert push.code == 4 and "dvc.lock records another version of models/model.pt" in push.err

    # Registering the new run's output is what the commit needed: the old card is pruned.
    again = cli("add", "models/model.pt", "--step", "1", "--run-id", "b2")
    assert again.code == 0, again.err
    done = commit(repo, "retrain")
    assert done.code == 0, done.out + done.err
    old = card.read(repo / "models/model.pt.ckpt.yaml").data
    assert old["tombstone"]["kind"] == "pruned"
    assert cli("push", "--all").code == 0


def test_uncached_and_overlapping_outputs_are_refused(repo: Path, cli) -> None:
    pipeline_repo(repo, cli)
    uncached = cli("add", "models/metrics.json", "--step", "1")
    assert uncached.code == 2
    assert "with `cache: false`: DVC keeps no copy of it" in uncached.err
    inside = cli("add", "models/hf/weights.bin", "--step", "1")
    assert inside.code == 2
    assert "lies inside models/hf, an output of pipeline stage train" in inside.err
    around = cli("add", "models", "--step", "1")
    assert around.code == 2 and "an output of pipeline stage train" in around.err
    assert not list(repo.glob("models/**/*.ckpt.yaml"))


def test_foreach_matrix_and_wdir_stages(repo: Path, cli) -> None:
    (repo / "sub").mkdir()
    (repo / "dvc.yaml").write_text(
        "stages:\n"
        "  seeds:\n"
        "    foreach: [1, 2]\n"
        "    do:\n"
        "      cmd: mkdir -p runs && echo ${item} > runs/seed${item}.pt\n"
        "      outs: ['runs/seed${item}.pt']\n"
        "  grid:\n"
        "    matrix: {lr: [0.1, 0.2]}\n"
        "    cmd: mkdir -p grid && echo ${item.lr} > grid/lr${item.lr}.pt\n"
        "    outs: ['grid/lr${item.lr}.pt']\n"
        "  nested:\n"
        "    wdir: sub\n"
        "    cmd: mkdir -p out && echo w > out/final.pt\n"
        "    outs: [out/final.pt]\n"
    )
    git(repo, "add", "dvc.yaml")
    git(repo, "commit", "--quiet", "-m", "pipeline")
    dvc(repo, "repro", "--quiet")
    assert cli("install-hook").code == 0
    for path, stage in (("runs/seed2.pt", "seeds@2"), ("grid/lr0.1.pt", "grid@0.1"),
                        ("sub/out/final.pt", "nested")):  # fmt: skip
        added = cli("add", path, "--step", "5", "--model", "m")
        assert added.code == 0, added.err
        assert card.read(repo / f"{path}.ckpt.yaml").data["checkpoint"]["dvc"]["stage"] == stage
    done = commit(repo, "register")
    assert done.code == 0, done.out + done.err
    assert cli("verify", "--all").code == 0


def test_templated_wdir_is_refused(repo: Path, cli) -> None:
    (repo / "params.yaml").write_text("where: sub\n")
    (repo / "dvc.yaml").write_text(
        "stages:\n  t:\n    wdir: ${where}\n    cmd: echo x > m.pt\n    outs: [m.pt]\n"
    )
    os.makedirs(repo / "sub")
    dvc(repo, "repro", "--quiet")
    refused = cli("add", "sub/m.pt", "--step", "1")
    assert refused.code == 2 and "is not a plain relative folder" in refused.err
