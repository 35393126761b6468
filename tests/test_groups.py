"""Runs are first-class in queries: `find --group-by run` (or any field, `run.group`)
aggregates the matching checkpoints per run or group: count, best, last, and mean ± std
over the runs' seeds, so "which configuration is robust across seeds" is one command."""

from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git
from tests.corpus import assert_user_error, changed, snapshot
from tests.test_catalog import card_text

# (group, seed) -> dev.f1 per step. Config "steady" is good on every seed; "lucky" has the
# single best checkpoint but one bad seed, so its mean is lower.
RUNS: dict[tuple[str, int], dict[int, Any]] = {
    ("steady", 0): {100: 0.80, 200: 0.84, 300: 0.83},
    ("steady", 1): {100: 0.79, 200: 0.85, 300: 0.86},
    ("steady", 2): {100: 0.81, 200: 0.82, 300: {"value": 0.84, "ci": [0.82, 0.86]}},
    ("lucky", 0): {100: 0.70, 200: 0.93, 300: 0.90},
    ("lucky", 1): {100: 0.60, 200: 0.65, 300: 0.66},
}


def point(value: Any) -> float:
    return float(value["value"] if isinstance(value, dict) else value)


def write_run(repo: Path, group: str, seed: int, values: dict[int, Any]) -> None:
    run = f"{group}-s{seed}"
    for step, f1 in values.items():
        metrics = {"dev": {"f1": f1, "loss": round(1 - point(f1), 4)}}
        text = card_text(
            f"clf-{run}-step{step:06d}",
            "clf",
            step,
            metrics,
            run={"name": run, "id": f"id-{run}", "group": group},
            seeds={"seed": seed},
            params={"lr": 0.001 if group == "steady" else 0.01},
        )
        path = repo / f"models/clf/{run}/step-{step}.pt.ckpt.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        git(repo, "add", str(path))


@pytest.fixture
def registry(repo: Path) -> Path:
    """Five runs of two configurations; each run's checkpoints committed together, and
    the runs in three commits (so "last" follows commit order, then step)."""
    for index, ((group, seed), values) in enumerate(RUNS.items()):
        write_run(repo, group, seed, values)
        if index in (1, 3, 4):
            git(repo, "commit", "-qm", f"runs up to {group}-s{seed}", "--no-verify")
    return repo


