"""`dvcckpt add` vs plain `dvc add` of the same large file, side by side.

Target: dvcckpt add <= 1.0x dvc add wall time (1 GB file). Each round builds two
fresh repositories holding identical files and alternates which tool goes first. The
page cache is equalised: before each run the file is read once (so both start with it
cached) and the previous run's writes are flushed. Peak memory and CPU time (the
command's and its children's) of each command are shown too: on a shared machine the
CPU time is the steadier figure.

    python benchmarks/bench_add.py [--size-mb 1024] [--rounds 5] [--settle 3] [--toy]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from pathlib import Path

from common import Figure, Sample, new_repo, parse_args, run_measured, scratch, tool, verdict

TARGET_RATIO = 1.0


def write_file(path: Path, size_mb: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    block = bytes(range(256)) * 4096  # 1 MiB, varied so nothing is trivially compressible
    with path.open("wb") as handle:
        for index in range(size_mb):
            handle.write(index.to_bytes(8, "little") + block[8:])


def warm(path: Path) -> None:
    """Read `path` once, so the run finds it in the page cache, as a training loop's
    freshly written checkpoint is."""
    with path.open("rb", buffering=0) as handle:
        while handle.read(8 << 20):
            pass


def run_once(command: list[str], cwd: Path, checkpoint: Path, settle: float) -> Sample:
    warm(checkpoint)
    os.sync()  # flush the previous run's cache writes so neither run pays for them
    time.sleep(settle)  # and let the VM's disk settle after the flush
    try:
        return run_measured(command, cwd)
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"{' '.join(command)} failed:\n{exc.stderr}") from exc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds to let the disk settle before each run"
    )
    args = parse_args(parser, toy={"size_mb": 2, "rounds": 2, "settle": 0.0})
    work = scratch()
    dvc_runs: list[Sample] = []
    ckpt_runs: list[Sample] = []
    try:
        for round_index in range(args.rounds):
            plain = new_repo(work, f"dvc-{round_index}")
            ours = new_repo(work, f"dvcckpt-{round_index}")
            write_file(plain / "models/m/big.pt", args.size_mb)
            (ours / "models/m").mkdir(parents=True)
            shutil.copyfile(plain / "models/m/big.pt", ours / "models/m/big.pt")
            runs = [
                (dvc_runs, [tool("dvc"), "add", "-q", "models/m/big.pt"], plain),
                (ckpt_runs, [tool("dvcckpt"), "add", "models/m/big.pt", "--step", "1"], ours),
            ]
            for samples, command, cwd in runs if round_index % 2 == 0 else reversed(runs):
                samples.append(run_once(command, cwd, cwd / "models/m/big.pt", args.settle))
            print(f"round {round_index + 1}: dvc add {dvc_runs[-1].seconds:.2f} s, "
                  f"dvcckpt add {ckpt_runs[-1].seconds:.2f} s")  # fmt: skip
            shutil.rmtree(plain)
            shutil.rmtree(ours)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    plain_figure, ours_figure = Figure(tuple(dvc_runs)), Figure(tuple(ckpt_runs))
    ratio = ours_figure.seconds / plain_figure.seconds
    for label, figure in (("dvc add", plain_figure), ("dvcckpt add", ours_figure)):
        print(f"{args.size_mb} MiB, {label + ':':<12} median {figure.seconds:6.2f} s, "
              f"CPU {figure.cpu_seconds:6.2f} s, peak RSS {figure.rss_mb:6.1f} MB "
              f"({figure.runs()})")  # fmt: skip
    cpu_ratio = ours_figure.cpu_seconds / plain_figure.cpu_seconds
    print(f"ratio dvcckpt add / dvc add: {ratio:.3f} wall (target <= {TARGET_RATIO}), "
          f"{cpu_ratio:.3f} CPU")  # fmt: skip
    print(verdict(ratio <= TARGET_RATIO))


if __name__ == "__main__":
    main()
