"""The README's first command: `dvcckpt quickstart DIR`, end to end."""

from __future__ import annotations

from pathlib import Path

from dvcckpt.cards import card
from tests.conftest import git, run_process


def test_quickstart_trains_registers_commits_and_pushes(tmp_path: Path) -> None:
    result = run_process("quickstart", "demo", "--epochs", "3", cwd=tmp_path)
    assert result.code == 0, result.err
    root = tmp_path / "demo"
    cards = sorted(root.glob("models/sentiment/*.ckpt.yaml"))
    assert len(cards) == 3
    log = git(root, "log", "--format=%s").splitlines()
    assert log == [f"Checkpoint {card.read(c).name}" for c in reversed(cards)] + [
        "Set up quickstart project"
    ]
    assert git(root, "status", "--porcelain") == ""
    first = card.read(cards[0]).data
    assert first["code"]["script"] == "train.py" and first["code"]["dirty"] is False
    assert first["data"]["splits"]["dev"]["path"] == "data/tweets_dev.csv"
    assert first["seeds"] == {"seed": 42, "deterministic": True}
    assert 0 < first["metrics"]["dev"]["macro_f1"] < 1
    assert set(first["metrics"]["dev"]["class_f1"]) == {"neg", "neu", "pos"}
    remote_objects = [p for p in (root / ".dvc-remote").rglob("*") if p.is_file()]
    assert len(remote_objects) == 3
    for name in (card.read(c).name for c in cards):
        assert name in result.out
    shown = run_process("show", card.read(cards[-1]).name, cwd=root)
    assert shown.code == 0 and "macro_f1" in shown.out


def test_quickstart_is_deterministic_and_refuses_existing_directories(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy/file").write_text("x")
    result = run_process("quickstart", "busy", cwd=tmp_path)
    assert result.code == 2 and "not empty" in result.err
    assert (tmp_path / "busy/file").read_text() == "x"
