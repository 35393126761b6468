"""Catalog performance on a synthetic 10,000-commit history (~31,000 card versions).

Measured side by side in one run:
- full `catalog rebuild` vs the git-plumbing floor (the same `git log --raw`
  enumeration plus one batched read of the same card blobs, no parsing): <= 3x;
- `catalog update` after one new commit: <= 0.5 s;
- `log MODEL` and `find --where ... --top 10%` on the warm catalog: <= 0.4 s each,
  process start included;
- peak memory of the rebuild process: <= 500 MB.

    python benchmarks/bench_catalog.py [--commits 10000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import shutil
import subprocess
import time
from pathlib import Path

from common import median, scratch, timed, tool
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


def peak_rss_mb(command: list[str], cwd: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(before, after) / 1024


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
    parser.add_argument("--keep", type=Path, help="Reuse/keep the generated history here.")
    args = parser.parse_args()
    work = scratch()
    repo = args.keep or work / "history"
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
        rss = 0.0
        for _ in range(3):
            floors.append(floor(repo))
            elapsed, peak = peak_rss_mb([dvcckpt, "catalog", "rebuild"], repo)
            rebuilds.append(elapsed)
            rss = max(rss, peak)
        commit_one_more_card(repo, args.commits)
        update = timed([dvcckpt, "catalog", "update"], repo)
        log_time = median(
            [
                timed([dvcckpt, "log", "sentiment", "--metric", "dev.macro_f1"], repo)
                for _ in range(5)
            ]
        )
        where = 'metrics.test.macro_f1 >= 0.8 and (phase == "finetune" or "baseline" in tags)'
        find_time = median(
            [
                timed(
                    [
                        dvcckpt,
                        "find",
                        "--where",
                        where,
                        "--top",
                        "10%",
                        "--by",
                        "metrics.dev.macro_f1",
                    ],
                    repo,
                )
                for _ in range(5)
            ]
        )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    ratio = median(rebuilds) / median(floors)
    print(f"history: {args.commits} commits, {versions} card versions")
    print(f"floor (git log --raw + cat-file --batch): median {median(floors):.2f} s")
    print(f"catalog rebuild: median {median(rebuilds):.2f} s = {ratio:.2f}x floor (target <= 3x)")
    print(f"catalog update after one commit: {update:.3f} s (target <= 0.5 s)")
    print(f"log sentiment (warm): median {log_time:.3f} s (target <= 0.4 s)")
    print(f"find --where ... --top 10% (warm): median {find_time:.3f} s (target <= 0.4 s)")
    print(f"peak RSS of rebuild: {rss:.0f} MB (target <= 500 MB)")
    ok = ratio <= 3 and update <= 0.5 and log_time <= 0.4 and find_time <= 0.4 and rss <= 500
    print("PASS" if ok else "FAIL")


if __name__ == "__main__":
    main()
