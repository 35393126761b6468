"""Synthetic Git history for catalog benchmarks, written with `git fast-import`.

    python benchmarks/gen_history.py DIR [--commits 10000] [--cards-per-commit 3]

Several models, realistic ~2.5 KB cards, a main line with experiment branches
forking off (some merged back) and annotated release tags. About 20% of metric values
are estimates with a confidence interval (`{value, ci, method}`); checkpoints belong to
runs (`run.name`, `run.id`, `run.group`, `seeds.seed`: three seeds per configuration
group, so grouping has something to aggregate); some cards carry evaluations, most
appended by a later commit to a card committed earlier, as `dvcckpt evaluate` does.
"""

from __future__ import annotations

import argparse
import math
import random
import subprocess
import sys
import zlib
from collections import deque
from pathlib import Path

MODELS = ("sentiment", "ner", "intent", "toxicity", "summarizer", "qa", "langid", "ranker")
TEMPLATE = """\
# yaml-language-server: $schema=https://dvcckpt.dev/schemas/checkpoint.v1.schema.json
schema:
  id: dvcckpt/checkpoint
  version: '1.1'
name: {name}
model: {model}
checkpoint:
  path: models/{model}/step-{step:07d}.pt
  format: file
  serialization: pickle
  kind: full
  phase: {phase}
  step: {step}
  epoch: {epoch}
  size: {size}
  files: 1
  sha256: {sha}
  dvc:
    file: models/{model}/step-{step:07d}.pt.dvc
    md5: {md5}
    size: {size}
  created_at: '{created}'
  created_by:
    name: {author}
    email: {author}@example.com
run:
  name: {run_name}
  task: text_classification
  group: {group}
  owner: {author}
  id: {run_id}
code:
  repo: https://github.com/acme/nlp.git
  commit: {commit}
  branch: main
  dirty: false
  script: train.py
  command: python train.py --lr {lr} --seed {seed}
  config_file: configs/{model}.yaml
  config_sha256: {sha}
data:
  dataset: tweets
  version: v{data_version}
  splits:
    train:
      hash: sha256:{sha}
    dev:
      hash: sha256:{sha}
    test:
      hash: sha256:{sha}
params:
  lr: {lr}
  batch_size: {batch}
  max_length: 128
  warmup_steps: 500
  optimizer: adamw
seeds:
  seed: {seed}
  deterministic: true
env:
  python: 3.11.7
  platform: Linux-6.1-x86_64-with-glibc2.36
  libraries:
    torch: 2.3.0
    transformers: 4.46.0
    numpy: 1.26.4
  packages_sha256: {sha}
  cuda: '12.1'
  gpus:
    - name: NVIDIA A100-SXM4-80GB
      memory_mb: 81920
metrics:
  dev:
    macro_f1: {dev_f1}
    accuracy: {dev_acc}
    loss: {loss}
    class_f1:
      neg: {neg}
      neu: {neu}
      pos: {pos}
  test:
    macro_f1: {test_f1}
    accuracy: {test_acc}
resources:
  gpu_hours: {gpu_hours}
  peak_vram_mb: {vram}
  latency_ms_p50: {p50}
  latency_ms_p95: {p95}
tags:
  - {tag}
notes: Synthetic checkpoint {step} of {model} for benchmarking the catalog.
"""


CI_SHARE = 0.2  # metric values recorded as estimates with a confidence interval
CHECKPOINTS_PER_RUN = 40
SEEDS_PER_GROUP = 3
LEARNING_RATES = ("1e-4", "3e-5", "5e-5")
METRICS = ("dev_f1", "dev_acc", "loss", "neg", "neu", "pos", "test_f1", "test_acc")


