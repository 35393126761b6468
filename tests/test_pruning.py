"""Checkpoints a training framework deleted (`save_total_limit`, `save_top_k`): pruned cards.

Real git and DVC repositories with Hugging Face-like `checkpoint-N/` folders (weights
of their own, a `config.json` they all share). `retire --missing` marks the deleted
ones pruned in one staged change the real pre-commit hook accepts, releases the DVC
cache objects no live reference uses (and keeps shared ones), and `verify` fails only
for checkpoints that should exist. Kills use the fault points of adapters/atomic.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from dvcckpt.adapters import capture, dvcfiles
from dvcckpt.cards import card, retire
from dvcckpt.project import Project
from tests.conftest import BIN, Result, git, run_process, write_checkpoint

STEPS = (100, 200, 300, 400, 500)
DELETED = (100, 200, 300)  # what save_total_limit=2 leaves behind: 400 and 500 stay
CONFIG = '{"model_type": "bert", "hidden_size": 32}\n'
CACHE = ".dvc/cache/files/md5"


def folder(step: int) -> str:
    return f"out/checkpoint-{step}"


def train(repo: Path, cli, steps: tuple[int, ...] = STEPS) -> dict[int, str]:
    """Register one checkpoint folder per step; returns the card names by step."""
    names = {}
    for step in steps:
        write_checkpoint(repo / folder(step) / "model.safetensors", size=6000, seed=step)
        (repo / folder(step) / "config.json").write_text(CONFIG)
        added = cli("add", folder(step), "--json")
        assert added.code == 0, added.err
        names[step] = json.loads(added.out)["name"]
    return names


def delete(repo: Path, steps: tuple[int, ...] = DELETED) -> None:
    for step in steps:
        shutil.rmtree(repo / folder(step))  # what the Trainer's rotation does


def md5_of(repo: Path, path: str) -> str:
    return str(card.read(repo / f"{path}.ckpt.yaml").data["checkpoint"]["dvc"]["md5"])


def cached(repo: Path) -> set[str]:
    """The DVC cache's objects, as `xx/rest` names."""
    return {p.relative_to(repo / CACHE).as_posix() for p in (repo / CACHE).rglob("*") if
            p.is_file()}  # fmt: skip


def key(md5: str) -> str:
    return f"{md5[:2]}/{md5[2:]}"


def objects_of(repo: Path, path: str) -> set[str]:
    """The cache objects of a directory checkpoint: its listing and its files."""
    md5 = md5_of(repo, path)
    listing = dvcfiles.parse_tree((repo / CACHE / key(md5)).read_bytes())
    return {key(md5), *(key(file_md5) for _, file_md5 in listing)}


def staged(repo: Path) -> set[str]:
    return set(git(repo, "diff", "--cached", "--name-status").strip().splitlines())


def commit(repo: Path, message: str = "change") -> Result:
    """`git commit` through the installed pre-commit hook (the one `install-hook` writes)."""
    done = subprocess.run(["git", "commit", "-q", "-m", message], cwd=repo, capture_output=True,
                          text=True, check=False)  # fmt: skip
    return Result(done.returncode, done.stdout, done.stderr)


def verify_all(cli) -> tuple[int, dict[str, str]]:
    result = cli("verify", "--all", "--json")
    return result.code, {c["name"]: c["status"] for c in json.loads(result.out)["checkpoints"]}


def tombstone(repo: Path, path: str) -> dict[str, object] | None:
    stone: dict[str, object] | None = card.read(repo / f"{path}.ckpt.yaml").data.get("tombstone")
    return stone


