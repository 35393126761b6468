"""Metrics recorded with a confidence interval read `0.86 [0.84, 0.88]` in every table:
`find` columns, `log` values, `show` and `diff` (golden tables in tests/data).

Regenerate deliberately with DVCCKPT_UPDATE_GOLDEN=1, then review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import git
from tests.test_catalog import card_text

DATA = Path(__file__).parent / "data"
ESTIMATE = {"value": 0.86, "ci": [0.84, 0.88], "method": "bootstrap"}
# step -> (dev.f1, test.f1): estimates and plain numbers side by side.
CARDS = {
    100: (0.71, 0.7),
    200: (ESTIMATE, {"value": 0.8512, "ci": [0.8301, 0.8702]}),
    300: ({"value": 0.9, "ci": [0.85, 0.95], "method": "bootstrap"}, 0.88),
}


@pytest.fixture
def registry(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three checkpoints of one run, one commit each, at fixed dates."""
    (repo / "dvcckpt.yaml").write_text("version: 1\nproject: p\nprimary_metric: dev.f1\n")
    for index, (step, (dev, test)) in enumerate(CARDS.items()):
        when = f"2026-01-0{index + 5}T10:00:00+00:00"
        monkeypatch.setenv("GIT_AUTHOR_DATE", when)
        monkeypatch.setenv("GIT_COMMITTER_DATE", when)
        text = card_text(f"clf-r1-step{step:06d}", "clf", step,
                         {"dev": {"f1": dev}, "test": {"f1": test, "acc": 0.9}},
                         run={"name": "r1"}, created_at=when.replace("+00:00", "Z"))  # fmt: skip
        path = repo / f"models/clf/step-{step}.pt.ckpt.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        git(repo, "add", str(path))
        git(repo, "commit", "-qm", f"step {step}", "--no-verify")
    return repo


def masked(text: str, repo: Path) -> str:
    """Commit ids (different in every run: the template commit is dated) -> <sha001>..."""
    shas = git(repo, "log", "--reverse", "--format=%H").split()
    for number, sha in enumerate(shas):  # same width, so the columns stay aligned
        text = text.replace(sha[:8], f"<sha{number:03d}>")
    return text


def golden(name: str, text: str) -> None:
    path = DATA / name
    if os.environ.get("DVCCKPT_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_find_table_golden(registry: Path, cli) -> None:
    result = cli("find", "--sort", "step", "--by", "test.f1")
    assert result.code == 0, result.err
    assert "0.86 [0.84, 0.88]" in result.out
    golden("find_ci.golden.txt", masked(result.out, registry))


def test_log_table_golden(registry: Path, cli) -> None:
    result = cli("log", "clf", "--metric", "dev.f1", "--metric", "test.f1")
    assert result.code == 0, result.err
    assert "0.86 [0.84, 0.88]" in result.out
    golden("log_ci.golden.txt", masked(result.out, registry))


def test_show_golden(registry: Path, cli) -> None:
    result = cli("show", "models/clf/step-200.pt.ckpt.yaml")
    assert result.code == 0, result.err
    assert "  f1     0.86 [0.84, 0.88]" in result.out
    golden("show_ci.golden.txt", result.out)


def test_diff_table_golden(registry: Path, cli) -> None:
    result = cli("diff", "clf-r1-step000100", "clf-r1-step000200", "--field", "metrics")
    assert result.code == 0, result.err
    golden("diff_ci.golden.txt", masked(result.out, registry))
