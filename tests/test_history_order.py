"""History answers that never mislead: a total, stable `log` order with per-run Δ, and a
`diff` that reports every difference (evaluations, decisions, tags, notes, intervals)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dvcckpt.adapters import yamldoc
from dvcckpt.catalog import Catalog
from tests.conftest import git
from tests.test_catalog import card_text

# (file stem, run, step, dev.acc): file names sort differently from steps on purpose.
ONE_COMMIT = [
    ("zz-a-10", "run-a", 10, 0.50),
    ("aa-a-20", "run-a", 20, 0.60),
    ("mm-a-30", "run-a", 30, 0.75),
    ("00-a-final", "run-a", None, 0.80),
    ("bb-b-10", "run-b", 10, 0.30),
    ("yy-b-20", "run-b", 20, 0.45),
]


def write_card(repo: Path, stem: str, run: str, step: int | None, acc: float) -> Path:
    text = card_text(f"clf-{stem}", "clf", step or 0, {"dev": {"acc": acc}}, run={"name": run})
    if step is None:  # a final model: no step at all
        card = yamldoc.load_fast(text, stem, 1 << 20)
        del card["checkpoint"]["step"]
        text = yamldoc.dump(card)
    path = repo / f"models/clf/{stem}.pt.ckpt.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    git(repo, "add", str(path))
    return path


def log_rows(cli) -> list[dict[str, Any]]:
    result = cli("log", "clf", "--metric", "dev.acc", "--json")
    assert result.code == 0, result.err
    return list(json.loads(result.out))


def test_checkpoints_committed_together_log_in_one_order_with_deltas_per_run(
    repo: Path, cli
) -> None:
    for row in ONE_COMMIT:
        write_card(repo, *row)
    git(repo, "commit", "-qm", "six checkpoints of two runs", "--no-verify")
    assert len(log_rows(cli)) == 6  # indexed now: the next commit is added incrementally
    write_card(repo, "cc-b-5", "run-b", 5, 0.50)  # a later commit outranks a higher step
    git(repo, "commit", "-qm", "one more", "--no-verify")

    rows = log_rows(cli)
    # Newest first: the later commit, then the shared commit by step (none last), then path.
    assert [r["path"].removeprefix("models/clf/") for r in rows] == [
        "cc-b-5.pt.ckpt.yaml",
        "00-a-final.pt.ckpt.yaml",
        "mm-a-30.pt.ckpt.yaml",
        "yy-b-20.pt.ckpt.yaml",
        "aa-a-20.pt.ckpt.yaml",
        "zz-a-10.pt.ckpt.yaml",
        "bb-b-10.pt.ckpt.yaml",
    ]
    deltas = {
        r["path"].removeprefix("models/clf/").removesuffix(".pt.ckpt.yaml"): r["deltas"]["dev.acc"]
        for r in rows
    }
    assert deltas == {
        "cc-b-5": pytest.approx(0.50 - 0.45),  # run-b's previous checkpoint, not run-a's
        "00-a-final": pytest.approx(0.80 - 0.75),
        "mm-a-30": pytest.approx(0.75 - 0.60),
        "yy-b-20": pytest.approx(0.45 - 0.30),
        "aa-a-20": pytest.approx(0.60 - 0.50),
        "zz-a-10": None,  # first checkpoint of its run
        "bb-b-10": None,
    }
    text = cli("log", "clf", "--metric", "dev.acc").out
    for _ in range(3):  # the same answer on every invocation
        assert log_rows(cli) == rows
        assert cli("log", "clf", "--metric", "dev.acc").out == text
    catalog = Catalog(repo)
    catalog.close()
    catalog.path.unlink()  # a catalog rebuilt from scratch answers the same
    assert log_rows(cli) == rows


def commit_reviewed_card(repo: Path, **sections: Any) -> None:
    path = repo / "models/m/step-1.pt.ckpt.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(card_text("m-1", "m", 1, sections.pop("metrics"), **sections))
    git(repo, "add", str(path))
    git(repo, "commit", "-qm", "review", "--no-verify")


def test_diff_reports_evaluations_decisions_tags_notes_and_intervals(repo: Path, cli) -> None:
    first = {"split": "test", "metrics": {"f1": 0.8}, "by": {"name": "Ann"}}
    later = {"split": "test", "metrics": {"f1": 0.82}, "by": {"name": "Bob"}}
    decision = {"verdict": "promote", "stage": "staging", "rationale": "beats baseline"}
    estimate = {"value": 0.86, "ci": [0.84, 0.88], "method": "bootstrap"}
    commit_reviewed_card(
        repo, metrics={"test": {"f1": estimate}}, evaluations=[first], tags=["a"], notes="old"
    )
    commit_reviewed_card(
        repo,
        metrics={"test": {"f1": {**estimate, "ci": [0.80, 0.90]}}},  # only the interval moved
        evaluations=[first, later],
        decisions=[decision],
        tags=["a", "b"],
        notes="new",
    )
    for a, b in (("m-1@HEAD~1", "m-1@HEAD"), ("HEAD~1", "HEAD")):
        text = cli("diff", a, b)
        assert text.code == 0 and "identical" not in text.out, text.out
        result = json.loads(cli("diff", a, b, "--json").out)
        changes = {(c["section"], c["field"]): c for c in result[0]["changes"]}
        assert set(changes) == {
            ("metrics", "test.f1"),
            ("evaluations", "[1]"),
            ("decisions", "[0]"),
            ("tags", ""),
            ("notes", ""),
        }
        assert changes[("evaluations", "[1]")]["a"] is None
        assert changes[("evaluations", "[1]")]["b"] == later
        assert changes[("decisions", "[0]")]["b"] == decision
        assert changes[("tags", "")]["b"] == ["a", "b"]
        assert changes[("metrics", "test.f1")]["delta"] == pytest.approx(0.0)
        assert "0.86 [0.84, 0.88]" in text.out and "0.86 [0.8, 0.9]" in text.out
        assert "split=test, metrics.f1=0.82, by.name=Bob" in text.out


def test_diff_of_changed_records_names_the_field_inside_the_record(repo: Path, cli) -> None:
    entry = {"split": "test", "metrics": {"f1": 0.8}}
    commit_reviewed_card(repo, metrics={"dev": {"f1": 0.8}}, evaluations=[entry])
    edited = {"split": "test", "metrics": {"f1": 0.9}}  # rewritten past the hook
    commit_reviewed_card(repo, metrics={"dev": {"f1": 0.8}}, evaluations=[edited])
    result = json.loads(cli("diff", "m-1@HEAD~1", "m-1@HEAD", "--json").out)
    assert [(c["section"], c["field"], c["delta"]) for c in result[0]["changes"]] == [
        ("evaluations", "[0].metrics.f1", pytest.approx(0.1))
    ]
