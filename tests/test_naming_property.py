"""Names: every placeholder renders and reads back, runs never collide, names stay unique.

The properties run over every placeholder of `naming.PLACEHOLDERS`, integer widths and
separators; the rest on real git + DVC repositories through `add`, `save` and the hook.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dvcckpt.cards import card
from dvcckpt.core import finalname, naming
from dvcckpt.errors import UsageError
from tests.conftest import git, write_checkpoint
from tests.corpus import assert_user_error, changed, snapshot

INTEGERS = ("step", "epoch", "seed")
SPECS = ("", ":d", ":06d", ":020d", ":1d")
SEPARATORS = ("-", "_", ".", "-x-", "/", "@", "step", "+", "--")
ALNUM = "abcxyz019"
# Values each placeholder reads, separator characters included: a value that holds
# the separator after it may be ambiguous, and must then be refused, never misread.
WELL_FORMED = {
    "project": st.text(ALNUM + ".-", min_size=1, max_size=8).map(lambda s: "p" + s),
    "task": st.text(ALNUM + ".-", min_size=1, max_size=8).map(lambda s: "t" + s),
    "model": st.text(ALNUM + "._-", min_size=1, max_size=8).map(lambda s: "m" + s),
    "keyparam": st.text(ALNUM + "._+-", min_size=1, max_size=8).map(lambda s: "k" + s),
    "run_id": st.text(ALNUM + "._-", min_size=1, max_size=8).map(lambda s: "r" + s),
    "phase": st.text(ALNUM + "_", min_size=0, max_size=8).map(lambda s: "p" + s),
    "kind": st.sampled_from(["full", "weights", "optimizer", "ema"]),
    "date": st.dates().map(lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}"),
    # Whole numbers, also as floats (an epoch of 3.0 is the name's 3).
    **dict.fromkeys(INTEGERS, st.integers(0, 10**18) | st.integers(0, 10**6).map(float)),
}
HOSTILE = (
    st.text(max_size=12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(-(10**20), 10**20)
    | st.booleans()
)


def test_the_strategies_cover_every_placeholder() -> None:
    assert set(WELL_FORMED) == set(naming.PLACEHOLDERS)


@st.composite
def patterns(draw: st.DrawFn, with_step: bool = False) -> str:
    fields = draw(st.lists(st.sampled_from(naming.PLACEHOLDERS), min_size=1, max_size=6,
                           unique=True))  # fmt: skip
    if with_step and "step" not in fields:
        fields.append("step")
    pattern = draw(st.sampled_from(["", "run-", "x"]))
    for index, name in enumerate(fields):
        spec = draw(st.sampled_from(SPECS)) if name in INTEGERS else ""
        pattern += (draw(st.sampled_from(SEPARATORS)) if index else "") + "{" + name + spec + "}"
    return pattern + draw(st.sampled_from(["", ".ckpt", "-end"]))


def expected(values: dict[str, object]) -> dict[str, object]:
    """What a name reads back as: whole numbers, and every other value as its text."""
    return {k: int(v) if k in INTEGERS else str(v) for k, v in values.items()}  # type: ignore[call-overload]


def literal_characters(pattern: str) -> set[str]:
    return set(re.sub(r"\{[^}]*\}", "", pattern))


def assert_reads_back_or_names_the_placeholder(pattern: str, values: dict[str, object]) -> str:
    """name_for's contract: a name that parses back into exactly `values`, or a
    UsageError naming one of the pattern's placeholders."""
    try:
        name = naming.name_for(pattern, values, "checkpoint")
    except UsageError as exc:
        assert any(f"{{{field}}}" in exc.message for field in values), exc.message
        assert exc.hint and len(exc.message) < 400
        return ""
    assert name is not None
    assert naming.parse(pattern, name) == expected(values), (pattern, name)
    return name


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_every_well_formed_value_renders_and_reads_back(data: st.DataObject) -> None:
    pattern = data.draw(patterns())
    fields = naming.placeholders(pattern)
    values = {field: data.draw(WELL_FORMED[field]) for field in fields}
    name = assert_reads_back_or_names_the_placeholder(pattern, values)
    # Values sharing no character with the pattern's literal text are never ambiguous.
    literal = literal_characters(pattern)
    if not any(literal & set(str(naming.render("{" + k + "}", {k: v}))) for k, v in values.items()):
        assert name, (pattern, values)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_any_value_reads_back_or_is_refused_naming_its_placeholder(data: st.DataObject) -> None:
    pattern = data.draw(patterns())
    values = {
        field: data.draw(HOSTILE | WELL_FORMED[field]) for field in naming.placeholders(pattern)
    }
    if any(value in (None, "") for value in values.values()):
        assert naming.name_for(pattern, values, "checkpoint") is None
        return
    assert_reads_back_or_names_the_placeholder(pattern, values)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_final_model_names_read_back_under_the_checkpoint_pattern(data: st.DataObject) -> None:
    pattern = data.draw(patterns(with_step=True))
    final = finalname.final_pattern(pattern)
    assert final is not None
    fields = naming.placeholders(final)
    values = {field: data.draw(WELL_FORMED[field]) for field in fields}
    name = assert_reads_back_or_names_the_placeholder(final, values)
    if name:
        assert finalname.parse(pattern, name) == expected(values)


