"""dvclive and `dvc exp run`: metrics at the checkpoint's step, cards under experiment refs.

Real dvclive writes the folders (`Live(...)`, `live.next_step()`), a real `dvc exp run`
commits a stage's card under `refs/exps/...`, and the real CLI reads them back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dvcckpt.cards import card
from dvcckpt.errors import UsageError
from tests.conftest import BIN, git, run_process, write_checkpoint

dvclive = pytest.importorskip("dvclive", reason="dvclive comes with the integrations extra")

# eval/acc is logged every other step, so some steps have no evaluation.
LOSS = {0: 1.0, 1: 0.5, 2: 0.25, 3: 0.125}
ACC = {0: 0.5, 2: 0.75}


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A training loop logging with real dvclive (four steps), once for the module."""
    folder = tmp_path_factory.mktemp("run") / "dvclive"
    # Outside any git repository: dvclive runs `dvc init` in the git repository it is in.
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder.parent)
        _log_steps(folder)
    return folder


def _log_steps(folder: Path) -> None:
    with dvclive.Live(str(folder), save_dvc_exp=False, dvcyaml=None, report=None) as live:
        for step, loss in LOSS.items():
            live.log_metric("train/loss", loss)
            if step in ACC:
                live.log_metric("eval/acc", ACC[step])
            live.log_metric("lr", 0.001 * (step + 1))
            live.next_step()


def log_run(folder: Path, logged: Path) -> None:
    shutil.copytree(logged, folder)


def card_of(path: Path) -> dict:
    return card.read(path).data


def test_add_takes_the_row_logged_at_the_checkpoint_step(repo: Path, cli, logged: Path) -> None:
    log_run(repo / "dvclive", logged)
    summary = json.loads((repo / "dvclive/metrics.json").read_text())
    assert summary["step"] == 3 and summary["eval"]["acc"] == ACC[2]  # latest values only
    write_checkpoint(repo / "models/ckpt.pt")
    result = cli("add", "models/ckpt.pt", "--step", "2", "--metrics", "dvclive/metrics.json")
    assert result.code == 0, result.err
    data = card_of(repo / "models/ckpt.pt.ckpt.yaml")
    assert data["checkpoint"]["step"] == 2
    assert data["metrics"] == {
        "train": {"loss": LOSS[2]},
        "eval": {"acc": ACC[2]},
        "overall": {"lr": 0.003},
    }


def test_a_metric_not_logged_at_the_step_is_left_out(repo: Path, cli, logged: Path) -> None:
    log_run(repo / "dvclive", logged)
    write_checkpoint(repo / "models/ckpt.pt")
    result = cli("add", "models/ckpt.pt", "--step", "1", "--metrics", "dvclive")
    assert result.code == 0, result.err
    data = card_of(repo / "models/ckpt.pt.ckpt.yaml")
    # Step 0's evaluation is not step 1's: no eval split rather than a stale one.
    assert data["metrics"] == {"train": {"loss": LOSS[1]}, "overall": {"lr": 0.002}}


def test_a_step_dvclive_never_logged_is_refused(repo: Path, cli, logged: Path) -> None:
    log_run(repo / "dvclive", logged)
    write_checkpoint(repo / "models/ckpt.pt")
    result = cli("add", "models/ckpt.pt", "--step", "160", "--metrics", "dvclive")
    assert result.code == 2
    assert (
        "no metric was logged at step 160 (its rows cover steps 0 to 3; the last before 160 is 3)"
        in result.err
    )
    unknown = cli("add", "models/ckpt.pt", "--metrics", "dvclive")
    assert unknown.code == 2 and "step is unknown" in unknown.err and "--step" in unknown.err
    assert not (repo / "models/ckpt.pt.ckpt.yaml").exists()


