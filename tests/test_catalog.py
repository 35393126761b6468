"""The catalog against real Git histories: branches, merges, a tag, a rebase; log, find, diff."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dvcckpt.adapters import yamldoc
from dvcckpt.catalog import Catalog
from tests.conftest import git, run_process


def card_text(name: str, model: str, step: int, metrics: dict[str, Any], **extra: Any) -> str:
    checkpoint = {
        "path": f"models/{model}/step-{step}.pt",
        "format": "file",
        "kind": "full",
        "phase": extra.pop("phase", "train"),
        "step": step,
        "size": 10,
        "sha256": "a" * 64,
        "dvc": {"file": f"models/{model}/step-{step}.pt.dvc", "md5": "b" * 32, "size": 10},
        "created_at": extra.pop("created_at", "2026-01-05T10:00:00Z"),
    }
    card = {
        "schema": {"id": "dvcckpt/checkpoint", "version": "1.1"},
        "name": name,
        "model": model,
        "checkpoint": checkpoint,
        "metrics": metrics,
        **extra,
    }
    return yamldoc.dump(card)


def commit_card(
    repo: Path,
    model: str,
    step: int,
    metrics: dict[str, Any],
    message: str | None = None,
    **extra: Any,
) -> str:
    name = f"{model}-train-full-step{step:06d}"
    path = repo / f"models/{model}/step-{step}.pt.ckpt.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(card_text(name, model, step, metrics, **extra))
    git(repo, "add", str(path))
    git(repo, "commit", "-qm", message or f"{name}", "--no-verify")
    return git(repo, "rev-parse", "HEAD").strip()


def rows(catalog: Catalog) -> set[tuple[str, str, str, str]]:
    return {(v.sha, v.path, v.blob, v.status) for v in catalog.versions()}


def scopes(catalog: Catalog) -> set[tuple[str, ...]]:
    """The maintained scopes: HEAD's commits and the latest version of each path."""
    head = catalog.sql("SELECT 'head', c.sha FROM head_commits h JOIN commits c ON c.id = h.id")
    latest = catalog.sql(
        "SELECT l.ref, c.sha, p.path, l.status FROM latest l JOIN commits c ON c.id = l.commit_id"
        " JOIN paths p ON p.id = l.path_id"
    )
    return {tuple(row) for row in [*head, *latest]}


def assert_update_equals_rebuild(repo: Path) -> None:
    incremental = Catalog(repo)  # updates in place
    fresh = Catalog(repo, refresh=False)
    fresh.path = fresh.path.with_name("fresh.sqlite")
    fresh.rebuild()
    assert rows(incremental) == rows(fresh)
    assert scopes(incremental) == scopes(fresh) and scopes(fresh)
    order = [(v.sha, v.path) for v in incremental.versions()]
    assert order == [(v.sha, v.path) for v in fresh.versions()]  # same graph order
    incremental.close()
    fresh.close()
    fresh.path.unlink()