@pytest.fixture(autouse=True)
def no_torch_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registration probes torch in a child process for the env section (seconds per
    `add`); what these tests check does not depend on it, so they record no accelerator."""
    monkeypatch.setattr(capture, "accelerators", lambda _torch_installed: {"gpus": []})


@pytest.fixture
def hooked(repo: Path, cli) -> Path:
    assert cli("install-hook").code == 0
    return repo


def test_retire_missing_prunes_exactly_the_deleted_checkpoints(hooked: Path, cli) -> None:
    repo = hooked
    names = train(repo, cli)
    assert commit(repo, "train").code == 0
    pruned_objects = set().union(*(objects_of(repo, folder(s)) for s in DELETED))
    live_objects = set().union(*(objects_of(repo, folder(s)) for s in (400, 500)))
    shared = key(hashlib.md5(CONFIG.encode()).hexdigest())
    assert shared in pruned_objects & live_objects
    delete(repo)

    code, before = verify_all(cli)
    assert code == 1  # the cache still holds them, but a live checkpoint should exist
    assert {before[names[s]] for s in DELETED} == {"missing"}
    assert {before[names[s]] for s in (400, 500)} == {"ok"}

    done = cli("retire", "--missing", "--reason", "save_total_limit")
    assert done.code == 0, done.err
    assert done.out.splitlines()[0] == "pruned 3 cards: " + ", ".join(names[s] for s in DELETED)
    assert "released 6 DVC cache objects" in done.out  # 3 listings, 3 weights, not config.json
    assert staged(repo) == {f"{status}\t{folder(s)}{suffix}" for s in DELETED
                            for status, suffix in (("M", ".ckpt.yaml"), ("D", ".dvc"))}  # fmt: skip
    for step in DELETED:
        stone = tombstone(repo, folder(step))
        assert stone is not None
        assert stone["kind"] == "pruned" and stone["reason"] == "save_total_limit"
        assert (
            git(repo, "show", f":{folder(step)}.ckpt.yaml")
            == (repo / f"{folder(step)}.ckpt.yaml").read_text()
        )
    assert tombstone(repo, folder(400)) is None

    # The cache gave back what only the pruned checkpoints used, nothing else.
    assert cached(repo) == live_objects
    assert (pruned_objects - live_objects).isdisjoint(cached(repo)) and shared in cached(repo)
    committed = commit(repo, "prune")
    assert committed.code == 0, committed.out + committed.err
    assert git(repo, "status", "--porcelain") == ""
    status = subprocess.run([str(BIN / "dvc"), "status"], cwd=repo, capture_output=True, text=True)
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout

    code, after = verify_all(cli)
    assert code == 0
    assert after == {**{names[s]: "pruned" for s in DELETED}, names[400]: "ok", names[500]: "ok"}
    listed = cli("verify", names[100])
    assert listed.code == 0 and "pruned" in listed.out and "save_total_limit" in listed.out


def test_content_other_references_use_stays_in_the_cache(repo: Path, cli) -> None:
    """A pruned file whose bytes a live card, a plain `.dvc` file or a `dvc.lock` output
    also has keeps its cache object."""
    for name in ("a", "b", "c"):
        write_checkpoint(repo / f"models/{name}.pt", size=3000, seed=7)  # the same bytes
    write_checkpoint(repo / "models/d.pt", size=3000, seed=8)
    write_checkpoint(repo / "data/d-copy.bin", size=3000, seed=8)
    for step, name in enumerate(("a", "b", "d")):
        assert cli("add", f"models/{name}.pt", "--step", str(step)).code == 0
    subprocess.run([str(BIN / "dvc"), "add", "-q", "data/d-copy.bin"], cwd=repo, check=True)
    same, other = key(md5_of(repo, "models/a.pt")), key(md5_of(repo, "models/d.pt"))
    for name in ("a", "d"):
        (repo / f"models/{name}.pt").unlink()
    project = Project.discover(repo)

    pruned = retire.prune(project, ["models/a.pt", repo / "models/d.pt"], "save_top_k")
    assert sorted(c.name for c in pruned) == sorted(
        card.read(repo / f"models/{n}.pt.ckpt.yaml").name for n in ("a", "d")
    )
    assert {same, other} <= cached(repo)  # b is live with a's bytes; data/d-copy.bin.dvc has d's

    # Without the plain `.dvc` file, a `dvc.lock` output with the same md5 still keeps it.
    lock_md5 = other.replace("/", "")
    (repo / "data/d-copy.bin.dvc").unlink()
    (repo / "dvc.lock").write_text(f"schema: '2.0'\nstages:\n  copy:\n    cmd: cp\n    outs:\n"
                                   f"    - path: data/d-copy.bin\n      md5: {lock_md5}\n"
                                   "      size: 3000\n      hash: md5\n")  # fmt: skip
    again = retire.prune_batch(project, None, "save_top_k")
    assert again.cards == [] and other in cached(repo)
    (repo / "dvc.lock").unlink()
    released = retire.prune_batch(project, None, "save_top_k").cache
    assert (
        released.removed == [f"files/md5/{other}"]
        and other not in cached(repo)
        and same in cached(repo)
    )


def test_staged_cards_are_pruned_and_the_hook_accepts_them(hooked: Path, cli) -> None:
    """Cards never committed (the training run is still going): a deleted checkpoint's
    card enters history already pruned, and its `.dvc` file never does."""
    repo = hooked
    names = train(repo, cli, steps=(100, 200))
    delete(repo, (100,))
    project = Project.discover(repo)
    pruned = retire.prune(project, [folder(100), folder(200)], "save_total_limit")
    assert [c.name for c in pruned] == [names[100]]
    assert git(repo, "ls-files", "--cached", f"{folder(100)}.dvc") == ""
    assert f"A\t{folder(100)}.ckpt.yaml" in staged(repo)
    committed = commit(repo, "train")
    assert committed.code == 0, committed.out + committed.err
    head = git(repo, "show", f"HEAD:{folder(100)}.ckpt.yaml")
    assert "kind: pruned" in head and "reason: save_total_limit" in head
    assert git(repo, "ls-tree", "-r", "--name-only", "HEAD", "out").split() == [
        "out/.gitignore",
        f"{folder(100)}.ckpt.yaml",
        f"{folder(200)}.ckpt.yaml",
        f"{folder(200)}.dvc",
    ]
    # The tombstone is final: the hook refuses a change to it, as for a retired card.
    card_file = repo / f"{folder(100)}.ckpt.yaml"
    card_file.write_text(card_file.read_text().replace("kind: pruned", "kind: retired"))
    git(repo, "add", f"{folder(100)}.ckpt.yaml")
    refused = commit(repo, "edit")
    assert refused.code != 0 and "tombstone: cannot change once set" in refused.out + refused.err


def test_a_rerun_changes_nothing(repo: Path, cli) -> None:
    train(repo, cli, steps=(100, 200, 300))
    git(repo, "commit", "-q", "--no-verify", "-m", "train")
    delete(repo, (100, 200))
    commented = repo / f"{folder(100)}.ckpt.yaml"
    commented.write_text(commented.read_text().replace("\nname:", "\n# picked by hand\nname:"))
    assert cli("retire", "--missing", "--reason", "save_total_limit").code == 0
    assert "# picked by hand\nname:" in commented.read_text()  # a person's comment stays
    index, cards = staged(repo), (repo / f"{folder(100)}.ckpt.yaml").read_text()
    objects = cached(repo)

    again = cli("retire", "--missing", "--reason", "save_total_limit", "--json")
    assert again.code == 0, again.err
    report = json.loads(again.out)
    assert report["pruned"] == [] and report["cache"]["removed"] == 0
    assert staged(repo) == index and (repo / f"{folder(100)}.ckpt.yaml").read_text() == cards
    assert cached(repo) == objects
    named = retire.prune_batch(Project.discover(repo), [folder(100), folder(300)], "other")
    assert named.cards == [] and dict(named.skipped) == {
        folder(100): "already pruned",
        folder(300): "still in the work tree (retire it by name instead)",
    }


def test_dry_run_says_what_would_change_and_changes_nothing(repo: Path, cli) -> None:
    names = train(repo, cli, steps=(100, 200))
    delete(repo, (100,))
    index, objects = staged(repo), cached(repo)
    dry = cli("retire", "--missing", "--reason", "save_total_limit", "--dry-run")
    assert dry.code == 0, dry.err
    assert dry.out.splitlines()[:2] == [
        f"would prune 1 card: {names[100]}",
        "would release 2 DVC cache objects (6.0 KiB)",  # the weights and the listing
    ]
    assert (
        staged(repo) == index and cached(repo) == objects and tombstone(repo, folder(100)) is None
    )


@pytest.mark.parametrize("point", ["staged", "written", "released"])
def test_an_interrupted_prune_is_completed_by_the_rerun(repo: Path, cli, point: str) -> None:
    """SIGKILL after the index update, after the first file, after the first cache object:
    re-running the command gives what an uninterrupted run gives."""
    train(repo, cli)
    git(repo, "commit", "-q", "--no-verify", "-m", "train")
    live_objects = set().union(*(objects_of(repo, folder(s)) for s in (400, 500)))
    delete(repo)
    command = ("retire", "--missing", "--reason", "save_total_limit")
    killed = run_process(*command, cwd=repo, env={"DVCCKPT_FAULT_POINT": point})
    assert killed.code == -signal.SIGKILL, killed.err
    rerun = run_process(*command, cwd=repo)
    assert rerun.code == 0, rerun.err
    assert cached(repo) == live_objects
    assert staged(repo) == {f"{status}\t{folder(s)}{suffix}" for s in DELETED
                            for status, suffix in (("M", ".ckpt.yaml"), ("D", ".dvc"))}  # fmt: skip
    for step in DELETED:
        assert (
            git(repo, "show", f":{folder(step)}.ckpt.yaml")
            == (repo / f"{folder(step)}.ckpt.yaml").read_text()
        )
        assert "kind: pruned" in (repo / f"{folder(step)}.ckpt.yaml").read_text()
    # The work tree is the index: nothing half written, no junk left behind.
    status = git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert status and all(line[1] == " " and line[0] in "MD" for line in status), status
    assert run_process("check", cwd=repo).code == 0


def test_missing_and_never_cached_is_left_unless_named(repo: Path, cli) -> None:
    """A checkpoint neither in the work tree nor in the cache was most likely never pulled
    here (a fresh clone): `--missing` leaves it and says so; naming its path prunes it."""
    train(repo, cli, steps=(100, 200))
    for item in objects_of(repo, folder(100)) - objects_of(repo, folder(200)):
        (repo / CACHE / item).unlink()
    delete(repo, (100,))
    done = cli("retire", "--missing", "--reason", "save_total_limit")
    assert done.code == 0, done.err
    assert done.out.splitlines() == [
        "pruned 0 cards",
        f"skipped {folder(100)}: neither in the work tree nor in the DVC cache (never pulled here?)",
    ]
    assert tombstone(repo, folder(100)) is None
    named = retire.prune(Project.discover(repo), [folder(100)], "save_total_limit")
    assert len(named) == 1 and tombstone(repo, folder(100)) is not None


def test_cache_kept_when_unsure(repo: Path, cli, tmp_path: Path) -> None:
    """Fail closed: a live directory whose listing is not in the cache, or a cache outside
    the repository (others may share it), keeps every object, and the summary says why."""
    train(repo, cli, steps=(100, 200))
    listing = repo / CACHE / key(md5_of(repo, folder(200)))
    listing.rename(tmp_path / "listing")
    delete(repo, (100,))
    before = cached(repo)
    done = cli("retire", "--missing", "--reason", "save_total_limit")
    assert done.code == 0, done.err
    assert cached(repo) == before
    assert f"the listing of live directory {md5_of(repo, folder(200))} is not in the cache" in (
        done.out
    )
    (tmp_path / "listing").rename(listing)

    outside = tmp_path / "shared-cache"
    shutil.copytree(repo / ".dvc/cache", outside)
    git(repo, "config", "-f", ".dvc/config", "cache.dir", str(outside))
    write_checkpoint(repo / "models/x.pt", size=2000)
    assert cli("add", "models/x.pt", "--step", "1").code == 0
    (repo / "models/x.pt").unlink()
    kept = cli("retire", "--missing", "--reason", "save_top_k", "--json")
    assert kept.code == 0, kept.err
    report = json.loads(kept.out)
    assert len(report["pruned"]) == 1 and report["cache"]["removed"] == 0
    assert {"outside the repository" in k["why"] for k in report["cache"]["kept"]} == {True}
    md5 = md5_of(repo, "models/x.pt")
    assert (outside / "files/md5" / key(md5)).is_file()


def test_verify_lists_retired_and_pruned_and_fails_only_for_live_ones(repo: Path, cli) -> None:
    names = train(repo, cli, steps=(100, 200, 300))
    assert cli("retire", folder(300), "--reason", "diverged").code == 0
    delete(repo, (100, 300))
    code, table = verify_all(cli)
    assert code == 1 and table == {names[100]: "missing", names[200]: "ok", names[300]: "retired"}
    assert cli("retire", "--missing", "--reason", "save_total_limit").code == 0
    code, table = verify_all(cli)
    assert code == 0 and table == {names[100]: "pruned", names[200]: "ok", names[300]: "retired"}
    retired = tombstone(repo, folder(300))
    assert retired is not None and retired["reason"] == "diverged"
    assert "kind" not in retired  # a retired card is written as before: no kind


def test_push_and_pull_leave_pruned_checkpoints_alone(repo: Path, cli, tmp_path: Path) -> None:
    names = train(repo, cli, steps=(100, 200))
    subprocess.run([str(BIN / "dvc"), "remote", "add", "-d", "local", str(tmp_path / "remote")],
                   cwd=repo, check=True, capture_output=True)  # fmt: skip
    delete(repo, (100,))
    assert cli("retire", "--missing", "--reason", "save_total_limit").code == 0
    pushed = cli("push", "--all", "--json")
    assert pushed.code == 0, pushed.err
    assert json.loads(pushed.out)["checkpoints"] == [names[200]]
    pulled = cli("pull", "--all", "--json")
    assert pulled.code == 0 and json.loads(pulled.out)["checkpoints"] == [names[200]]
    assert not (repo / folder(100)).exists()
    # Named, a pruned or retired checkpoint is refused with its kind and reason.
    assert cli("retire", folder(200), "--reason", "diverged").code == 0
    for command, name, said in (("pull", names[100], "pruned (save_total_limit)"),
                                ("push", names[200], "retired (diverged)")):  # fmt: skip
        refused = cli(command, name)
        assert refused.code == 4 and f"checkpoint {name} is {said}" in refused.err, refused.err
        assert "hint:" in refused.err and "Traceback" not in refused.err


def test_no_release_while_a_background_save_may_use_the_same_files(repo: Path, cli) -> None:
    """save_total_limit=1: checkpoint-100 is deleted while checkpoint-200, which shares its
    config.json, is still being registered in the background. Pruning meanwhile keeps
    every object (200's card does not yet say it uses config.json); a prune run in the
    worker itself, behind the save, releases what only 100 used."""
    import dvcckpt
    from dvcckpt.cards import background

    train(repo, cli, steps=(100,))
    write_checkpoint(repo / folder(200) / "model.safetensors", size=6000, seed=200)
    (repo / folder(200) / "config.json").write_text(CONFIG)
    delete(repo, (100,))
    project = Project.discover(repo)
    gate = threading.Event()
    background.submit(gate.wait, "a registration still hashing")
    try:
        saved = dvcckpt.save(repo / folder(200), step=200, background=True)
        before = cached(repo)
        meanwhile = retire.prune_batch(project, [folder(100)], "save_total_limit")
        behind = background.submit(lambda: retire.prune_batch(project, None, "x"), "prune")
    finally:
        gate.set()  # the worker must never be left waiting (the process exit flushes it)
    assert [c.name for c in meanwhile.cards] == [card.read(repo / f"{folder(100)}.ckpt.yaml").name]
    assert meanwhile.cache.removed == [] and cached(repo) == before
    kept = {why for _, why in meanwhile.cache.kept}
    assert len(kept) == 1 and "background registrations are running" in kept.pop()
    assert dvcckpt.wait() == [saved.result()]  # other queued work reports no result there
    released = behind.result().cache
    assert len(released.removed) == 2  # 100's weights and listing; config.json stays
    assert cached(repo) == objects_of(repo, folder(200))
    assert verify_all(cli) == (0, {
        card.read(repo / f"{folder(100)}.ckpt.yaml").name: "pruned",
        saved.result().name: "ok",
    })  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [
        ("retire", "--reason", "x"),
        ("retire", "out/checkpoint-1", "--missing", "--reason", "x"),
        ("retire", "--missing", "--keep-pointer", "--reason", "x"),
        ("retire", "out/checkpoint-1", "--dry-run", "--reason", "x"),
        ("retire", "--missing", "--reason", " "),
    ],
)
def test_retire_usage_errors(repo: Path, cli, args: tuple[str, ...]) -> None:
    result = cli(*args)
    assert result.code == 2 and result.err.startswith("error: ") and "hint: " in result.err