def test_hugging_face_dvclive_counter_never_becomes_the_step(repo: Path, cli) -> None:
    """report_to=["dvclive"]: dvclive steps once per log call (13), the trainer is at 160."""
    from dvclive.utils import standardize_metric_name

    folder = repo / "dvclive"
    args = {"output_dir": "out", "logging_steps": 10, "save_steps": 80, "report_to": ["dvclive"]}
    with dvclive.Live(str(folder), save_dvc_exp=False, dvcyaml=None, report=None) as live:
        live.log_params(args)
        for call in range(14):  # what the Trainer's on_log does, one call per log
            logs = {"loss": 1.0 / (call + 1), "epoch": call / 7}
            if call % 7 == 6:
                logs["eval_loss"] = 0.9 - call / 100
            for key, value in logs.items():
                live.log_metric(standardize_metric_name(key, "dvclive.huggingface"), value)
            live.next_step()
    assert json.loads((folder / "metrics.json").read_text())["step"] == 13
    write_checkpoint(repo / "out/checkpoint-160/model.safetensors")
    for given, step in (("dvclive/metrics.json", ()), ("dvclive", ("--step", "160"))):
        result = cli("add", "out/checkpoint-160", *step, "--metrics", given)
        assert result.code == 2, result.out
        assert "step" in result.err.splitlines()[0]
        assert not (repo / "out/checkpoint-160.ckpt.yaml").exists()
    refused = cli("add", "out/checkpoint-160", "--step", "13", "--metrics", "dvclive")
    assert refused.code == 2 and "Hugging Face's dvclive callback" in refused.err


def hostile(repo: Path, logged: Path, kind: str) -> Path:
    """A dvclive folder whose eval/acc.tsv (or the folder itself) is damaged as `kind` says."""
    log_run(repo / "dvclive", logged)
    tsv = repo / "dvclive/plots/metrics/eval/acc.tsv"
    if kind == "huge":
        with tsv.open("r+b") as handle:
            handle.truncate(300 << 20)  # sparse: costs no disk
    elif kind == "nan":
        tsv.write_text("step\tacc\n0\t0.5\n2\tnan\n")
    elif kind == "ragged":
        tsv.write_text("step\tacc\n0\t0.5\n2\n")
    elif kind == "not-utf8":
        tsv.write_bytes(b"step\tacc\n0\t0.5\n2\t0.\xff7\n")
    elif kind == "header":
        tsv.write_text("when\tacc\n0\t0.5\n")
    elif kind == "step":
        tsv.write_text("step\tacc\n-1\t0.5\n")
    elif kind == "value":
        tsv.write_text("step\tacc\n2\t1_000\n")
    elif kind == "long-line":
        tsv.write_text("step\tacc\n2\t" + "1" * 10_000 + "\n")
    elif kind == "symlink":
        tsv.unlink()
        tsv.symlink_to("/dev/zero")
    elif kind == "name":
        tsv.rename(tsv.with_name("acc score.tsv"))
        return tsv.with_name("acc score.tsv")
    return tsv


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("huge", "-byte limit"),
        ("nan", "acc is nan at step 2"),
        ("ragged", "line 3 has 1 columns, the header 2"),
        ("not-utf8", "line 3 is not UTF-8 (byte 0xff)"),
        ("header", "expected the header `step acc`"),
        ("step", "step '-1' is not a whole number"),
        ("value", "'1_000' is not a number"),
        ("long-line", "line 2 is over 4096 bytes"),
        ("symlink", "not a regular file"),
        ("name", "cannot be a card's metric name"),
    ],
)
def test_a_hostile_history_file_is_one_error_naming_it(
    repo: Path, cli, logged: Path, kind: str, says: str
) -> None:
    bad = hostile(repo, logged, kind)
    write_checkpoint(repo / "models/ckpt.pt")
    result = cli("add", "models/ckpt.pt", "--step", "2", "--metrics", "dvclive")
    assert result.code == 2, result.err
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.err
    assert str(bad.relative_to(repo)) in errors[0] and says in errors[0]
    assert not (repo / "models/ckpt.pt.ckpt.yaml").exists()


def test_a_metric_that_is_also_a_group_is_refused(repo: Path, cli, logged: Path) -> None:
    log_run(repo / "dvclive", logged)
    (repo / "dvclive/plots/metrics/eval.tsv").write_text("step\teval\n2\t0.1\n")
    write_checkpoint(repo / "models/ckpt.pt")
    result = cli("add", "models/ckpt.pt", "--step", "2", "--metrics", "dvclive")
    assert result.code == 2
    assert "'eval/acc' and 'eval' are both a metric and a group of metrics" in result.err


