"""`dvcckpt --help` wall time (target: median <= 150 ms), its memory and what it imports.

python benchmarks/bench_startup.py [--runs 30] [--toy]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from common import measure, parse_args, tool, verdict

TARGET_MS = 150


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    runs = parse_args(parser, toy={"runs": 3}).runs
    baseline = measure([sys.executable, "-c", "pass"], runs=runs)
    help_run = measure([tool("dvcckpt"), "--help"], runs=runs)
    probe = "import sys; from dvcckpt.cli import main; main(['--help']); print(len(sys.modules))"
    modules = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    print(f"python -c pass   median {baseline.ms:6.1f} ms, peak RSS {baseline.rss_mb:5.1f} MB "
          f"({baseline.runs()})")  # fmt: skip
    print(f"dvcckpt --help   median {help_run.ms:6.1f} ms, peak RSS {help_run.rss_mb:5.1f} MB "
          f"({help_run.runs()}; target <= {TARGET_MS} ms)")  # fmt: skip
    print(f"modules loaded by --help: {modules}")
    print(verdict(help_run.ms <= TARGET_MS))


if __name__ == "__main__":
    main()