def run_of(model: str, step: int) -> dict[str, str | int]:
    """The run a checkpoint belongs to: consecutive steps of a model share a run, and
    every `SEEDS_PER_GROUP` consecutive runs are one configuration with different seeds."""
    number = (step // 500 - 1) // CHECKPOINTS_PER_RUN
    group, seed = divmod(number, SEEDS_PER_GROUP)
    return {
        "run_name": f"{model}-g{group}-s{seed}",
        "run_id": f"{zlib.crc32(f'{model}/{number}'.encode()):08x}",
        "group": f"{model}-g{group}",
        "seed": seed,
        "lr": LEARNING_RATES[group % len(LEARNING_RATES)],
    }


def metric(rng: random.Random, value: float) -> str:
    """A metric as YAML: a plain number, or (CI_SHARE of the time) an estimate."""
    value = round(value, 4)
    if rng.random() >= CI_SHARE:
        return repr(value)
    half = round(rng.uniform(0.005, 0.03), 4)
    low, high = round(value - half, 4), round(value + half, 4)
    return f"{{value: {value!r}, ci: [{low!r}, {high!r}], method: bootstrap}}"


def card(rng: random.Random, model: str, step: int, commit_index: int) -> bytes:
    quality = 0.5 + 0.42 * (1 - math.exp(-step / 600_000)) + rng.uniform(-0.04, 0.04)
    run = run_of(model, step)
    values = {
        "name": f"{model}-train-full-step{step:07d}",
        "model": model,
        "step": step,
        "phase": rng.choice(("train", "finetune", "pretrain")),
        "epoch": step // 1000,
        "size": rng.randrange(10**8, 10**9),
        "sha": f"{rng.getrandbits(256):064x}",
        "md5": f"{rng.getrandbits(128):032x}",
        "created": f"2026-{1 + commit_index * 11 // 10_000 % 12:02d}-15T10:00:00Z",
        "author": rng.choice(("ada", "grace", "alan", "barbara")),
        "commit": f"{rng.getrandbits(160):040x}",
        "batch": rng.choice((16, 32)),
        "data_version": rng.randrange(1, 4),
        "dev_f1": quality,
        "dev_acc": quality + 0.02,
        "loss": 1.5 - quality,
        "neg": quality - 0.03,
        "neu": quality - 0.05,
        "pos": quality + 0.02,
        "test_f1": quality - 0.01,
        "test_acc": quality,
        "gpu_hours": round(step / 1000, 2),
        "vram": rng.randrange(4000, 9000),
        "p50": rng.randrange(20, 80),
        "p95": rng.randrange(80, 160),
        "tag": rng.choice(("baseline", "sweep", "ablation")),
        **run,
    }
    for key in METRICS:
        values[key] = metric(rng, float(values[key]))
    return TEMPLATE.format(**values).encode()


def evaluation(rng: random.Random, when: int, step: int) -> str:
    """One `evaluations` entry as YAML (a list item), dated at commit time `when`."""
    import datetime as dt

    at = dt.datetime.fromtimestamp(when, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    quality = 0.75 + rng.uniform(-0.1, 0.15)
    lines = [f"  - split: {rng.choice(('test', 'ood'))}", f"    at: '{at}'"]
    if rng.random() < 0.3:
        lines.append(f"    step: {step}")
    lines += ["    metrics:", f"      macro_f1: {metric(rng, quality)}",
              f"      accuracy: {metric(rng, quality + 0.01)}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def with_evaluations(text: bytes, entries: list[str]) -> bytes:
    return text + b"evaluations:\n" + "".join(entries).encode() if entries else text


def card_path(model: str, step: int) -> str:
    return f"models/{model}/step-{step:07d}.pt.ckpt.yaml"


EVALUATED_AT_CREATION = 0.05  # share of new cards committed with an evaluation
REEVALUATED = 0.15  # share of main-line commits that append an evaluation to an older card
RECENT = 300  # main-line cards a re-evaluation picks from


def stream(commits: int, per_commit: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    out: list[bytes] = []
    steps = dict.fromkeys(MODELS, 0)
    mark = 0
    main_head = None
    branch_heads: dict[str, int] = {}
    # Recent main-line cards: [path, text without evaluations, evaluations so far, step].
    recent: deque[list[object]] = deque(maxlen=RECENT)
    for index in range(commits):
        on_branch = index % 500 >= 400 and index >= 500  # the last 100 of every 500 go to a branch
        branch = f"exp-{index // 500}" if on_branch else "main"
        parent = branch_heads.get(branch, main_head) if on_branch else main_head
        when = 1_767_000_000 + index * 600
        files = []
        for _ in range(per_commit + (index % 10 == 0)):  # a few busier commits
            model = rng.choice(MODELS)
            steps[model] += 500
            text = card(rng, model, steps[model], index)
            entries = (
                [evaluation(rng, when, steps[model])]
                if rng.random() < EVALUATED_AT_CREATION
                else []
            )
            path = card_path(model, steps[model])
            files.append((with_evaluations(text, entries), path))
            if not on_branch:
                recent.append([path, text, entries, steps[model]])
        if not on_branch and len(recent) > per_commit and rng.random() < REEVALUATED:
            older = recent[rng.randrange(len(recent) - per_commit)]  # not one of this commit's
            older[2] = [*older[2], evaluation(rng, when, older[3])]  # type: ignore[misc]
            files.append((with_evaluations(older[1], older[2]), older[0]))  # type: ignore[arg-type]
        marks = []
        for blob, path in files:
            mark += 1
            out.append(b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(blob), blob))
            marks.append((mark, path))
        mark += 1
        message = f"Checkpoints at commit {index}".encode()
        out.append(b"commit refs/heads/%s\nmark :%d\n" % (branch.encode(), mark))
        out.append(b"author Bench <bench@example.com> %d +0000\n" % when)
        out.append(b"committer Bench <bench@example.com> %d +0000\n" % when)
        out.append(b"data %d\n%s\n" % (len(message), message))
        if parent is not None:
            out.append(b"from :%d\n" % parent)
        if branch == "main" and index % 500 == 0 and index >= 1000 and rng.random() < 0.5:
            merged = f"exp-{index // 500 - 1}"
            if merged in branch_heads:
                out.append(b"merge :%d\n" % branch_heads[merged])
        out.extend(b"M 100644 :%d %s\n" % (blob_mark, path.encode()) for blob_mark, path in marks)
        out.append(b"\n")
        if on_branch:
            branch_heads[branch] = mark
        else:
            main_head = mark
        if branch == "main" and index % 1000 == 399:
            tag = f"v{index // 1000}".encode()
            out.append(
                b"tag %s\nfrom :%d\ntagger Bench <bench@example.com> %d +0000\ndata 7\nrelease\n"
                % (tag, mark, when)
            )
    return b"".join(out)


def generate(directory: Path, commits: int, per_commit: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "--initial-branch=main", str(directory)], check=True)
    subprocess.run(
        ["git", "-C", str(directory), "fast-import", "--quiet"],
        input=stream(commits, per_commit),
        check=True,
    )
    subprocess.run(["git", "-C", str(directory), "checkout", "-q", "main"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--cards-per-commit", type=int, default=3)
    args = parser.parse_args()
    generate(args.directory, args.commits, args.cards_per_commit)
    print(f"wrote {args.commits} commits to {args.directory}", file=sys.stderr)


if __name__ == "__main__":
    main()
