"""Speed and size of `dvcckpt site` on a repository with about 1,000 checkpoints.

The history is the synthetic one of `gen_history.py` (330 commits, ~1,020 cards over
8 models, 20% of metric values with a confidence interval, some evaluations), plus a
`gates.yaml` with rules for every stage, so every checkpoint page evaluates gates.
Three figures, each the median of `--runs` runs, process start included:

- cold: no catalog and no cached model cards (the first build in a fresh clone);
- first site: the catalog is built, the model cards are not yet cached;
- warm: a rebuild (what CI pays on every push: catalog and model cards cached).

Targets: `site` <= 5 s (warm and first-site figures), every page < 2 MB.

    python benchmarks/bench_site.py [--commits 330] [--runs 3] [--keep DIR] [--toy]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

from common import measure, parse_args, scratch, tool, verdict
from gen_history import generate

GATES = """\
version: 1
gates:
  - stage: dev
    rules:
      - {name: dev-f1, metric: metrics.dev.macro_f1, op: ">=", value: 0.5}
  - stage: staging
    rules:
      - {name: dev-f1, metric: metrics.dev.macro_f1, op: ">=", value: 0.55}
      - {name: no-regression, regression: metrics.dev.macro_f1, margin: 0.01}
  - stage: production
    rules:
      - {name: test-f1, metric: metrics.test.macro_f1, op: ">=", value: 0.6}
      - {name: class-floor, each: metrics.dev.class_f1, op: ">=", value: 0.4}
      - {name: latency, metric: resources.latency_ms_p95, op: "<=", value: 120}
"""
TARGET_SECONDS = 5.0
TARGET_PAGE_BYTES = 2 * 1024 * 1024


def history(base: Path, commits: int) -> Path:
    repo = base / f"site{commits}"
    if (repo / ".git").exists():
        return repo
    generate(repo, commits, 3)
    (repo / "gates.yaml").write_text(GATES)
    (repo / "dvcckpt.yaml").write_text(
        "version: 1\nproject: bench\nprimary_metric: dev.macro_f1\n"
        "stages: [dev, staging, production]\n"
    )
    for args in (["add", "gates.yaml", "dvcckpt.yaml"],
                 ["-c", "user.name=bench", "-c", "user.email=bench@example.com",
                  "commit", "-qm", "gates"]):  # fmt: skip
        subprocess.run(["git", *args], cwd=repo, check=True)
    return repo


def forget_catalog(repo: Path) -> None:
    shutil.rmtree(repo / ".git" / "dvcckpt", ignore_errors=True)


def forget_model_cards(repo: Path) -> None:
    """Drop the cached model cards only (the catalog stays built)."""
    import sqlite3

    with sqlite3.connect(repo / ".git" / "dvcckpt" / "catalog.sqlite") as db:
        db.execute("DELETE FROM meta WHERE key LIKE 'site-modelcards-%'")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=330, help="history length (~3.1 cards each)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each figure")
    parser.add_argument("--keep", type=Path, help="Reuse/keep the generated history here.")
    args = parse_args(parser, {"commits": 20, "runs": 1})
    base = args.keep or scratch()
    base.mkdir(parents=True, exist_ok=True)
    try:
        repo = history(base, args.commits)
        command = [tool("dvcckpt"), "site", "--output", str(base / "out")]
        cold = measure(command, repo, args.runs, before=lambda: forget_catalog(repo))
        first = measure(command, repo, args.runs, before=lambda: forget_model_cards(repo))
        warm = measure(command, repo, args.runs)
        done = subprocess.run([*command, "--json"], cwd=repo, check=True, capture_output=True)
        written = json.loads(done.stdout)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    cards = written["count"] - 1 - sum(p.startswith("models/") for p in written["pages"])
    largest = written["largest"]
    print(f"site of {cards} checkpoints: {written['count']} pages, {written['bytes'] / 1e6:.1f} MB")
    for label, figure in (("cold (no catalog)", cold), ("first site", first), ("warm", warm)):
        ok = figure.seconds <= TARGET_SECONDS or label.startswith("cold")
        print(f"  {label:<18} median {figure.seconds:.2f} s wall, {figure.cpu_seconds:.2f} s CPU, "
              f"peak RSS {figure.rss_mb:.0f} MB ({figure.runs()})  "
              f"{'' if label.startswith('cold') else verdict(ok)}")  # fmt: skip
    page_ok = largest["bytes"] < TARGET_PAGE_BYTES
    print(f"  largest page       {largest['bytes'] / 1024:6.0f} KiB ({largest['page']})  "
          f"{verdict(page_ok)}")  # fmt: skip


if __name__ == "__main__":
    main()
