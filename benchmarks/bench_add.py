"""`dvcckpt add` vs plain `dvc add` of the same large file, side by side.

Target: dvcckpt add <= 1.15x dvc add wall time (1 GB file). Each round builds two
fresh repositories holding identical files and alternates which tool goes first.

    python benchmarks/bench_add.py [--size-mb 1024] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from common import median, new_repo, scratch, timed, tool

TARGET_RATIO = 1.15


def write_file(path: Path, size_mb: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    block = bytes(range(256)) * 4096  # 1 MiB, varied so nothing is trivially compressible
    with path.open("wb") as handle:
        for index in range(size_mb):
            handle.write(index.to_bytes(8, "little") + block[8:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = scratch()
    dvc_times: list[float] = []
    ckpt_times: list[float] = []
    try:
        for round_index in range(args.rounds):
            plain = new_repo(work, f"dvc-{round_index}")
            ours = new_repo(work, f"dvcckpt-{round_index}")
            write_file(plain / "models/m/big.pt", args.size_mb)
            (ours / "models/m").mkdir(parents=True)
            shutil.copyfile(plain / "models/m/big.pt", ours / "models/m/big.pt")
            runs = [
                (dvc_times, [tool("dvc"), "add", "-q", "models/m/big.pt"], plain),
                (ckpt_times, [tool("dvcckpt"), "add", "models/m/big.pt", "--step", "1"], ours),
            ]
            for times, command, cwd in runs if round_index % 2 == 0 else reversed(runs):
                os.sync()  # flush the previous run's cache writes so neither run pays for them
                time.sleep(3)  # and let the VM's disk settle after the flush
                times.append(timed(command, cwd))
            print(f"round {round_index + 1}: dvc add {dvc_times[-1]:.2f} s, "
                  f"dvcckpt add {ckpt_times[-1]:.2f} s")  # fmt: skip
            shutil.rmtree(plain)
            shutil.rmtree(ours)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratio = median(ckpt_times) / median(dvc_times)
    print(f"{args.size_mb} MiB: dvc add median {median(dvc_times):.2f} s, "
          f"dvcckpt add median {median(ckpt_times):.2f} s, ratio {ratio:.3f} "
          f"(target <= {TARGET_RATIO})")  # fmt: skip
    print("PASS" if ratio <= TARGET_RATIO else "FAIL")


if __name__ == "__main__":
    main()
