"""`dvcckpt --help` wall time (target: median <= 150 ms) and what it imports.

python benchmarks/bench_startup.py [--runs 30]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from common import median, timed, tool

TARGET_MS = 150


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    baseline = median([timed([sys.executable, "-c", "pass"]) for _ in range(runs)])
    help_time = median([timed([tool("dvcckpt"), "--help"]) for _ in range(runs)])
    probe = "import sys; from dvcckpt.cli import main; main(['--help']); print(len(sys.modules))"
    modules = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    print(f"python -c pass        median {baseline * 1000:6.1f} ms")
    print(f"dvcckpt --help        median {help_time * 1000:6.1f} ms  (target <= {TARGET_MS} ms)")
    print(f"modules loaded by --help: {modules}")
    print("PASS" if help_time * 1000 <= TARGET_MS else "FAIL")


if __name__ == "__main__":
    main()
