"""Catalog performance on a synthetic 10,000-commit history (~31,000 card versions).

Measured side by side in one run:
- full `catalog rebuild` vs the git-plumbing floor (the same `git log --raw`
  enumeration plus one batched read of the same card blobs, no parsing): <= 3x;
- `catalog update` after one new commit: <= 0.5 s;
- `log MODEL` and `find --where ... --top 10%` on the warm catalog: <= 0.4 s each,
  process start included;
- peak memory of the rebuild process: <= 500 MB.

Each figure is the median of several runs (`catalog update`: one new commit each).

    python benchmarks/bench_catalog.py [--commits 10000] [--runs 3] [--keep DIR] [--toy]
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import subprocess
import time
from pathlib import Path

from common import Figure, measure, measure_call, parse_args, scratch, tool, verdict
from gen_history import card, card_path, generate

CARD = ".ckpt.yaml"
STEP = re.compile(r"/step-(\d+)\.pt\.ckpt\.yaml$")


def floor(repo: Path) -> float:
    """Enumerate card versions like the catalog does and read their blobs, without parsing."""
    start = time.perf_counter()
    log = subprocess.run(
        [
            "git",
            "log",
            "--branches",
            "--tags",
            "--remotes",
            "HEAD",
            "--topo-order",
            "--reverse",
            "--raw",
            "--no-abbrev",
            "--no-renames",
            "-z",
            "--format=%x1e%H%x1f%P%x1f%an%x1f%ae%x1f%at%x1f%ct%x1f%s",
            "--",
        ],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout.decode()
    blobs = set()
    for record in log.split("\x1e")[1:]:
        entries = record.partition("\0")[2].lstrip("\n").split("\0")
        for meta, path in zip(entries[0::2], entries[1::2], strict=False):
            if path.endswith(CARD):
                blobs.add(meta.split()[3])
    subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=repo,
        input="\n".join(sorted(blobs)).encode() + b"\n",
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - start


def last_step(repo: Path, model: str) -> int:
    """The highest step of `model` on any ref, so a new card never collides with one."""
    names = subprocess.run(
        ["git", "log", "--all", "--format=", "--name-only", "--", f"models/{model}/"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    steps = [int(match[1]) for name in names if (match := STEP.search(name))]
    return max(steps, default=0)


def commit_one_more_card(repo: Path, commit_index: int) -> None:
    """One new commit on main with one new card, as a training run would add it."""
    subprocess.run(["git", "checkout", "-q", "main"], cwd=repo, check=True)
    step = last_step(repo, "sentiment") + 500  # a new card on every run, also with --keep
    target = repo / card_path("sentiment", step)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(card(random.Random(step), "sentiment", step, commit_index))
    subprocess.run(["git", "add", "--all"], cwd=repo, check=True)
    subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@e", "commit", "-qm", "one more"],
        cwd=repo,
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each timed figure (>= 3)")
    parser.add_argument("--keep", type=Path, help="Reuse/keep the generated history here.")
    args = parse_args(parser, toy={"commits": 60})
    work = scratch()
    repo = args.keep or work / "history"
    runs = args.runs
    try:
        if not (repo / ".git").exists():
            generate(repo, args.commits, 3)
        versions = subprocess.run(
            ["git", "log", "--branches", "--tags", "--raw", "--format=", "--", "*" + CARD],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.count(CARD)
        dvcckpt = tool("dvcckpt")
        floors, rebuilds = [], []
        for _ in range(runs):  # alternated, so both see the same state of the disk cache
            floors.extend(measure_call(lambda: floor(repo), runs=1).samples)
            rebuilds.extend(measure([dvcckpt, "catalog", "rebuild"], repo, runs=1).samples)
        floor_figure, rebuild = Figure(tuple(floors)), Figure(tuple(rebuilds))
        updates = []
        for index in range(runs):
            commit_one_more_card(repo, args.commits + index)
            updates.extend(measure([dvcckpt, "catalog", "update"], repo, runs=1).samples)
        update = Figure(tuple(updates))
        log = measure([dvcckpt, "log", "sentiment", "--metric", "dev.macro_f1"], repo, runs=5)
        where = 'metrics.test.macro_f1 >= 0.8 and (phase == "finetune" or "baseline" in tags)'
        find = measure(
            [dvcckpt, "find", "--where", where, "--top", "10%", "--by", "metrics.dev.macro_f1"],
            repo,
            runs=5,
        )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    ratio = rebuild.seconds / floor_figure.seconds
    print(f"history: {args.commits} commits, {versions} card versions")
    print(f"floor (git log --raw + cat-file --batch): median {floor_figure.seconds:6.3f} s "
          f"({floor_figure.runs()})")  # fmt: skip
    rows = [
        ("catalog rebuild", rebuild, f"{ratio:.2f}x floor (target <= 3x)"),
        ("catalog update after one commit", update, "target <= 0.5 s"),
        ("log sentiment (warm)", log, "target <= 0.4 s"),
        ("find --where ... --top 10% (warm)", find, "target <= 0.4 s"),
    ]
    for label, figure, target in rows:
        print(f"{label + ':':<35} median {figure.seconds:6.3f} s, peak RSS "
              f"{figure.rss_mb:5.0f} MB ({figure.runs()}; {target})")  # fmt: skip
    print(f"peak RSS of rebuild: {rebuild.rss_mb:.0f} MB (target <= 500 MB)")
    ok = (
        ratio <= 3
        and update.seconds <= 0.5
        and log.seconds <= 0.4
        and find.seconds <= 0.4
        and rebuild.rss_mb <= 500
    )
    print(verdict(ok))


if __name__ == "__main__":
    main()
