"""Query speed on synthetic histories of growing length (20% of metrics with a CI).

For each history length (2,000 / 10,000 / 30,000 commits, ~3.2 card versions each)
the catalog is rebuilt once (timed), then each query runs warm several times,
process start included (CLI wall time, as a user waits for it):

- `log MODEL --metric dev.macro_f1`;
- `find` with a typical selective query (one model, a metric threshold, the best 5);
- `find` with a CI comparison and `--top 10%`;
- `find` on the latest evaluation of a split;
- `find --group-by run.group` and `--group-by run` (every card in scope, aggregated
  per configuration group, per run).

Targets: at 10k commits the CI query with `--top 10%` <= 0.3 s and each `--group-by`
<= 0.5 s; at 30k commits
`log MODEL` and the selective `find` <= 0.2 s; and cost that does not grow with
history: those two at the longest history <= 2x their time at the shortest (the
`--top 10%` and evaluation answers themselves grow with history, so they may too).
The growth table prints every figure side by side, `dvcckpt --help` as the floor.

    python benchmarks/bench_query.py [--sizes 2000,10000,30000] [--runs 5] [--keep DIR]
                                     [--dvcckpt EXECUTABLE] [--toy]

`--keep DIR` reuses (or keeps) the histories as DIR/h2000...; `--dvcckpt` times
another installation (e.g. an older version, for a before/after table).
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from common import Figure, measure, parse_args, run_measured, scratch, tool, verdict
from gen_history import generate

SELECTIVE = 'metrics.test.macro_f1 >= 0.9 and phase == "finetune"'
CI = "metrics.test.macro_f1.ci_low >= 0.85 or metrics.dev.macro_f1 >= 0.9"
QUERIES = {
    "process start": ["--help"],  # the floor every command pays
    "log MODEL": ["log", "sentiment", "--metric", "dev.macro_f1"],
    "find selective": ["find", "--model", "sentiment", "--where", SELECTIVE,
                       "--top", "5", "--by", "dev.macro_f1"],
    "find CI --top 10%": ["find", "--where", CI, "--top", "10%", "--by", "dev.macro_f1"],
    "find evaluations": ["find", "--where", "evaluations.test.macro_f1 >= 0.85",
                         "--sort", "-evaluations.test.macro_f1"],
    "find --group-by": ["find", "--group-by", "run.group", "--by", "dev.macro_f1"],
    "find --group-by run": ["find", "--group-by", "run", "--by", "dev.macro_f1"],
}  # fmt: skip


def history(base: Path, commits: int) -> Path:
    repo = base / f"h{commits}"
    if not (repo / ".git").exists():
        generate(repo, commits, 3)
    return repo


def installed(work: Path) -> dict[str, str]:
    """The environment of the timed commands: Python's compiled modules kept between
    runs (in `work`, not beside the sources), as an installed package has them, even
    where PYTHONDONTWRITEBYTECODE is set (it would compile every module at each start)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(work / "bytecode")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="2000,10000,30000", help="history lengths (commits)")
    parser.add_argument("--runs", type=int, default=5, help="warm runs of each query (>= 3)")
    parser.add_argument("--keep", type=Path, help="Reuse/keep the generated histories here.")
    parser.add_argument("--dvcckpt", default=tool("dvcckpt"), help="the executable to time")
    args = parse_args(parser, toy={"sizes": "40,120", "runs": 3})
    sizes = [int(size) for size in args.sizes.split(",")]
    work = scratch()
    base = args.keep or work
    env = installed(work)
    figures: dict[tuple[str, int], Figure] = {}
    try:
        for commits in sizes:
            repo = history(base, commits)
            figures["catalog rebuild", commits] = measure(
                [args.dvcckpt, "catalog", "rebuild"], repo, runs=1, env=env
            )
            for label, command in QUERIES.items():
                run_measured([args.dvcckpt, *command], repo, env)  # warm: caches filled
                figures[label, commits] = measure(
                    [args.dvcckpt, *command], repo, runs=args.runs, env=env
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the kept histories are in --keep
    report(figures, sizes)


def report(figures: dict[tuple[str, int], Figure], sizes: list[int]) -> None:
    labels = ["catalog rebuild", *QUERIES]
    print("median wall time (s) of warm runs, process start included (compiled modules"
          " cached); CPU time in brackets")  # fmt: skip
    print(f"{'':<20}" + "".join(f"{f'{n} commits':>22}" for n in sizes))
    for label in labels:
        cells = "".join(
            f"{f'{figures[label, n].seconds:.3f} ({figures[label, n].cpu_seconds:.3f})':>22}"
            for n in sizes
        )
        print(f"{label:<20}{cells}")
    for (label, commits), figure in figures.items():
        print(f"{label} at {commits}: median {figure.seconds:.3f} s, peak RSS "
              f"{figure.rss_mb:.0f} MB ({figure.runs()})")  # fmt: skip
    checks = []
    if 10_000 in sizes:
        checks.append(
            ("find CI --top 10% at 10k <= 0.3 s", figures["find CI --top 10%", 10_000], 0.3)
        )
        for label in ("find --group-by", "find --group-by run"):
            checks.append((f"{label} at 10k <= 0.5 s", figures[label, 10_000], 0.5))
    if 30_000 in sizes:
        for label in ("log MODEL", "find selective"):
            checks.append((f"{label} at 30k <= 0.2 s", figures[label, 30_000], 0.2))
    ok = True
    for text, figure, limit in checks:
        ok &= figure.seconds <= limit
        print(f"{text}: {figure.seconds:.3f} s")
    for label in ("log MODEL", "find selective"):
        growth = figures[label, sizes[-1]].seconds / figures[label, sizes[0]].seconds
        ok &= growth <= 2
        print(f"{label}: {growth:.2f}x from {sizes[0]} to {sizes[-1]} commits (target <= 2x)")
    print(verdict(ok))


if __name__ == "__main__":
    main()