@pytest.mark.parametrize("timestamps", [False, True])
def test_long_histories_read_in_blocks_agree_with_row_by_row(
    tmp_path: Path, timestamps: bool
) -> None:
    """80k rows (several read blocks), steps repeated and out of order, one row malformed
    far from the step: the block reader names the same line a row-by-row reading finds."""
    import random

    from dvcckpt.cards import dvclivehistory

    rng = random.Random(7)
    rows = [(rng.randrange(3000), rng.choice([f"{rng.random()!r}", f"{rng.randrange(99)}"]))
            for _ in range(80_000)]  # fmt: skip
    head = "timestamp\tstep\tloss\n" if timestamps else "step\tloss\n"
    lines = [f"{1764000000000 + i}\t" * timestamps + f"{s}\t{v}\n" for i, (s, v) in enumerate(rows)]
    tsv = tmp_path / "dvclive/plots/metrics/train/loss.tsv"
    tsv.parent.mkdir(parents=True)
    tsv.write_text(head + "".join(lines))
    with tsv.open("rb") as handle:  # the rows take the block path, not the row-by-row one
        handle.readline()
        blocks = list(dvclivehistory._blocks(handle))
    assert len(blocks) >= 2 and all(
        dvclivehistory._ROWS[2 + timestamps].fullmatch(b) for b in blocks
    )
    for step in rng.sample(range(3000), 25):
        value = [v for s, v in rows if s == step][-1]  # ~27 rows a step: each has some
        want = float(value) if "." in value else int(value)
        found = dvclivehistory.metrics_at(tmp_path / "dvclive", step)
        assert found == {"metrics": {"train": {"loss": want}}}, step
    lines[61_234] = lines[61_234].replace("\t", "\t\t", 1)
    tsv.write_text(head + "".join(lines))
    with pytest.raises(UsageError, match=r"line 61236 has \d columns"):
        dvclivehistory.metrics_at(tmp_path / "dvclive", rows[0][0])


TRAIN = """\
from pathlib import Path

import dvcckpt
from dvclive import Live

with Live("dvclive", save_dvc_exp=True, dvcyaml=None, report=None) as live:
    for step in range(3):
        live.log_metric("eval/acc", 0.5 + step / 10)
        if step < 2:
            live.next_step()
    Path("models").mkdir(exist_ok=True)
    Path("models/final.pt").write_bytes(bytes(range(256)) * 16)
    card = dvcckpt.save("models/final.pt", step=live.step, metrics={"eval": {"acc": 0.7}})
    print("saved", card.document["name"])
"""


def test_cards_of_dvc_exp_run_are_found_by_find_and_log_all(repo: Path) -> None:
    (repo / "train.py").write_text(TRAIN)
    stage = {"cmd": f"{sys.executable} train.py", "deps": ["train.py"],
             "metrics": [{"dvclive/metrics.json": {"cache": False}}]}  # fmt: skip
    (repo / "dvc.yaml").write_text(json.dumps({"stages": {"train": stage}}))
    git(repo, "add", "train.py", "dvc.yaml")
    git(repo, "commit", "--quiet", "-m", "a training stage")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    before = run_process("find", "--all", "--json", cwd=repo)  # a catalog the run must refresh
    assert before.code == 0 and before.out.strip() in ("", "[]"), before.out
    done = subprocess.run([str(BIN / "dvc"), "exp", "run"], cwd=repo, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    name = done.stdout.split("saved ", 1)[1].split()[0]
    refs = git(repo, "for-each-ref", "--format=%(refname)", "refs/exps").split()
    experiment = [ref for ref in refs if ref.count("/") == 4 and "/exec/" not in ref]
    assert len(experiment) == 1, refs
    exp_commit = git(repo, "rev-parse", experiment[0]).strip()
    committed = git(repo, "ls-tree", "-r", "--name-only", experiment[0]).split()
    assert "models/final.pt.ckpt.yaml" in committed  # the card rode in the experiment commit
    assert "models/final.pt.ckpt.yaml" not in git(repo, "ls-tree", "-r", "--name-only", "HEAD")

    found = run_process("find", "--all", "--json", cwd=repo)
    assert found.code == 0, found.err
    rows = json.loads(found.out)
    assert [(row["card"]["name"], row["commit"]) for row in rows] == [(name, exp_commit)]
    assert run_process("find", "--json", cwd=repo).out.strip() in ("", "[]")
    listed = run_process("log", "--all", cwd=repo)
    assert listed.code == 0 and name in listed.out, listed.err

    shown = subprocess.run([str(BIN / "dvc"), "exp", "show", "--json"], cwd=repo, env=env,
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    exp_name = experiment[0].rsplit("/", 1)[1]
    assert exp_name in shown.stdout and '"acc": 0.7' in " ".join(shown.stdout.split())

    # DVC's own bookkeeping refs (queued runs, executors) are not experiments.
    git(repo, "update-ref", "refs/exps/celery/stash", experiment[0])
    git(repo, "update-ref", "-d", experiment[0])
    gone = run_process("find", "--all", "--json", cwd=repo)
    assert gone.code == 0 and gone.out.strip() in ("", "[]"), gone.out
