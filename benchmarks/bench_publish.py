"""`dvcckpt catalog publish` of a long history into a local Iceberg warehouse (SQLite catalog).

The synthetic history (`gen_history`, 10,000 commits, ~3.2 card versions each, the
main line published) gets its catalog index built once (timed apart: `find` and `log`
share it), then, through the CLI as a user runs it:

- a first publish into an empty warehouse (a fresh one each run);
- a re-publish with nothing new (idempotent: adds no row);
- an incremental publish after one new commit with one card (made untimed before each
  run; the catalog's update for that commit is part of the publish).

Targets: first publish <= 10 s; incremental after 1 commit <= 1 s.

    python benchmarks/bench_publish.py [--commits 10000] [--runs 3] [--keep DIR] [--toy]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
from pathlib import Path

from common import Figure, measure, parse_args, scratch, tool, verdict
from gen_history import card, card_path, generate

FIRST_TARGET = 10.0
INCREMENTAL_TARGET = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=10_000, help="history length")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--keep", type=Path, help="Reuse/keep the history here (DIR/hN).")
    args = parse_args(parser, toy={"commits": 60, "runs": 1})
    work = scratch()
    try:
        repo = (args.keep or work) / f"h{args.commits}"
        if not (repo / ".git").exists():
            generate(repo, args.commits, 3)
        figures = measure_all(repo, work / "lakes", args.runs)
        rows = json.loads(subprocess.run(
            [tool("dvcckpt"), "catalog", "publish", "--json", "--warehouse", str(work / "last")],
            cwd=repo, capture_output=True, text=True, check=True).stdout)["rows"]  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)  # a kept history lies outside it
    report(figures, rows, args.commits)


def measure_all(repo: Path, lakes: Path, runs: int) -> dict[str, Figure]:
    publish = [tool("dvcckpt"), "catalog", "publish", "--json"]
    fresh = iter(range(10_000))
    lake = lakes / "lake"
    figures = {"catalog rebuild": measure([tool("dvcckpt"), "catalog", "rebuild"], repo, runs=1)}

    def empty() -> None:
        nonlocal lake
        shutil.rmtree(lakes, ignore_errors=True)
        lake = lakes / f"lake{next(fresh)}"

    # The warehouse folder is chosen before each run, so the command is built per run.
    samples = []
    for _ in range(runs):
        empty()
        samples += measure([*publish, "--warehouse", str(lake)], repo, runs=1).samples
    figures["first publish"] = Figure(tuple(samples))
    figures["re-publish, nothing new"] = measure([*publish, "--warehouse", str(lake)], repo, runs)
    rng = random.Random(11)
    steps = iter(range(90_000_000, 99_000_000, 500))
    figures["incremental, 1 commit"] = measure(
        [*publish, "--warehouse", str(lake)],
        repo,
        runs,
        before=lambda: one_commit(repo, rng, steps),
    )
    return figures


def one_commit(repo: Path, rng: random.Random, steps: object) -> None:
    step = next(steps)  # type: ignore[call-overload]
    while (repo / card_path("sentiment", step)).exists():  # a kept history ran before
        step = next(steps)  # type: ignore[call-overload]
    path = repo / card_path("sentiment", step)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(card(rng, "sentiment", step, step))
    for command in (
        ["git", "add", str(path)],
        [
            "git",
            "-c",
            "user.name=Bench",
            "-c",
            "user.email=bench@example.com",
            "commit",
            "-qm",
            f"step {step}",
        ],
    ):
        subprocess.run(command, cwd=repo, check=True, stdout=subprocess.DEVNULL)


def report(figures: dict[str, Figure], rows: dict[str, int], commits: int) -> None:
    print(f"history: {commits} commits; published rows: "
          + ", ".join(f"{count} {table}" for table, count in rows.items()))  # fmt: skip
    for label, figure in figures.items():
        print(f"{label:<26} median {figure.seconds:.2f} s wall {figure.cpu_seconds:7.2f} s CPU, "
              f"peak RSS {figure.rss_mb:.0f} MB ({figure.runs()})")  # fmt: skip
    first, incremental = figures["first publish"], figures["incremental, 1 commit"]
    print(f"first publish <= {FIRST_TARGET:.0f} s: {first.seconds:.2f} s")
    print(f"incremental publish <= {INCREMENTAL_TARGET:.0f} s: {incremental.seconds:.2f} s")
    print(verdict(first.seconds <= FIRST_TARGET and incremental.seconds <= INCREMENTAL_TARGET))


if __name__ == "__main__":
    main()