def test_update_equals_rebuild_through_branches_merges_tags_and_a_rebase(repo: Path) -> None:
    commit_card(repo, "ner", 100, {"dev": {"f1": 0.70}})
    assert_update_equals_rebuild(repo)
    git(repo, "checkout", "-qb", "feature")
    commit_card(repo, "ner", 200, {"dev": {"f1": 0.75}})
    git(repo, "tag", "-a", "v1", "-m", "release")
    git(repo, "checkout", "-q", "main")
    commit_card(repo, "ner", 300, {"dev": {"f1": 0.72}})
    assert_update_equals_rebuild(repo)
    git(repo, "merge", "-q", "--no-ff", "feature", "-m", "merge feature")
    assert_update_equals_rebuild(repo)

    git(repo, "checkout", "-qb", "experiment", "HEAD~1")
    commit_card(repo, "ner", 400, {"dev": {"f1": 0.8}})
    doomed = commit_card(repo, "ner", 500, {"dev": {"f1": 0.81}})
    catalog = Catalog(repo)
    assert doomed in {v.sha for v in catalog.versions()}
    git(repo, "rebase", "-q", "main")  # rewrites 400 and 500
    assert_update_equals_rebuild(repo)
    assert doomed not in {v.sha for v in Catalog(repo).versions()}
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-qD", "experiment")
    assert_update_equals_rebuild(repo)
    assert not [v for v in Catalog(repo).versions() if v.name and "step000500" in v.name]
    # HEAD moves back and forth (reset, an edit of a card), branches switch: the
    # maintained HEAD and latest scopes follow as a rebuild computes them.
    commit_card(repo, "ner", 100, {"dev": {"f1": 0.99}}, message="re-evaluated")
    assert_update_equals_rebuild(repo)
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    assert_update_equals_rebuild(repo)
    first = Catalog(repo).find(model="ner", sort="step")[0]
    assert first.card is not None and first.card["metrics"]["dev"]["f1"] == 0.70
    git(repo, "rm", "-q", "models/ner/step-300.pt.ckpt.yaml")  # a deleted card leaves find
    git(repo, "commit", "-qm", "retire 300", "--no-verify")
    assert_update_equals_rebuild(repo)
    assert 300 not in {v.step for v in Catalog(repo).find()}
    assert 300 in {v.step for v in Catalog(repo).find(all_versions=True)}
    git(repo, "checkout", "-q", "v1")
    assert_update_equals_rebuild(repo)
    assert {v.step for v in Catalog(repo).find()} == {100, 200}


