"""History views: `log` shows each row's run and follows runs (`--by run`, one chart line
per run), `log --evaluations` lists evaluation history, `show` renders evaluations as a
readable history, and `diff --field` limits a comparison to fields in the field language."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git
from tests.corpus import assert_user_error, changed, snapshot
from tests.test_catalog import card_text

# Two runs trained side by side, committed step by step: (run, step, dev.acc).
STEPS = [("run-a", 1, 0.50), ("run-b", 1, 0.30), ("run-a", 2, 0.60), ("run-b", 2, 0.45),
         ("run-a", 3, 0.70)]  # fmt: skip
EVALUATIONS = [
    {"split": "test", "at": "2026-02-01T10:00:00Z", "metrics": {"f1": 0.81},
     "by": {"name": "Ada Trainer", "email": "ada@example.com"}, "protocol": "held-out v1"},
    {"split": "test", "at": "2026-03-01T10:00:00Z",
     "metrics": {"f1": {"value": 0.86, "ci": [0.84, 0.88], "method": "bootstrap"}},
     "by": {"name": "Grace Hopper", "email": "grace@example.com"}, "step": 3,
     "protocol": "held-out v2", "notes": "relabelled test set"},
    {"split": "shifted", "at": "2026-03-02T10:00:00Z", "metrics": {"f1": 0.74}},
]  # fmt: skip


def write(repo: Path, run: str, step: int, acc: float, **extra: Any) -> Path:
    name = f"clf-{run}-step{step:06d}"
    text = card_text(name, "clf", step, {"dev": {"acc": acc}},
                     run={"name": run, "id": f"id-{run}"}, **extra)  # fmt: skip
    path = repo / f"models/clf/{run}/step-{step}.pt.ckpt.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    git(repo, "add", str(path))
    return path


@pytest.fixture
def runs(repo: Path) -> Path:
    for run, step, acc in STEPS:
        write(repo, run, step, acc)
        git(repo, "commit", "-qm", f"{run} step {step}", "--no-verify")
    return repo


def json_rows(cli, *options: str) -> list[dict[str, Any]]:
    result = cli("log", "clf", *options, "--json")
    assert result.code == 0, result.err
    return list(json.loads(result.out))


def test_the_log_table_names_each_rows_run(runs: Path, cli) -> None:
    result = cli("log", "clf", "--metric", "dev.acc")
    assert result.code == 0, result.err
    assert re.split(r"\s{2,}", result.out.splitlines()[0]) == [
        "commit", "date", "author", "checkpoint", "run", "step", "dev.acc", "Δ"]  # fmt: skip
    lines = cli("log", "clf", "--metric", "dev.acc", "--csv").out.splitlines()
    assert lines[0] == "commit,date,author,checkpoint,run,step,dev.acc,Δ"
    assert [line.split(",")[4] for line in lines[1:]] == [run for run, _, _ in reversed(STEPS)]


def test_log_by_run_lists_each_runs_checkpoints_together(runs: Path, cli) -> None:
    rows = json_rows(cli, "--metric", "dev.acc", "--by", "run")
    # runs in the order of their newest row (run-a committed last), each newest first
    assert [(r["run"], r["step"]) for r in rows] == [
        ("run-a", 3), ("run-a", 2), ("run-a", 1), ("run-b", 2), ("run-b", 1)]  # fmt: skip
    assert [r["deltas"]["dev.acc"] for r in rows] == pytest.approx([0.1, 0.1, None, 0.15, None])


def test_log_by_run_plots_one_line_per_run(runs: Path, cli, tmp_path: Path) -> None:
    chart = tmp_path / "runs.svg"
    result = cli("log", "clf", "--metric", "dev.acc", "--by", "run", "--plot", str(chart))
    assert result.code == 0, result.err
    svg = chart.read_text()
    assert svg.count("<polyline") == 2
    legend = re.findall(r'<text x="\d+(?:\.\d+)?" y="[\d.]+">([^<]+)</text>', svg)
    assert {"run-a", "run-b"} <= set(legend)
    points = {
        run: sorted(re.findall(r"clf-" + run + r"-step0+(\d+)", svg)) for run in ("run-a", "run-b")
    }
    assert points == {"run-a": ["1", "2", "3"], "run-b": ["1", "2"]}
    terminal = cli("log", "clf", "--metric", "dev.acc", "--by", "run", "--plot")
    assert terminal.code == 0, terminal.err
    legend_line = terminal.out.rstrip().splitlines()[-1]
    assert "● run-a" in legend_line and "▲ run-b" in legend_line


def test_log_by_run_id_follows_the_run_id(runs: Path, cli, tmp_path: Path) -> None:
    chart = tmp_path / "ids.svg"
    result = cli("log", "clf", "--metric", "dev.acc", "--by", "run.id", "--plot", str(chart))
    assert result.code == 0, result.err
    assert ">id-run-a</text>" in chart.read_text() and ">id-run-b</text>" in chart.read_text()


@pytest.fixture
def evaluated(runs: Path) -> Path:
    """run-a's last checkpoint, evaluated three times after it was registered."""
    path = write(runs, "run-a", 3, 0.70, evaluations=EVALUATIONS[:1])
    git(runs, "commit", "-qm", "first evaluation", "--no-verify")
    write(runs, "run-a", 3, 0.70, evaluations=EVALUATIONS)
    git(runs, "commit", "-qm", "two more evaluations", "--no-verify")
    assert path.exists()
    return runs


