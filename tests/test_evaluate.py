"""`dvcckpt evaluate` and `dvcckpt.evaluate`: an evaluation appended to a committed card.

Real git repositories and real `git commit`s through the pre-commit framework and the
native hook: the hook accepts an appended evaluation and refuses any other change to
the evaluations already committed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import dvcckpt
from dvcckpt.adapters import yamldoc
from dvcckpt.cards import card
from dvcckpt.cards.evaluate import EvaluateArgumentError
from dvcckpt.core import decision
from dvcckpt.errors import UsageError
from tests import test_hook
from tests.conftest import BIN, git, run_process, write_checkpoint
from tests.corpus import assert_user_error, changed, snapshot
from tests.test_hook import add_and_commit, assert_refused, commit, head

# The real-hook fixtures: the pre-commit framework and the native hook, with the
# environment `git commit` needs.
hooked = test_hook.hooked
hook_repository = test_hook.hook_repository
hook_env = test_hook.hook_env


def committed_card(repo: Path, cli, name: str = "m/step-1.pt", *args: str) -> Path:
    """A checkpoint registered and committed (no hook installed)."""
    write_checkpoint(repo / name)
    added = cli("add", name, "-p", "lr=0.1", "-m", "dev.f1=0.7", "--seed", "1", *args)
    assert added.code == 0, added.err
    git(repo, "commit", "--quiet", "-m", "add checkpoint")
    return repo / f"{name}.ckpt.yaml"


def committed_evaluations(repo: Path, card_file: Path) -> list[dict]:
    text = git(repo, "show", f"HEAD:{card_file.relative_to(repo).as_posix()}")
    found: list[dict] = yamldoc.load_fast(text, "HEAD card").get("evaluations", [])
    return found


def staged_files(repo: Path) -> list[str]:
    return git(repo, "diff", "--cached", "--name-only").split()


# --- the command and the API ---------------------------------------------------------------


def test_evaluate_then_commit_through_the_hook_and_show_lists_it(hooked: Path, cli, hook_env):
    card_file = add_and_commit(hooked, cli, hook_env)
    name = card.read(card_file).name
    result = cli("evaluate", name, "--split", "test", "-m", "macro_f1=0.81",
                 "-m", "class_f1.neg=0.7", "--protocol", "greedy decoding",
                 "--notes", "new test set v2")  # fmt: skip
    assert result.code == 0, result.err
    assert f"evaluated {name} on test: macro_f1=0.81, class_f1.neg=0.7" in result.out
    assert staged_files(hooked) == [card_file.relative_to(hooked).as_posix()]
    committed = commit(hooked, hook_env, "evaluate on test")
    assert committed.code == 0, committed.out + committed.err

    (entry,) = committed_evaluations(hooked, card_file)
    assert entry["split"] == "test"
    assert entry["metrics"] == {"macro_f1": 0.81, "class_f1": {"neg": 0.7}}
    assert entry["by"] == {"name": "Ada Trainer", "email": "ada@example.com"}
    assert entry["protocol"] == "greedy decoding" and entry["notes"] == "new test set v2"
    assert entry["at"].endswith("Z") and "T" in entry["at"]
    shown = cli("show", name)
    assert shown.code == 0, shown.err
    evaluations = shown.out[shown.out.index("evaluations") :]
    assert "test" in evaluations and "macro_f1" in evaluations and "0.81" in evaluations

    again = cli("evaluate", str(card_file), "--split", "ood", "-m", "macro_f1=0.62")
    assert again.code == 0, again.err
    committed = commit(hooked, hook_env, "evaluate on ood")
    assert committed.code == 0, committed.out + committed.err
    assert [e["split"] for e in committed_evaluations(hooked, card_file)] == ["test", "ood"]


def test_api_appends_an_evaluation_and_stages_it(repo: Path, cli) -> None:
    import numpy

    card_file = committed_card(repo, cli)
    name = card.read(card_file).name
    estimate = {"value": 0.8, "ci": [0.78, 0.82], "method": "bootstrap", "n": 1000}
    done = dvcckpt.evaluate(
        name,
        split="test",
        metrics={"f1": estimate, "acc": numpy.float32(0.5), "class_f1": {"neg": 0.7}},
        step=3,
        protocol="bootstrap, 1000 resamples",
        repo=repo,
    )
    assert done.path == card_file and done.card_file == "m/step-1.pt.ckpt.yaml"
    assert done.index == 0 and done.name == name
    assert done.entry["metrics"]["acc"] == 0.5 and type(done.entry["metrics"]["acc"]) is float
    recorded = card.read(card_file).data["evaluations"]
    assert recorded == [done.entry]
    assert recorded[0]["metrics"]["f1"] == estimate and recorded[0]["step"] == 3
    assert staged_files(repo) == ["m/step-1.pt.ckpt.yaml"]
    second = dvcckpt.evaluate(str(card_file), split="ood", metrics={"f1": 0.6}, repo=repo)
    assert second.index == 1
    checked = run_process("check", cwd=repo)
    assert checked.code == 0, checked.out + checked.err


def test_json_output(repo: Path, cli) -> None:
    card_file = committed_card(repo, cli)
    result = cli("evaluate", "m/step-1.pt", "--split", "test", "-m", "f1=0.86:0.84:0.88",
                 "--step", "1", "--json")  # fmt: skip
    assert result.code == 0, result.err
    shown = json.loads(result.out)
    assert shown["name"] == card.read(card_file).name
    assert shown["card"] == "m/step-1.pt.ckpt.yaml" and shown["index"] == 0
    entry = shown["evaluation"]
    assert entry["split"] == "test" and entry["step"] == 1
    assert entry["metrics"]["f1"]["value"] == 0.86 and entry["metrics"]["f1"]["ci"] == [0.84, 0.88]
    assert entry == card.read(card_file).data["evaluations"][0]


def test_only_the_appended_record_changes_the_card(repo: Path, cli) -> None:
    card_file = committed_card(repo, cli, "m/step-1.pt", "-r", "gpu_hours=1.5", "--tag", "base")
    text = card_file.read_text().replace("  lr: 0.1\n", "  lr: 0.1  # tuned by hand\n")
    card_file.write_text(text.replace("metrics:\n", "# reviewed by Grace\nmetrics:\n"))
    git(repo, "commit", "--quiet", "-am", "comments")
    before = card_file.read_text()
    digest = decision.immutable_digest(card.read(card_file).data)
    assert cli("evaluate", "m/step-1.pt", "--split", "test", "-m", "f1=0.69").code == 0

    diff = git(repo, "diff", "--cached", "--unified=0").splitlines()
    removed = [line for line in diff if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in diff if line.startswith("+") and not line.startswith("+++")]
    assert removed == []  # every original byte kept, comments included
    assert added[:4] == ["evaluations:", "  - split: test", "    metrics:", "      f1: 0.69"]
    after = card_file.read_text()
    assert after.index("evaluations:") < after.index("resources:")  # its canonical place
    assert "# tuned by hand" in after and "# reviewed by Grace" in after
    assert len(after) > len(before)
    # Promotion decisions bind the immutable sections: an evaluation leaves them unchanged.
    assert decision.immutable_digest(card.read(card_file).data) == digest


def test_a_staged_new_card_takes_an_evaluation(repo: Path, cli) -> None:
    write_checkpoint(repo / "m/step-2.pt")
    assert cli("add", "m/step-2.pt", "--seed", "1").code == 0
    result = cli("evaluate", "m/step-2.pt", "--split", "test", "-m", "f1=0.7")
    assert result.code == 0, result.err
    assert cli("check").code == 0
    assert card.read(repo / "m/step-2.pt.ckpt.yaml").data["evaluations"][0]["split"] == "test"


def test_concurrent_evaluations_are_all_recorded(repo: Path, cli) -> None:
    card_file = committed_card(repo, cli)
    runs = [
        subprocess.Popen(
            [str(BIN / "dvcckpt"), "evaluate", "m/step-1.pt", "--split", f"s{i}", "-m", "f1=0.5"],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(4)
    ]
    for run in runs:
        _out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err.decode()
    splits = {e["split"] for e in card.read(card_file).data["evaluations"]}
    assert splits == {"s0", "s1", "s2", "s3"}  # the writer lock: no append was lost


# --- refusals: one error line with a hint, nothing written -----------------------------------


REFUSED = [
    (["nope", "--split", "test", "-m", "f1=0.7"], 4, ("nope",)),
    (["m/step-1.pt", "--split", "test"], 2, ("no metrics",)),
    (["m/step-1.pt", "--split", "test", "-m", "f1"], 2, ("f1", "METRIC=VALUE")),
    (["m/step-1.pt", "--split", "test", "-m", "=0.7"], 2, ("METRIC=VALUE",)),
    (["m/step-1.pt", "--split", "test", "-m", "f1=abc"], 2, ("f1", "not a number")),
    (["m/step-1.pt", "--split", "test", "-m", "f1=nan"], 2, ("f1", "not a finite number")),
    (["m/step-1.pt", "--split", "test", "-m", "f1=inf"], 2, ("f1", "not a finite number")),
    (["m/step-1.pt", "--split", "test", "-m", "f1=1", "-m", "f1=2"], 2, ("f1", "twice")),
    (["m/step-1.pt", "--split", "test", "-m", "f1=1", "-m", "f1.neg=2"], 2, ("f1",)),
    (["m/step-1.pt", "--split", "test", "-m", "test.f1=0.7"], 2, ("relative to the split",)),
    (["m/step-1.pt", "--split", "mnli.mm", "-m", "f1=0.7"], 2, ("mnli.mm", "split name")),
    (["m/step-1.pt", "--split", "", "-m", "f1=0.7"], 2, ("split",)),
    (["m/step-1.pt", "--split", "a b", "-m", "f1=0.7"], 2, ("'a b'",)),
    (["m/step-1.pt", "--split", "test", "-m", "bad name=0.7"], 2, ("bad name",)),
    (["m/step-1.pt", "--split", "test", "-m", "f1=0.9:0.95:0.99"], 2, ("f1",)),
    (["m/step-1.pt", "--split", "test", "-m", "f1=1", "--notes", " "], 2, ("--notes",)),
    (["m/step-1.pt", "--split", "test", "-m", "f1=1", "--protocol", ""], 2, ("--protocol",)),
    (["m/step-1.pt", "--split", "test", "-m", "f1=1", "--step", "-1"], 2, ("--step",)),
    (["m/step-1.pt@HEAD", "--split", "test", "-m", "f1=0.7"], 2, ("work tree",)),
    (["", "--split", "test", "-m", "f1=0.7"], 2, ("empty",)),
]


@pytest.mark.parametrize(("args", "code", "names"), REFUSED)
def test_refusals_name_the_problem_and_write_nothing(repo: Path, cli, args, code, names) -> None:
    committed_card(repo, cli)
    before = snapshot(repo)
    result = cli("evaluate", *args)
    assert result.code == code, result.err
    assert_user_error(result.code, result.err, names=names)
    assert changed(before, snapshot(repo)) == []
    assert staged_files(repo) == []


def test_unstaged_edits_are_refused_until_staged(repo: Path, cli) -> None:
    card_file = committed_card(repo, cli)
    card_file.write_text(card_file.read_text() + "# a note in progress\n")
    before = snapshot(repo)
    result = cli("evaluate", "m/step-1.pt", "--split", "test", "-m", "f1=0.7")
    assert_user_error(result.code, result.err, names=("m/step-1.pt.ckpt.yaml", "not staged"))
    assert result.code == 4 and "git add -- m/step-1.pt.ckpt.yaml" in result.err
    assert changed(before, snapshot(repo)) == [] and staged_files(repo) == []
    git(repo, "add", "m/step-1.pt.ckpt.yaml")
    assert cli("evaluate", "m/step-1.pt", "--split", "test", "-m", "f1=0.7").code == 0
    assert card_file.read_text().count("# a note in progress") == 1


def test_a_card_never_staged_is_refused(repo: Path, cli) -> None:
    write_checkpoint(repo / "m/step-2.pt")
    assert cli("add", "m/step-2.pt", "--no-stage").code == 0
    before = snapshot(repo)
    result = cli("evaluate", "m/step-2.pt", "--split", "test", "-m", "f1=0.7")
    assert_user_error(result.code, result.err, names=("m/step-2.pt.ckpt.yaml",))
    assert "git add -- m/step-2.pt.ckpt.yaml m/step-2.pt.dvc" in result.err
    assert changed(before, snapshot(repo)) == []


def test_a_retired_checkpoint_is_refused(repo: Path, cli) -> None:
    committed_card(repo, cli)
    assert cli("retire", "m/step-1.pt", "--reason", "diverged").code == 0
    git(repo, "commit", "--quiet", "-m", "retire")
    before = snapshot(repo)
    result = cli("evaluate", "m/step-1.pt", "--split", "test", "-m", "f1=0.7")
    assert_user_error(result.code, result.err, names=("retired",))
    assert changed(before, snapshot(repo)) == []


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"split": 1, "metrics": {"f1": 0.7}}, "split=1"),
        ({"split": "test", "metrics": [("f1", 0.7)]}, "metrics="),
        ({"split": "test", "metrics": {"f1": 0.7}, "step": True}, "step=True"),
        ({"split": "test", "metrics": {"f1": 0.7}, "step": -2}, "step=-2"),
        ({"split": "test", "metrics": {"f1": 0.7}, "notes": 3}, "notes=3"),
    ],
)
def test_api_arguments_of_the_wrong_type(repo: Path, cli, arguments, fragment) -> None:
    committed_card(repo, cli)
    before = snapshot(repo)
    with pytest.raises(EvaluateArgumentError, match=fragment) as raised:
        dvcckpt.evaluate("m/step-1.pt", repo=repo, **arguments)
    assert isinstance(raised.value, TypeError) and raised.value.hint
    assert changed(before, snapshot(repo)) == []


@pytest.mark.parametrize(
    ("metrics", "fragment"),
    [
        ({}, "no metrics"),
        ({"f1": "high"}, "metrics.f1: 'high' is a str"),
        ({"f1": True}, "metrics.f1: True is a bool"),
        ({"f1": float("nan")}, "metrics.f1: nan is not a finite number"),
        ({"class_f1": {}}, "metrics.class_f1: an empty group"),
        ({"f1": {"value": 0.8, "ci": [0.9, 0.7]}}, "metrics.f1.ci"),
        ({"f1": {"value": 0.8, "std": 0.1}}, "evaluations[0].metrics.f1"),
        ({"-f1": 0.8}, "'-f1' is not a metric name"),
    ],
)
def test_api_metrics_are_checked_before_writing(repo: Path, cli, metrics, fragment) -> None:
    committed_card(repo, cli)
    before = snapshot(repo)
    with pytest.raises(UsageError, match=fragment.replace("[", r"\[")):
        dvcckpt.evaluate("m/step-1.pt", split="test", metrics=metrics, repo=repo)
    assert changed(before, snapshot(repo)) == []


# --- the hook: appending is the only change evaluations accept -------------------------------


def _evaluated_and_committed(repo: Path, cli, env) -> Path:
    card_file = add_and_commit(repo, cli, env)
    for split, value in (("test", "0.81"), ("ood", "0.62")):
        assert cli("evaluate", "m/step-1.pt", "--split", split, "-m", f"f1={value}").code == 0
        done = commit(repo, env, f"evaluate on {split}")
        assert done.code == 0, done.out + done.err
    return card_file


def _rewrite_evaluations(card_file: Path, change) -> None:
    editable = card.read(card_file, editable=True)
    change(editable.document["evaluations"])
    card.write(card_file, editable.document)


def test_changing_an_earlier_evaluation_is_refused(hooked: Path, cli, hook_env) -> None:
    card_file = _evaluated_and_committed(hooked, cli, hook_env)
    tamperings = [
        (lambda entries: entries[0]["metrics"].update(f1=0.99), "evaluations[0]: was changed"),
        (lambda entries: entries.reverse(), "evaluations[0]: was changed"),
        (lambda entries: entries.pop(), "evaluations[1]: was removed"),
        (
            lambda entries: entries.insert(0, yamldoc.to_plain(entries[1])),
            "evaluations[0]: was changed",
        ),
    ]
    for tamper, message in tamperings:
        _rewrite_evaluations(card_file, tamper)
        git(hooked, "add", str(card_file))
        assert_refused(hooked, hook_env, message, "committed fields cannot change")
        git(hooked, "reset", "--quiet", "--hard")


def test_an_appended_evaluation_must_be_finite_and_well_named(hooked: Path, cli, hook_env):
    card_file = _evaluated_and_committed(hooked, cli, hook_env)
    text = card_file.read_text()
    appended = "  - split: late\n    metrics:\n      f1: .nan\n    at: '2026-03-01T09:00:00Z'\n"
    card_file.write_text(text.replace("resources:", appended + "resources:", 1)
                         if "resources:" in text else text + appended)  # fmt: skip
    git(hooked, "add", str(card_file))
    assert_refused(hooked, hook_env, "evaluations[2].metrics.f1", "not a finite number")
    git(hooked, "reset", "--quiet", "--hard")

    _rewrite_evaluations(
        card_file,
        lambda e: e.append(
            {"split": "mnli.mm", "metrics": {"f1": 0.5}, "at": "2026-03-01T09:00:00Z"}
        ),
    )
    git(hooked, "add", str(card_file))
    assert_refused(hooked, hook_env, "evaluations[2].split", "is not a split name")
    git(hooked, "reset", "--quiet", "--hard")

    interval = {"value": 0.8, "ci": [0.9, 0.7]}
    _rewrite_evaluations(
        card_file,
        lambda e: e.append(
            {"split": "late", "metrics": {"f1": interval}, "at": "2026-03-01T09:00:00Z"}
        ),
    )
    git(hooked, "add", str(card_file))
    assert_refused(hooked, hook_env, "evaluations[2].metrics.f1.ci", "malformed CI")


def test_a_retired_card_takes_no_new_evaluation_at_commit(hooked: Path, cli, hook_env) -> None:
    card_file = add_and_commit(hooked, cli, hook_env)
    assert cli("retire", "m/step-1.pt", "--reason", "diverged").code == 0
    assert commit(hooked, hook_env, "retire").code == 0
    entry = {"split": "test", "metrics": {"f1": 0.5}, "at": "2026-03-01T09:00:00Z"}
    editable = card.read(card_file, editable=True)
    editable.document["evaluations"] = [entry]
    card.write(card_file, editable.document)
    git(hooked, "add", str(card_file))
    assert_refused(hooked, hook_env, "evaluations[0]", "retired checkpoint")


def test_a_card_committed_under_an_older_policy_takes_an_evaluation(hooked: Path, cli, hook_env):
    """Name and required fields are judged when a card enters history: a naming pattern or
    a required field introduced later cannot be met by a committed (immutable) card, and
    must not refuse its evaluations."""
    config = hooked / "dvcckpt.yaml"
    config.write_text("version: 1\nproject: p\nnaming:\n  checkpoint: '{model}-s{step}'\n")
    git(hooked, "add", "dvcckpt.yaml")
    card_file = add_and_commit(hooked, cli, hook_env)
    assert card.read(card_file).name == "m-s1"
    config.write_text(
        "version: 1\nproject: p\nnaming:\n  checkpoint: '{model}-{phase}-s{step}'\n"
        "required:\n  all: [data.dataset]\n"
    )
    git(hooked, "add", "dvcckpt.yaml")
    assert commit(hooked, hook_env, "stricter policy").code == 0
    assert cli("evaluate", "m-s1", "--split", "test", "-m", "f1=0.7").code == 0
    before = head(hooked)
    done = commit(hooked, hook_env, "evaluate")
    assert done.code == 0, done.out + done.err
    assert head(hooked) != before


def test_intervals_are_judged_on_new_cards_and_appended_evaluations_only() -> None:
    from dvcckpt.core import policy

    bad = {"value": 0.8, "ci": [0.9, 0.7]}
    committed = {"metrics": {"dev": {"f1": bad}}, "evaluations": []}
    good_entry = {"split": "test", "metrics": {"f1": 0.7}, "at": "2026-03-01T09:00:00Z"}
    bad_entry = {**good_entry, "metrics": {"f1": bad}}
    grown = {**committed, "evaluations": [good_entry]}
    # A committed card's metrics were judged when it entered history (and are immutable).
    assert policy.interval_findings("c.yaml", committed, grown) == []
    assert [f.field for f in policy.interval_findings("c.yaml", None, grown)] == [
        "metrics.dev.f1.ci"
    ]
    found = policy.interval_findings(
        "c.yaml", grown, {**grown, "evaluations": [good_entry, bad_entry]}
    )
    assert [f.field for f in found] == ["evaluations[1].metrics.f1.ci"]
    assert "malformed CI" in found[0].message