def test_log_order_follows_the_commit_graph_not_timestamps(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for step, date in (
        (1, "2030-01-01T00:00:00"),
        (2, "2001-01-01T00:00:00"),
        (3, "2015-06-01T00:00:00"),
    ):
        monkeypatch.setenv("GIT_AUTHOR_DATE", date)
        monkeypatch.setenv("GIT_COMMITTER_DATE", date)
        commit_card(repo, "clf", step, {"dev": {"acc": step / 10}})
    monkeypatch.delenv("GIT_AUTHOR_DATE")
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    history = Catalog(repo).log("clf", metrics=["dev.acc"])
    assert [r.step for r in history] == [3, 2, 1]  # newest first by graph, despite the dates
    assert [r.deltas["dev.acc"] for r in history][:2] == [pytest.approx(0.1), pytest.approx(0.1)]


def test_log_command_formats_and_ranges(repo: Path, cli) -> None:
    first = commit_card(repo, "clf", 1, {"dev": {"acc": 0.5}})
    commit_card(repo, "clf", 2, {"dev": {"acc": 0.6}})
    commit_card(repo, "other", 1, {"dev": {"acc": 0.9}})
    result = cli("log", "clf", "--metric", "dev.acc", "--json")
    data = json.loads(result.out)
    assert [(r["step"], r["values"]["dev.acc"]) for r in data] == [(2, 0.6), (1, 0.5)]
    ranged = json.loads(
        cli("log", "clf", "--metric", "dev.acc", "--rev", f"{first}..HEAD", "--json").out
    )
    assert [r["step"] for r in ranged] == [2]
    csv_out = cli("log", "--metric", "dev.acc", "--csv").out.splitlines()
    assert csv_out[0] == "commit,date,author,checkpoint,run,step,dev.acc,Δ" and len(csv_out) == 4
    md = cli("log", "clf", "--metric", "dev.acc", "--md").out
    assert md.splitlines()[1].startswith("|---") and "+0.1" in md
    assert cli("log", "clf", "--metric", "dev.acc", "-n", "1", "--json").out.count('"commit"') == 1
    by_name = json.loads(
        cli("log", "clf-train-full-step000001", "--metric", "dev.acc", "--json").out
    )
    assert len(by_name) == 1
    unknown = cli("log", "nope")
    assert unknown.code == 4 and "known models: clf, other" in unknown.err


def test_log_plots_in_the_terminal_and_to_files(repo: Path, cli, tmp_path: Path) -> None:
    for step, acc in ((10, 0.5), (20, 0.7), (30, 0.65)):
        commit_card(repo, "clf", step, {"dev": {"acc": acc}}, run={"name": "run-a"})
    chart = cli("log", "clf", "--metric", "dev.acc", "--plot")
    assert chart.code == 0 and "dev.acc by step" in chart.out and "● run-a" in chart.out
    page = tmp_path / "history.html"
    assert cli("log", "clf", "--metric", "dev.acc", "--plot", str(page)).code == 0
    html = page.read_text()
    assert "<svg" in html and html.count("<circle") == 3 and "run-a" in html
    png = tmp_path / "history.png"
    assert cli("log", "clf", "--metric", "dev.acc", "--plot", str(png)).code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def population(repo: Path) -> Path:
    """Ten checkpoints with known values for hand-checked queries."""
    table = [  # step, test f1, phase, tags, latency
        (1, 0.80, "train", ["baseline"], 90),
        (2, 0.86, "finetune", [], 130),
        (3, 0.90, "finetune", ["baseline"], 110),
        (4, 0.70, "train", [], 80),
        (5, 0.88, "finetune", ["sweep"], 100),
        (6, 0.84, "train", ["baseline", "sweep"], 70),
        (7, 0.95, "distill", [], 60),
        (8, 0.60, "train", [], 50),
        (9, 0.87, "finetune", ["sweep"], 120),
        (10, 0.85, "train", [], 75),
    ]
    for step, f1, phase, tags, latency in table:
        commit_card(
            repo,
            "m",
            step,
            {"test": {"macro_f1": f1}},
            phase=phase,
            tags=tags,
            resources={"latency_ms_p95": latency},
            created_at=f"2026-01-{step:02d}T12:00:00Z",
        )
    return repo


def steps(cli, *args: str) -> list[int]:
    result = cli("find", "--json", *args)
    assert result.code == 0, result.err
    return [item["card"]["checkpoint"]["step"] for item in json.loads(result.out)]


def test_find_with_boolean_logic_against_hand_computed_answers(population: Path, cli) -> None:
    where = 'metrics.test.macro_f1 >= 0.85 and (phase == "finetune" or "baseline" in tags)'
    assert sorted(steps(cli, "--where", where)) == [2, 3, 5, 9]
    assert sorted(steps(cli, "--where", 'not phase in ["train", "finetune"]')) == [7]
    assert sorted(steps(cli, "--where", '"sweep" not in tags and step > 6')) == [7, 8, 10]
    assert sorted(steps(cli, "--where", "resources.latency_ms_p95 <= 75 or step == 1")) == [
        1,
        6,
        7,
        8,
        10,
    ]
    assert steps(cli, "--where", "metrics.test.macro_f1 == null") == []
    assert sorted(steps(cli, "--tag", "baseline", "--phase", "train")) == [1, 6]
    assert sorted(steps(cli, "--since", "2026-01-08", "--until", "2026-01-09")) == [8, 9]


def test_find_top_count_percentile_and_sort(population: Path, cli) -> None:
    assert steps(cli, "--top", "3", "--by", "metrics.test.macro_f1") == [7, 3, 5]
    assert steps(cli, "--top", "20%", "--by", "metrics.test.macro_f1") == [7, 3]
    assert steps(cli, "--top", "2", "--by", "+resources.latency_ms_p95") == [8, 7]
    assert steps(cli, "--phase", "finetune", "--sort", "-metrics.test.macro_f1") == [3, 5, 9, 2]
    assert steps(cli, "--sort", "phase,-step")[:3] == [7, 9, 5]
    table = cli("find", "--top", "1", "--by", "metrics.test.macro_f1")
    assert "m-train-full-step000007" in table.out and "0.95" in table.out


def test_find_latest_version_by_default_and_all_versions(repo: Path, cli) -> None:
    commit_card(repo, "m", 1, {"test": {"f1": 0.5}})
    path = repo / "models/m/step-1.pt.ckpt.yaml"
    path.write_text(path.read_text() + "tags:\n  - reviewed\n")
    git(repo, "commit", "-qam", "tag it", "--no-verify")
    latest = json.loads(cli("find", "--json").out)
    assert len(latest) == 1 and latest[0]["card"]["tags"] == ["reviewed"]
    assert len(json.loads(cli("find", "--json", "--all-versions").out)) == 2


def test_find_syntax_error_points_at_the_column(population: Path) -> None:
    result = run_process("find", "--where", 'phase == "train" and and step > 1', cwd=population)
    assert result.code == 2
    lines = result.err.splitlines()
    assert (
        lines[0]
        == "error: --where: syntax error at column 22: expected a field, a value or `(`, found 'and'"
    )
    assert lines[2].index("^") - 2 == 21 and "Traceback" not in result.err


def test_diff_shows_side_by_side_values_with_deltas(repo: Path, cli) -> None:
    commit_card(
        repo, "m", 1, {"dev": {"f1": 0.80}}, params={"lr": 0.001, "opt": "adam"}, seeds={"seed": 1}
    )
    commit_card(
        repo, "m", 2, {"dev": {"f1": 0.85}}, params={"lr": 0.0005, "opt": "adam"}, seeds={"seed": 2}
    )
    result = json.loads(
        cli("diff", "m-train-full-step000001", "m-train-full-step000002", "--json").out
    )
    changes = {(c["section"], c["field"]): c for c in result[0]["changes"]}
    assert changes[("metrics", "dev.f1")]["delta"] == pytest.approx(0.05)
    assert changes[("params", "lr")]["a"] == 0.001 and ("params", "opt") not in changes
    assert changes[("seeds", "seed")]["b"] == 2
    md = cli("diff", "m-train-full-step000001", "m-train-full-step000002", "--md").out
    assert "| metrics | dev.f1 | 0.8 | 0.85 | +0.05 |" in md
    revisions = json.loads(cli("diff", "HEAD~1", "HEAD", "--json").out)
    assert revisions[0]["a"].startswith("(new)") and revisions[0]["changes"][0]["b"] == 0.85


def test_show_and_load_card_at_a_revision(repo: Path, cli) -> None:
    commit_card(repo, "m", 1, {"dev": {"f1": 0.8}})
    path = repo / "models/m/step-1.pt.ckpt.yaml"
    path.write_text(path.read_text() + "notes: second look\n")
    git(repo, "commit", "-qam", "notes", "--no-verify")
    old = json.loads(cli("show", "m-train-full-step000001@HEAD~1", "--json").out)
    new = json.loads(cli("show", "m-train-full-step000001@HEAD", "--json").out)
    assert "notes" not in old and new["notes"] == "second look"


def test_deleted_or_corrupted_index_is_rebuilt_transparently(repo: Path, cli) -> None:
    commit_card(repo, "m", 1, {"dev": {"f1": 0.8}})
    catalog = Catalog(repo)
    expected = rows(catalog)
    catalog.close()
    catalog.path.write_bytes(b"this is not a database" * 100)
    assert rows(Catalog(repo)) == expected
    catalog.path.unlink()
    assert json.loads(cli("find", "--json").out)[0]["card"]["name"] == "m-train-full-step000001"
    assert catalog.path.is_file()
    assert str(catalog.path).startswith(str(repo / ".git"))  # never in the work tree


def test_concurrent_readers_and_writers_do_not_corrupt_the_catalog(repo: Path) -> None:
    for step in range(1, 6):
        commit_card(repo, "m", step, {"dev": {"f1": step / 10}})
    dvcckpt = [str(Path(sys.executable).parent / "dvcckpt")]
    processes = []
    for index in range(8):
        args = ["catalog", "rebuild"] if index % 3 == 0 else ["find", "--json"]
        processes.append(
            subprocess.Popen(
                dvcckpt + args, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        if out.startswith("["):
            assert len(json.loads(out)) == 5
    assert len(rows(Catalog(repo))) == 5
