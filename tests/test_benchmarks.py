"""Every benchmark still runs: each script at toy size (seconds), its figures printed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("bench_*.py"))
FIGURE = re.compile(r"median\s+\d+(\.\d+)? m?s\b")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_every_benchmark_is_covered() -> None:
    assert {script.name for script in SCRIPTS} >= {
        "bench_add.py", "bench_catalog.py", "bench_check.py", "bench_startup.py",
        "bench_storage.py",
    }  # fmt: skip


@pytest.mark.parametrize("script", SCRIPTS, ids=[script.stem for script in SCRIPTS])
def test_benchmark_runs_at_toy_size(
    script: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BENCH_DIR", str(tmp_path))  # its scratch folders, removed with the test
    done = run(str(script), "--toy", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    figures = [line for line in done.stdout.splitlines() if FIGURE.search(line)]
    assert figures, done.stdout
    assert "peak RSS" in done.stdout, done.stdout
    assert re.search(r"\b(PASS|FAIL)\b", done.stdout), done.stdout
    assert not list(tmp_path.glob("dvcckpt-bench-*")), "the benchmark left its scratch folder"


def test_history_generator_writes_a_valid_history(tmp_path: Path) -> None:
    done = run(str(BENCHMARKS / "gen_history.py"), str(tmp_path / "h"), "--commits", "30",
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    log = subprocess.run(
        ["git", "-C", str(tmp_path / "h"), "log", "--all", "--format=%H"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert len(log) == 30