def test_a_whole_epoch_renders_as_the_integer_the_hook_reads() -> None:
    pattern = "{model}-e{epoch}-s{step}"
    name = naming.name_for(pattern, {"model": "bert", "epoch": 3.0, "step": 6}, "checkpoint")
    assert name == "bert-e3-s6"
    assert naming.parse(pattern, name) == {"model": "bert", "epoch": 3, "step": 6}
    with pytest.raises(UsageError, match=r"\{epoch\} needs a whole number") as caught:
        naming.name_for(pattern, {"model": "bert", "epoch": 2.5, "step": 6}, "checkpoint")
    assert "--epoch" in caught.value.hint


def test_the_default_pattern_carries_the_run_id() -> None:
    assert "run_id" in naming.placeholders(naming.DEFAULT_CHECKPOINT_PATTERN)
    one = {"model": "bert", "phase": "train", "kind": "full", "step": 100}
    names = {naming.name_for(naming.DEFAULT_CHECKPOINT_PATTERN, {**one, "run_id": r}, "c")
             for r in ("a1b2c3", "d4e5f6")}  # fmt: skip
    assert len(names) == 2


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("wandb-3kd9x", "wandb-3kd9x"),
        ("0" * 32, naming.derived_run_id("0" * 32)),
        ("team/run 7", naming.derived_run_id("team/run 7")),
    ],
)
def test_a_long_or_unsafe_run_id_is_shortened_stably(given: str, shown: str) -> None:
    assert naming.short_run_id(given) == shown == naming.short_run_id(given)
    assert naming.readable("run_id", shown) and len(shown) <= naming.RUN_ID_MAX


# --- on real repositories ---------------------------------------------------------------


def added(repo: Path, cli, path: str, *args: str) -> dict:
    write_checkpoint(repo / path, seed=len(path) + len(args))
    result = cli("add", path, *args)
    assert result.code == 0, result.err
    return card.read(repo / f"{path}.ckpt.yaml").data


def test_an_epoch_pattern_names_what_the_hook_accepts(repo: Path, cli) -> None:
    (repo / "dvcckpt.yaml").write_text(
        "version: 1\nproject: p\nnaming: {checkpoint: '{model}-e{epoch}-s{step}'}\n"
    )
    data = added(repo, cli, "bert/a.pt", "--epoch", "3", "--step", "6")
    assert data["name"] == "bert-e3-s6" and data["checkpoint"]["epoch"] == 3.0
    checked = cli("check")
    assert checked.code == 0, checked.out + checked.err
    write_checkpoint(repo / "bert/b.pt")
    before = snapshot(repo)
    refused = cli("add", "bert/b.pt", "--epoch", "2.5", "--step", "7")
    assert_user_error(refused.code, refused.err, names=("{epoch}",))
    assert refused.code == 2 and changed(before, snapshot(repo)) == []


def test_two_runs_of_one_model_never_collide_and_a_runs_checkpoints_share_its_id(
    repo: Path, cli
) -> None:
    first = added(repo, cli, "bert/run1/step-100.pt", "--model", "bert")
    second = added(repo, cli, "bert/run2/step-100.pt", "--model", "bert")
    assert first["name"] != second["name"]
    assert first["run"]["id"] != second["run"]["id"]
    run = "p_t_bert_lr1_2026-01-05"
    a = added(repo, cli, "bert/run3/step-100.pt", "--model", "bert", "--run", run)
    b = added(repo, cli, "bert/run3/step-200.pt", "--model", "bert", "--run", run)
    assert a["run"]["id"] == b["run"]["id"] == naming.derived_run_id(run)
    tracked = added(repo, cli, "bert/run4/step-100.pt", "--model", "bert", "--run-id", "wb-7x")
    assert tracked["name"] == "bert-train-full-wb-7x-step000100"
    checked = cli("check")
    assert checked.code == 0, checked.out + checked.err


def test_final_models_of_two_runs_differ(repo: Path, cli) -> None:
    for run in ("one", "two"):
        record = {"run_name": f"p_t_bert_{run}_2026-01-05", "params": {"seed": 1}}
        (repo / f"{run}.json").write_text(json.dumps(record))
    one = added(repo, cli, "bert/one.pt", "--model", "bert", "--from", "one.json")
    two = added(repo, cli, "bert/two.pt", "--model", "bert", "--from", "two.json")
    assert one["name"].endswith("-final") and two["name"].endswith("-final")
    assert one["name"] != two["name"]
    assert cli("check").code == 0


SAVE_TWICE = """
import sys, dvcckpt, pathlib
for step in (100, 200):
    path = pathlib.Path(sys.argv[1]) / f"step-{step}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(sys.argv[1].encode() * step)
    print(dvcckpt.save(path, model="bert", step=step, run="p_t_bert_lr1_2026-01-05").name)
"""


