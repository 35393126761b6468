"""Card layout: no doubled `.ckpt` suffix, and re-runs into the same output folder.

The layout functions are checked as properties (every name a card of a checkpoint may
have reads back to that checkpoint); the rest on real git + DVC repositories through
`dvcckpt add`, `dvcckpt.save` and `git commit` with the real pre-commit hook.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dvcckpt
from dvcckpt.cards import card
from dvcckpt.core import layout, naming
from tests.conftest import Result, git, run_process, write_checkpoint

FIELDS = ("-p", "lr=0.1", "-m", "dev.f1=0.7", "--seed", "1")


@pytest.mark.parametrize(
    ("checkpoint", "card_file"),
    [
        ("m/x.ckpt", "m/x.ckpt.yaml"),
        ("m/epoch=4-step=50.ckpt", "m/epoch=4-step=50.ckpt.yaml"),
        ("m/x.pt", "m/x.pt.ckpt.yaml"),
        ("out/checkpoint-100", "out/checkpoint-100.ckpt.yaml"),
        ("x.ckpt.yaml", "x.ckpt.yaml.ckpt.yaml"),  # add refuses it; the layout stays total
        ("m/.ckpt", "m/.ckpt.ckpt.yaml"),  # no empty card stem
        ("step.safetensors", "step.safetensors.ckpt.yaml"),
    ],
)
def test_card_names_never_double_the_suffix(checkpoint: str, card_file: str) -> None:
    assert layout.card_for(checkpoint) == card_file
    assert layout.is_card(card_file)
    # Doubled only where the single suffix would leave no name (`.ckpt`) or is a card's.
    assert ".ckpt.ckpt.yaml" not in card_file or checkpoint.endswith(("/.ckpt", ".ckpt.yaml"))
    assert checkpoint in layout.checkpoints_of_card(card_file)
    assert layout.pointer_for(checkpoint) == checkpoint + ".dvc"


def test_old_long_form_and_run_forms_belong_to_their_checkpoint() -> None:
    assert layout.is_card_name_of("m/x.ckpt.ckpt.yaml", "m/x.ckpt", None)  # cards written before
    assert layout.is_card_name_of("m/x.ckpt.yaml", "m/x", None)
    assert not layout.is_card_name_of("m/x.ckpt.yaml", "m/x.pt", None)
    assert not layout.is_card_name_of("n/x.ckpt.yaml", "m/x.ckpt", None)
    assert (
        layout.rerun_card_for("out/checkpoint-100", "runB") == "out/checkpoint-100.runB.ckpt.yaml"
    )
    assert layout.rerun_card_for("m/e=1.ckpt", "runB") == "m/e=1.runB.ckpt.yaml"
    assert layout.is_card_name_of("m/e=1.runB.ckpt.yaml", "m/e=1.ckpt", "runB")
    assert not layout.is_card_name_of("m/e=1.runB.ckpt.yaml", "m/e=1.ckpt", "runC")
    long_id = "wandb/team/3f2a9c1d0e4b5a6978877665544332211"
    assert layout.rerun_card_for("c", long_id) == f"c.{naming.short_run_id(long_id)}.ckpt.yaml"


NAME_CHARS = st.sampled_from([*"abz09_-=.", ".ckpt", ".pt", ".yaml", ".dvc"])
NAMES = (
    st.lists(NAME_CHARS, min_size=1, max_size=8).map("".join).filter(lambda n: n not in (".", ".."))
)
RUNS = st.none() | st.text("abZ09._-/", min_size=1, max_size=40)


@settings(max_examples=400, deadline=None)
@given(NAMES, st.sampled_from(["", "m/", "a/b.ckpt/"]), RUNS)
def test_every_card_name_reads_back_to_its_checkpoint(
    name: str, folder: str, run: str | None
) -> None:
    checkpoint = folder + name
    token = naming.short_run_id(run) if run else None
    names = layout.card_names(name, token)
    short = name.endswith(".ckpt") and name not in (".ckpt", "..ckpt")  # a name is left
    assert names[: 2 if short else 1] == layout.card_names(name)
    # The preferred card never doubles the suffix: `x.ckpt` -> `x.ckpt.yaml`.
    assert names[0] == name + (".yaml" if short else ".ckpt.yaml")
    for card_name in names:
        card_file = folder + card_name
        assert layout.is_card(card_file) and not layout.is_pointer(card_file)
        assert checkpoint in layout.checkpoints_of_card(card_file)
        assert layout.could_be_card_of(card_file, checkpoint)
        assert layout.is_card_name_of(card_file, checkpoint, run)
    assert layout.card_for(checkpoint) == folder + names[0]
    if run:
        assert layout.rerun_card_for(checkpoint, run) in {folder + n for n in names[-2:]}


# --- real repositories ---------------------------------------------------------------


@pytest.fixture
def hooked(repo: Path, cli) -> Path:
    assert cli("install-hook").code == 0
    return repo


def commit(repo: Path, message: str = "change") -> Result:
    done = subprocess.run(
        ["git", "commit", "-m", message], cwd=repo, capture_output=True, text=True, check=False
    )
    return Result(done.returncode, done.stdout, done.stderr)


def register(cli, path: str, run_id: str, *extra: str) -> Result:
    return cli("add", path, *FIELDS, "--run-id", run_id, *extra)


def hf_checkpoint(root: Path, folder: str, seed: int) -> Path:
    """A Trainer-like `checkpoint-N/` folder."""
    path = root / folder
    write_checkpoint(path / "model.safetensors", 2048, seed)
    (path / "config.json").write_text(json.dumps({"seed": seed}))
    return path


def test_lightning_file_gets_one_suffix_and_commits(hooked: Path, cli) -> None:
    write_checkpoint(hooked / "lit/epoch=4-step=50.ckpt")
    assert register(cli, "lit/epoch=4-step=50.ckpt", "r1").code == 0
    assert (hooked / "lit/epoch=4-step=50.ckpt.yaml").is_file()
    assert not (hooked / "lit/epoch=4-step=50.ckpt.ckpt.yaml").exists()
    done = commit(hooked)
    assert done.code == 0, done.err
    shown = cli("show", "lit/epoch=4-step=50.ckpt", "--json")
    assert (
        shown.code == 0
        and json.loads(shown.out)["checkpoint"]["path"] == "lit/epoch=4-step=50.ckpt"
    )


def test_a_long_form_card_stays_valid_and_the_pointer_is_the_cards_own(hooked: Path, cli) -> None:
    write_checkpoint(hooked / "m/x.ckpt", seed=1)
    assert register(cli, "m/x.ckpt", "r1", "--step", "1").code == 0
    git(hooked, "mv", "m/x.ckpt.yaml", "m/x.ckpt.ckpt.yaml")  # as cards were named before
    assert commit(hooked).code == 0
    # `m/x.ckpt.yaml` is free again: the card of checkpoint `m/x` takes it.
    write_checkpoint(hooked / "m/x", seed=2)
    assert register(cli, "m/x", "r1", "--step", "2").code == 0
    assert card.read(hooked / "m/x.ckpt.yaml").data["checkpoint"]["path"] == "m/x"
    assert commit(hooked).code == 0
    assert cli("show", "m/x.ckpt", "--json").out.count('"m/x.ckpt"') >= 1
    # Each card is checked against its own checkpoint's pointer, never the other's.
    pointer = hooked / "m/x.ckpt.dvc"
    text = pointer.read_text()
    md5 = text.split("md5: ")[1].split()[0]
    pointer.write_text(text.replace(md5, "0" * 32))
    git(hooked, "add", "m/x.ckpt.dvc")
    refused = commit(hooked)
    assert (
        refused.code != 0 and "m/x.ckpt.ckpt.yaml: checkpoint.dvc.md5" in refused.out + refused.err
    )


def test_short_name_taken_by_another_checkpoint_falls_back(hooked: Path, cli) -> None:
    write_checkpoint(hooked / "m/x", seed=1)
    write_checkpoint(hooked / "m/x.ckpt", seed=2)
    assert register(cli, "m/x", "r1", "--step", "1").code == 0
    assert register(cli, "m/x.ckpt", "r1", "--step", "2").code == 0
    assert card.read(hooked / "m/x.ckpt.yaml").data["checkpoint"]["path"] == "m/x"
    assert card.read(hooked / "m/x.ckpt.ckpt.yaml").data["checkpoint"]["path"] == "m/x.ckpt"
    done = commit(hooked)
    assert done.code == 0, done.out + done.err
    # By checkpoint path, each resolves to its own card (`m/x.ckpt.yaml` is `m/x`'s).
    shown = json.loads(cli("show", "m/x.ckpt", "--json").out)
    assert shown["checkpoint"]["path"] == "m/x.ckpt"
    compared = cli("diff", "m/x", "m/x.ckpt", "--field", "step", "--json")
    assert compared.code == 0, compared.err
    change = json.loads(compared.out)[0]["changes"][0]
    assert (change["a"], change["b"]) == (1, 2), change


def overwrite_and_rerun(repo: Path, cli) -> None:
    """Run A registers and commits `out/checkpoint-100`; run B writes it again."""
    hf_checkpoint(repo, "out/checkpoint-100", seed=1)
    assert register(cli, "out/checkpoint-100", "runA").code == 0
    done = commit(repo, "run A")
    assert done.code == 0, done.err
    hf_checkpoint(repo, "out/checkpoint-100", seed=2)
    added = register(cli, "out/checkpoint-100", "runB")
    assert added.code == 0, added.err


def test_rerun_into_the_same_folder_registers_a_new_card(hooked: Path, cli) -> None:
    overwrite_and_rerun(hooked, cli)
    old = card.read(hooked / "out/checkpoint-100.ckpt.yaml").data
    new = card.read(hooked / "out/checkpoint-100.runB.ckpt.yaml").data
    assert old["tombstone"]["reason"] == "overwritten by run runB"
    assert old["tombstone"]["kind"] == "pruned"
    assert new["run"]["id"] == "runB" and "tombstone" not in new
    assert old["checkpoint"]["path"] == new["checkpoint"]["path"] == "out/checkpoint-100"
    assert old["checkpoint"]["sha256"] != new["checkpoint"]["sha256"]
    staged = git(hooked, "diff", "--cached", "--name-only").split()
    assert set(staged) >= {
        "out/checkpoint-100.ckpt.yaml",
        "out/checkpoint-100.runB.ckpt.yaml",
        "out/checkpoint-100.dvc",
    }
    done = commit(hooked, "run B")
    assert done.code == 0, done.out + done.err
    found = cli("find", "--json")
    assert found.code == 0, found.err
    names = {item["card"]["name"] for item in json.loads(found.out)}
    assert {old["name"], new["name"]} <= names, names
    logged = cli("log", "--all")
    assert logged.code == 0 and new["name"] in logged.out
    shown = cli("show", "out/checkpoint-100", "--json")
    assert shown.code == 0 and json.loads(shown.out)["run"]["id"] == "runB"


def test_diff_by_checkpoint_path_compares_the_card_live_at_each_revision(hooked: Path, cli) -> None:
    """After a re-run, `out/checkpoint-100` is run B's card at HEAD and run A's before."""
    overwrite_and_rerun(hooked, cli)
    assert commit(hooked, "run B").code == 0
    compared = cli("diff", "out/checkpoint-100@HEAD~1", "out/checkpoint-100", "--field",
                   "run.id", "--json")  # fmt: skip
    assert compared.code == 0, compared.err
    [change] = json.loads(compared.out)[0]["changes"]
    assert (change["a"], change["b"]) == ("runA", "runB"), change
    shown = json.loads(cli("show", "out/checkpoint-100@HEAD~1", "--json").out)
    assert shown["run"]["id"] == "runA"


def test_a_pointer_is_checked_against_the_live_card(hooked: Path, cli) -> None:
    overwrite_and_rerun(hooked, cli)
    assert commit(hooked, "run B").code == 0
    pointer = hooked / "out/checkpoint-100.dvc"
    text = pointer.read_text()
    md5 = text.split("md5: ")[1].split()[0]
    pointer.write_text(text.replace(md5, "0" * 28 + ".dir"))
    git(hooked, "add", "out/checkpoint-100.dvc")
    refused = commit(hooked)
    assert refused.code != 0
    assert "out/checkpoint-100.runB.ckpt.yaml: checkpoint.dvc" in refused.out + refused.err


def test_two_live_cards_for_one_path_are_refused(hooked: Path, cli) -> None:
    overwrite_and_rerun(hooked, cli)
    git(hooked, "checkout", "HEAD", "--", "out/checkpoint-100.ckpt.yaml")  # undo the prune
    refused = commit(hooked)
    assert refused.code != 0
    assert "already has the live card out/checkpoint-100.ckpt.yaml" in refused.out + refused.err


def test_same_run_again_is_still_an_error(hooked: Path, cli) -> None:
    hf_checkpoint(hooked, "out/checkpoint-100", seed=1)
    assert register(cli, "out/checkpoint-100", "runA").code == 0
    again = register(cli, "out/checkpoint-100", "runA")
    assert again.code == 4 and "already exists" in again.err
    assert register(cli, "out/checkpoint-100", "runA", "--force").code == 0
    assert commit(hooked).code == 0
    committed = register(cli, "out/checkpoint-100", "runA", "--force")
    assert committed.code == 4 and "cards are immutable" in committed.err
    assert sorted(p.name for p in (hooked / "out").glob("*.ckpt.yaml")) == [
        "checkpoint-100.ckpt.yaml"
    ]


def test_rerun_over_a_staged_card_and_through_save(hooked: Path, cli) -> None:
    """A card never committed is overwritten too; `dvcckpt.save` takes the same path."""
    hf_checkpoint(hooked, "out/checkpoint-100", seed=1)
    dvcckpt.save("out/checkpoint-100", params={"lr": 0.1}, metrics={"dev": {"f1": 0.7}},
                 seeds=1, run={"id": "runA"})  # fmt: skip
    hf_checkpoint(hooked, "out/checkpoint-100", seed=3)
    second = dvcckpt.save("out/checkpoint-100", params={"lr": 0.2}, metrics={"dev": {"f1": 0.8}},
                          seeds=2, run={"id": "runC"})  # fmt: skip
    assert second.path is not None
    assert second.path.resolve() == hooked / "out/checkpoint-100.runC.ckpt.yaml"
    old = card.read(hooked / "out/checkpoint-100.ckpt.yaml").data
    assert old["tombstone"]["reason"] == "overwritten by run runC"
    done = commit(hooked, "two runs")
    assert done.code == 0, done.out + done.err
    assert git(hooked, "ls-files", "out").split() == [
        "out/.gitignore",
        "out/checkpoint-100.ckpt.yaml",
        "out/checkpoint-100.dvc",
        "out/checkpoint-100.runC.ckpt.yaml",
    ]
    assert os.path.isdir(hooked / "out/checkpoint-100")


@pytest.mark.parametrize("fault", ["staged", "written"])
def test_a_killed_rerun_is_completed_by_running_it_again(hooked: Path, cli, fault: str) -> None:
    hf_checkpoint(hooked, "out/checkpoint-100", seed=1)
    assert register(cli, "out/checkpoint-100", "runA").code == 0
    assert commit(hooked, "run A").code == 0
    hf_checkpoint(hooked, "out/checkpoint-100", seed=2)
    args = ("add", "out/checkpoint-100", *FIELDS, "--run-id", "runB")
    killed = run_process(*args, cwd=hooked, env={"DVCCKPT_FAULT_POINT": fault})
    assert killed.code != 0
    again = run_process(*args, cwd=hooked)
    assert again.code == 0, again.err
    assert card.read(hooked / "out/checkpoint-100.ckpt.yaml").data["tombstone"]["kind"] == "pruned"
    assert card.read(hooked / "out/checkpoint-100.runB.ckpt.yaml").data["run"]["id"] == "runB"
    done = commit(hooked, "run B")
    assert done.code == 0, done.out + done.err