def test_log_evaluations_lists_evaluation_history(evaluated: Path, cli) -> None:
    rows = json_rows(cli, "--evaluations", "--metric", "test.f1")
    test_rows = [r for r in rows if r["split"] == "test"]
    assert [r["evaluated_at"] for r in test_rows] == [
        "2026-03-01T10:00:00Z",
        "2026-02-01T10:00:00Z",
    ]
    assert [r["values"]["test.f1"] for r in test_rows] == [0.86, 0.81]
    table = cli("log", "clf", "--evaluations", "--metric", "test.f1")
    assert table.code == 0, table.err
    header, *lines = table.out.splitlines()
    assert header.split()[:3] == ["evaluated", "split", "by"]
    newest = next(line for line in lines if line.startswith("2026-03-01"))
    assert "0.86 [0.84, 0.88]" in newest and "test" in newest


def test_log_evaluations_lists_every_split_without_a_metric(evaluated: Path, cli) -> None:
    # The project's primary metric is a dev metric: it must not filter evaluations away.
    (evaluated / "dvcckpt.yaml").write_text("version: 1\nproject: p\nprimary_metric: dev.acc\n")
    rows = json_rows(cli, "--evaluations")
    assert sorted(r["split"] for r in rows) == ["shifted", "test", "test"]


def test_log_evaluations_plots_an_evaluation_metric(evaluated: Path, cli, tmp_path: Path) -> None:
    chart = tmp_path / "evaluations.svg"
    result = cli("log", "clf", "--evaluations", "--metric", "test.f1", "--plot", str(chart))
    assert result.code == 0, result.err
    svg = chart.read_text()
    assert "test.f1" in svg and svg.count("<circle") == 2  # the two test evaluations


def test_show_renders_evaluations_as_history(evaluated: Path, cli) -> None:
    result = cli("show", "models/clf/run-a/step-3.pt.ckpt.yaml")
    assert result.code == 0, result.err
    text = result.out
    section = text[text.index("evaluations") :].splitlines()
    assert section[0] == "evaluations (3, oldest first)"
    assert section[1].split() == ["2026-02-01T10:00:00Z", "test", "by", "Ada", "Trainer",
                                  "<ada@example.com>"]  # fmt: skip
    second = section[section.index(next(s for s in section if s.startswith("  2026-03-01"))) :]
    assert second[0].split()[-2:] == ["step", "3"]
    assert second[1].split() == ["protocol", "held-out", "v2"]
    assert second[2].split() == ["f1", "0.86", "[0.84,", "0.88]"]
    assert second[3].split() == ["notes", "relabelled", "test", "set"]
    assert second[4].split() == ["intervals:", "bootstrap"]
    assert "metrics.f1=" not in text and "split=" not in text  # no raw inline records


@pytest.fixture
def pair(repo: Path) -> Path:
    write(repo, "run-a", 1, 0.50, params={"lr": 0.1, "batch": 32}, notes="first")
    write(repo, "run-a", 2, 0.60, params={"lr": 0.1, "batch": 64}, notes="first")
    git(repo, "commit", "-qm", "two checkpoints", "--no-verify")
    return repo


def diff(cli, *fields: str) -> list[dict[str, Any]]:
    options = [o for f in fields for o in ("--field", f)]
    result = cli("diff", "clf-run-a-step000001", "clf-run-a-step000002", *options, "--json")
    assert result.code == 0, result.err
    (comparison,) = json.loads(result.out)
    return list(comparison["changes"])


def test_diff_field_limits_the_comparison(pair: Path, cli) -> None:
    everything = {(c["section"], c["field"]) for c in diff(cli)}
    assert {("params", "batch"), ("metrics", "dev.acc"), ("checkpoint", "step")} <= everything
    only = diff(cli, "dev.acc")
    assert [(c["section"], c["field"], c["delta"]) for c in only] == [
        ("metrics", "dev.acc", pytest.approx(0.1))]  # fmt: skip
    assert [(c["section"], c["field"]) for c in diff(cli, "params", "step")] == [
        ("params", "batch"), ("checkpoint", "step")]  # fmt: skip
    assert diff(cli, "notes") == []  # both cards have it, equal: nothing differs
    same = cli("diff", "clf-run-a-step000001", "clf-run-a-step000002", "--field", "notes")
    assert "identical" in same.out
    shown = cli("diff", "clf-run-a-step000001", "clf-run-a-step000002",
                "--field", "params.lr", "--all-fields")  # fmt: skip
    assert "lr" in shown.out and "batch" not in shown.out


def test_diff_field_neither_card_has_is_an_error(pair: Path, cli) -> None:
    before = snapshot(pair)
    result = cli("diff", "clf-run-a-step000001", "clf-run-a-step000002", "--field", "dev.acx")
    assert result.code == 2
    assert_user_error(result.code, result.err, names=("--field", "metrics.dev.acx"))
    hint = next(line for line in result.err.splitlines() if line.startswith("hint:"))
    assert "closest fields: metrics.dev.acc" in hint
    assert not changed(before, snapshot(pair))