def test_save_shares_one_id_per_training_process_and_a_second_run_differs(repo: Path) -> None:
    (repo / "train.py").write_text(SAVE_TWICE)
    names = []
    for folder in ("bert/a", "bert/b"):  # two runs of one script, with the same run name
        done = subprocess.run([sys.executable, "train.py", folder], cwd=repo, check=True,
                              capture_output=True, text=True)  # fmt: skip
        names.append(done.stdout.split())
    ids = [{name.split("-")[3] for name in run} for run in names]
    assert all(len(run_ids) == 1 for run_ids in ids)  # siblings of one run share its id
    assert ids[0] != ids[1]  # another run never does


def test_a_name_used_anywhere_in_history_is_refused_at_add_time(repo: Path, cli) -> None:
    old = added(repo, cli, "m/old.pt", "--step", "1", "--seed", "1")["name"]
    git(repo, "commit", "-qm", "old")
    git(repo, "checkout", "-qb", "side")
    side = added(repo, cli, "m/side.pt", "--step", "2", "--seed", "2")["name"]
    git(repo, "commit", "-qm", "side")
    git(repo, "checkout", "-q", "main")
    staged = added(repo, cli, "m/staged.pt", "--step", "3")["name"]
    for taken, holder in ((old, "m/old.pt"), (side, "m/side.pt"), (staged, "m/staged.pt")):
        write_checkpoint(repo / "n/new.pt", seed=9)
        before = snapshot(repo)
        refused = cli("add", "n/new.pt", "--name", taken, "--model", "m")
        assert_user_error(refused.code, refused.err, names=("name", holder))
        assert "already used by" in refused.err and "--run-id" in refused.err
        assert changed(before, snapshot(repo)) == []


def test_an_explicit_pattern_without_a_run_id_keeps_its_names(repo: Path, cli) -> None:
    (repo / "dvcckpt.yaml").write_text(
        "version: 1\nproject: p\nnaming: {checkpoint: '{model}-{phase}-{kind}-step{step:06d}'}\n"
    )
    data = added(repo, cli, "m/a.pt", "--step", "1")
    assert data["name"] == "m-train-full-step000001" and "id" not in data.get("run", {})


OLD_DEFAULT = "{model}-{phase}-{kind}-step{step:06d}"  # explicit in earlier dvcckpt.yaml files


def test_under_a_pattern_without_run_id_final_models_still_differ_per_run(repo: Path, cli) -> None:
    (repo / "dvcckpt.yaml").write_text(
        f"version: 1\nproject: p\nnaming: {{checkpoint: '{OLD_DEFAULT}'}}\n"
    )
    for run in ("one", "two"):
        (repo / f"{run}.json").write_text(json.dumps({"run_name": f"p_t_m_{run}_2026-01-05"}))
    one = added(repo, cli, "m/one.pt", "--model", "m", "--from", "one.json")
    two = added(repo, cli, "m/two.pt", "--model", "m", "--from", "two.json")
    assert one["name"] == f"m-train-full-{one['run']['id']}-final"
    assert two["name"] == f"m-train-full-{two['run']['id']}-final" != one["name"]
    # A final model named before run ids (no id) still follows the pattern.
    earlier = added(repo, cli, "m/earlier.pt", "--model", "m", "--name", "m-train-full-final",
                    "--run", "p_t_m_zero_2026-01-05")  # fmt: skip
    assert earlier["name"] == "m-train-full-final"
    assert cli("check").code == 0


def test_a_step_taken_by_another_run_says_how_to_tell_runs_apart(repo: Path, cli) -> None:
    (repo / "dvcckpt.yaml").write_text(
        f"version: 1\nproject: p\nnaming: {{checkpoint: '{OLD_DEFAULT}'}}\n"
    )
    added(repo, cli, "m/run1/step-5.pt", "--model", "m")
    write_checkpoint(repo / "m/run2/step-5.pt", seed=5)
    refused = cli("add", "m/run2/step-5.pt", "--model", "m")
    assert_user_error(refused.code, refused.err, names=("m-train-full-step000005",))
    assert "put {run_id} in naming.checkpoint" in refused.err


def test_cards_named_before_the_default_carried_a_run_id_still_follow_it(repo: Path, cli) -> None:
    # A project without dvcckpt.yaml: its earlier cards, final models included.
    data = added(repo, cli, "m/a.pt", "--step", "1", "--name", "m-train-full-step000001")
    final = added(repo, cli, "m/b.pt", "--name", "m-train-full-final",
                  "--run", "p_t_m_one_2026-01-05")  # fmt: skip
    assert (data["name"], final["name"]) == ("m-train-full-step000001", "m-train-full-final")
    git(repo, "commit", "-qm", "earlier cards")
    checked = cli("check", "--all")
    assert checked.code == 0, checked.out + checked.err
    assert naming.parse(naming.DEFAULT_CHECKPOINT_PATTERN, "m-train-full-step000001") == {
        "model": "m", "phase": "train", "kind": "full", "step": 1,
    }  # fmt: skip
