"""Helpers shared by the benchmark scripts (run them directly with python)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

BIN = Path(sys.executable).parent
# Every timed `dvc` command would otherwise also start DVC's usage-analytics process.
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def tool(name: str) -> str:
    """The executable installed beside this interpreter (avoids slow shims)."""
    candidate = BIN / name
    return str(candidate) if candidate.exists() else shutil.which(name) or name


def timed(command: Sequence[str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(
        command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def new_repo(parent: Path, name: str) -> Path:
    root = parent / name
    root.mkdir()
    for args in (["git", "init", "-q"], ["git", "config", "user.email", "bench@example.com"],
                 ["git", "config", "user.name", "bench"], [tool("dvc"), "init", "-q"],
                 ["git", "commit", "-qm", "init"]):  # fmt: skip
        subprocess.run(args, cwd=root, check=True, stdout=subprocess.DEVNULL)
    return root


def scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="dvcckpt-bench-", dir=os.environ.get("BENCH_DIR")))
