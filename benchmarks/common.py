"""Helpers shared by the benchmark scripts (run them directly with python).

Every figure is measured over several runs and reported as the median wall time;
for commands run as child processes, the peak resident memory of the child (from
os.wait4, so it is that process's own, not the largest of every child so far) is
reported too (see LAUNCHER). `--toy` (or BENCH_TOY=1) runs any benchmark at a tiny size in
seconds: that checks it still works, its figures are not comparable with the targets.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
# Every timed `dvc` command would otherwise also start DVC's usage-analytics process.
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def tool(name: str) -> str:
    """The executable installed beside this interpreter (avoids slow shims)."""
    candidate = BIN / name
    return str(candidate) if candidate.exists() else shutil.which(name) or name


def parse_args(parser: argparse.ArgumentParser, toy: Mapping[str, Any]) -> argparse.Namespace:
    """Parse the command line; with `--toy` (or BENCH_TOY=1) `toy` replaces the defaults."""
    parser.add_argument(
        "--toy",
        action="store_true",
        default=os.environ.get("BENCH_TOY", "") not in ("", "0"),
        help="tiny sizes and few runs: checks that the benchmark works (seconds), "
        "the figures are not comparable with the targets",
    )
    known, _ = parser.parse_known_args()
    if known.toy:
        parser.set_defaults(**toy)
    args = parser.parse_args()
    if args.toy:
        print("toy size: checks that the benchmark runs; figures are not comparable with targets")
    return args


@dataclass(frozen=True)
class Sample:
    """One run of a child process."""

    seconds: float  # wall time
    cpu_seconds: float  # user + system CPU time of the process and the children it waited for
    rss_mb: float  # peak resident set of the process (or of the largest child it waited for)


# A child's ru_maxrss starts at the resident size of the process it was forked from
# (Linux counts the parent's memory map up to exec), so a benchmark that holds a big
# history in memory would inflate every figure. Commands are therefore started by
# this small launcher (~8 MB, about the floor of any Python process), which times the
# command itself (its own start-up excluded), waits for it with os.wait4 and reports
# "seconds cpu_seconds maxrss_kib wait_status" on file descriptor argv[1].
LAUNCHER = """
import os, sys, time
report, command = int(sys.argv[1]), sys.argv[2:]
os.set_inheritable(report, False)
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(command[0], command)
    except OSError as error:
        os.write(2, f"cannot run {command[0]}: {error}\\n".encode())
    os._exit(127)
_, status, usage = os.wait4(pid, 0)
elapsed = time.perf_counter() - start
os.write(report, f"{elapsed} {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss} {status}".encode())
"""


def run_measured(
    command: Sequence[str], cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> Sample:
    """Run `command` once, its output discarded; raise with its stderr if it fails."""
    read, write = os.pipe()
    with tempfile.TemporaryFile() as errors:
        try:
            launcher = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", LAUNCHER, str(write), *command],
                cwd=cwd,
                env=None if env is None else dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                pass_fds=(write,),
            )
        finally:
            os.close(write)
        with os.fdopen(read, "rb") as pipe:
            report = pipe.read().decode().split()
        launcher.wait()
        if len(report) != 4:
            raise RuntimeError(f"the benchmark launcher failed (exit {launcher.returncode})")
        seconds, cpu, maxrss_kib, status = report
        code = os.waitstatus_to_exitcode(int(status))
        if code != 0:
            errors.seek(0)
            tail = errors.read()[-4000:].decode(errors="replace")
            raise subprocess.CalledProcessError(code, list(command), stderr=tail)
    return Sample(float(seconds), float(cpu), int(maxrss_kib) / 1024)  # Linux: KiB


@dataclass(frozen=True)
class Figure:
    """Several runs of one measurement."""

    samples: tuple[Sample, ...]

    @property
    def seconds(self) -> float:
        return statistics.median(sample.seconds for sample in self.samples)

    @property
    def ms(self) -> float:
        return self.seconds * 1000

    @property
    def rss_mb(self) -> float:
        """The highest peak over the runs (memory targets are limits, not typical values)."""
        return max(sample.rss_mb for sample in self.samples)

    @property
    def cpu_seconds(self) -> float:
        return statistics.median(sample.cpu_seconds for sample in self.samples)

    def runs(self) -> str:
        return f"{len(self.samples)} run{'s' if len(self.samples) != 1 else ''}"


def measure(
    command: Sequence[str],
    cwd: Path | None = None,
    runs: int = 3,
    env: Mapping[str, str] | None = None,
    before: Callable[[], object] | None = None,
) -> Figure:
    """Run `command` `runs` times (calling `before` ahead of each, untimed)."""
    samples = []
    for _ in range(runs):
        if before is not None:
            before()
        samples.append(run_measured(command, cwd, env))
    return Figure(tuple(samples))


def measure_call(function: Callable[[], object], runs: int = 3) -> Figure:
    """Wall time of an in-process measurement (no memory figure: it is this process)."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        samples.append(Sample(time.perf_counter() - start, 0.0, 0.0))
    return Figure(tuple(samples))


def timed(command: Sequence[str], cwd: Path | None = None) -> float:
    """Wall time of one run of `command`."""
    return run_measured(command, cwd).seconds


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


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