def grouped(cli, *options: str) -> dict[str, Any]:
    result = cli("find", *options, "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert isinstance(data, dict)
    return data


def test_group_by_run_reports_count_best_and_last_of_each_run(registry: Path, cli) -> None:
    data = grouped(cli, "--group-by", "run", "--by", "dev.f1")
    assert data["group_by"] == "run.name" and data["metric"] == "metrics.dev.f1"
    by_run = {g["key"]: g for g in data["groups"]}
    assert set(by_run) == {f"{g}-s{s}" for g, s in RUNS}
    for (group, seed), values in RUNS.items():
        found = by_run[f"{group}-s{seed}"]
        best_step = max(values, key=lambda s: point(values[s]))
        assert found["checkpoints"] == len(values)
        assert found["seeds"] == [seed]
        assert found["best"]["step"] == best_step
        assert found["best"]["point"] == pytest.approx(point(values[best_step]))
        assert found["best"]["name"] == f"clf-{group}-s{seed}-step{best_step:06d}"
        assert found["last"]["step"] == 300  # the newest step of the run
        assert found["last"]["value"] == values[300]  # as recorded: an estimate stays one
    # best run first: lucky-s0 holds the single best checkpoint
    assert [g["key"] for g in data["groups"]][:2] == ["lucky-s0", "steady-s1"]


def test_group_by_run_group_gives_mean_and_std_over_seeds(registry: Path, cli) -> None:
    """Each run contributes its best checkpoint: the steady configuration ranks first
    although the lucky one has the single best checkpoint."""
    data = grouped(cli, "--group-by", "run.group", "--by", "dev.f1")
    groups = {g["key"]: g for g in data["groups"]}
    assert [g["key"] for g in data["groups"]] == ["steady", "lucky"]
    for name in ("steady", "lucky"):
        bests = [max(point(v) for v in vs.values()) for (g, _), vs in RUNS.items() if g == name]
        assert groups[name]["n"] == len(bests)
        assert groups[name]["mean"] == pytest.approx(statistics.fmean(bests))
        assert groups[name]["std"] == pytest.approx(statistics.stdev(bests))
        assert groups[name]["seeds"] == [s for g, s in RUNS if g == name]
        assert groups[name]["checkpoints"] == sum(len(v) for (g, _), v in RUNS.items() if g == name)
    assert groups["lucky"]["best"]["name"] == "clf-lucky-s0-step000200"
    assert groups["lucky"]["best"]["point"] == pytest.approx(0.93)


def test_per_run_last_uses_each_runs_newest_checkpoint(registry: Path, cli) -> None:
    data = grouped(cli, "--group-by", "run.group", "--by", "dev.f1", "--per-run", "last")
    assert data["per_run"] == "last"
    groups = {g["key"]: g for g in data["groups"]}
    lasts = [point(vs[300]) for (g, _), vs in RUNS.items() if g == "steady"]
    assert groups["steady"]["mean"] == pytest.approx(statistics.fmean(lasts))
    assert groups["steady"]["std"] == pytest.approx(statistics.stdev(lasts))


def test_any_field_groups_and_lower_is_better_with_plus(registry: Path, cli) -> None:
    """`params.lr` groups like `run.group` here; `+dev.loss` ranks the lowest loss best."""
    data = grouped(cli, "--group-by", "params.lr", "--by", "+dev.loss")
    assert [g["key"] for g in data["groups"]] == [0.001, 0.01]
    assert data["higher_is_better"] is False
    lucky = data["groups"][1]
    assert lucky["best"]["name"] == "clf-lucky-s0-step000200"  # lowest loss
    assert lucky["best"]["point"] == pytest.approx(0.07)


def test_filters_and_scope_apply_before_grouping(registry: Path, cli) -> None:
    data = grouped(cli, "--group-by", "run.group", "--by", "dev.f1", "--where", "step <= 100")
    groups = {g["key"]: g for g in data["groups"]}
    assert groups["lucky"]["checkpoints"] == 2
    assert groups["lucky"]["mean"] == pytest.approx(statistics.fmean([0.70, 0.60]))
    one = grouped(cli, "--group-by", "run.group", "--by", "dev.f1", "--top", "1")
    assert [g["key"] for g in one["groups"]] == ["steady"]


def test_the_primary_metric_is_the_default(registry: Path, cli) -> None:
    (registry / "dvcckpt.yaml").write_text("version: 1\nproject: p\nprimary_metric: dev.f1\n")
    assert grouped(cli, "--group-by", "run.group") == grouped(
        cli, "--group-by", "run.group", "--by", "dev.f1"
    )


def test_table_and_csv_show_mean_std_and_intervals(registry: Path, cli) -> None:
    result = cli("find", "--group-by", "run.group", "--by", "dev.f1")
    assert result.code == 0, result.err
    header, steady, lucky = result.out.splitlines()
    assert header.split() == ["run.group", "seeds", "runs", "dev.f1", "mean", "±", "std",
                              "checkpoints", "best", "dev.f1", "best", "checkpoint", "last",
                              "dev.f1", "last", "checkpoint"]  # fmt: skip
    assert steady.startswith("steady") and "0, 1, 2" in steady
    assert f"{statistics.fmean([0.84, 0.86, 0.84]):.4g} ± " in steady
    assert "0.84 [0.82, 0.86]" in steady  # the last checkpoint's estimate, with its interval
    assert lucky.startswith("lucky")
    by_run = cli("find", "--group-by", "run", "--by", "dev.f1")
    assert by_run.out.splitlines()[0].split()[:3] == ["run", "seed", "checkpoints"]
    table = cli("find", "--group-by", "run.group", "--by", "dev.f1", "--csv")
    rows = list(csv.DictReader(io.StringIO(table.out)))
    assert [r["run.group"] for r in rows] == ["steady", "lucky"]
    assert float(rows[1]["std"]) == pytest.approx(statistics.stdev([0.93, 0.66]), abs=1e-4)


def test_a_group_field_no_card_has_is_an_error_with_the_closest(registry: Path, cli) -> None:
    before = snapshot(registry)
    result = cli("find", "--group-by", "run.gruop", "--by", "dev.f1")
    assert_user_error(result.code, result.err, names=("--group-by", "run.gruop"))
    assert result.code == 2
    hint = next(line for line in result.err.splitlines() if line.startswith("hint:"))
    assert "closest fields: run.group" in hint
    assert not changed(before, snapshot(registry))


def test_grouping_needs_a_metric(registry: Path, cli) -> None:
    result = cli("find", "--group-by", "run")
    assert_user_error(result.code, result.err, names=("--group-by", "metric"))
    unknown = cli("find", "--group-by", "run", "--by", "dev.f2")
    assert_user_error(unknown.code, unknown.err, names=("metrics.dev.f2",))


def test_cards_without_the_group_field_form_their_own_group(registry: Path, cli) -> None:
    """A checkpoint outside any group is not dropped, and a checkpoint without run
    fields is a run of its own."""
    path = registry / "models/clf/lone/step-1.pt.ckpt.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(card_text("clf-lone", "clf", 1, {"dev": {"f1": 0.5, "loss": 0.5}}))
    git(registry, "add", str(path))
    git(registry, "commit", "-qm", "a lone checkpoint", "--no-verify")
    data = grouped(cli, "--group-by", "run.group", "--by", "dev.f1")
    assert [g["key"] for g in data["groups"]] == ["steady", "lucky", None]
    assert data["groups"][2]["runs"][0]["run"] is None
    assert "(none)" in cli("find", "--group-by", "run.group", "--by", "dev.f1").out


def commit_run_card(repo: Path, folder: str, step: int, f1: float, run: dict[str, Any]) -> Path:
    text = card_text(f"clf-{folder}-step{step:06d}", "clf", step, {"dev": {"f1": f1}}, run=run)
    path = repo / f"models/clf/{folder}/step-{step}.pt.ckpt.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    git(repo, "add", str(path))
    git(repo, "commit", "-qm", f"{folder} step {step}", "--no-verify")
    return path


def test_runs_that_share_a_name_or_have_only_an_id_stay_apart(repo: Path, cli) -> None:
    commit_run_card(repo, "a", 1, 0.8, {"id": "r1"})
    commit_run_card(repo, "b", 1, 0.9, {"id": "r2"})
    commit_run_card(repo, "c", 1, 0.7, {"name": "same", "id": "r3"})
    commit_run_card(repo, "d", 1, 0.6, {"name": "same", "id": "r4"})
    groups = grouped(cli, "--group-by", "run", "--by", "dev.f1")["groups"]
    assert sorted((g["key"], g["checkpoints"]) for g in groups) == [
        ("r1", 1), ("r2", 1), ("same", 1), ("same", 1)
    ]  # fmt: skip


def test_an_evaluation_appended_later_does_not_make_a_checkpoint_its_runs_last(
    repo: Path, cli
) -> None:
    first = commit_run_card(repo, "r", 1, 0.80, {"name": "r", "id": "r1"})
    commit_run_card(repo, "r", 2, 0.85, {"name": "r", "id": "r1"})
    before = grouped(cli, "--group-by", "run", "--by", "dev.f1", "--per-run", "last")
    evaluation = "evaluations:\n- split: test\n  metrics: {f1: 0.5}\n  at: '2026-02-01T00:00:00Z'\n"
    first.write_text(first.read_text() + evaluation)
    git(repo, "commit", "-qam", "evaluate step 1", "--no-verify")
    after = grouped(cli, "--group-by", "run", "--by", "dev.f1", "--per-run", "last")
    assert before["groups"][0]["runs"][0]["last"]["step"] == 2
    assert after["groups"][0]["runs"][0]["last"]["step"] == 2
    assert after["groups"][0]["mean"] == before["groups"][0]["mean"] == 0.85
