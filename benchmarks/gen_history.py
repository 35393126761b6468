"""Synthetic Git history for catalog benchmarks, written with `git fast-import`.

    python benchmarks/gen_history.py DIR [--commits 10000] [--cards-per-commit 3]

Several models, realistic ~2.5 KB cards, a main line with experiment branches
forking off (some merged back) and annotated release tags.
"""

from __future__ import annotations

import argparse
import math
import random
import subprocess
import sys
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
  name: {model}_tweets_{model}_lr{lr}_2026-01-05
  task: text_classification
  owner: {author}
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


def card(rng: random.Random, model: str, step: int, commit_index: int) -> bytes:
    quality = 0.5 + 0.42 * (1 - math.exp(-step / 600_000)) + rng.uniform(-0.04, 0.04)
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
        "lr": rng.choice(("1e-4", "3e-5", "5e-5")),
        "seed": rng.randrange(100),
        "batch": rng.choice((16, 32)),
        "data_version": rng.randrange(1, 4),
        "dev_f1": round(quality, 4),
        "dev_acc": round(quality + 0.02, 4),
        "loss": round(1.5 - quality, 4),
        "neg": round(quality - 0.03, 4),
        "neu": round(quality - 0.05, 4),
        "pos": round(quality + 0.02, 4),
        "test_f1": round(quality - 0.01, 4),
        "test_acc": round(quality, 4),
        "gpu_hours": round(step / 1000, 2),
        "vram": rng.randrange(4000, 9000),
        "p50": rng.randrange(20, 80),
        "p95": rng.randrange(80, 160),
        "tag": rng.choice(("baseline", "sweep", "ablation")),
    }
    return TEMPLATE.format(**values).encode()


def card_path(model: str, step: int) -> str:
    return f"models/{model}/step-{step:07d}.pt.ckpt.yaml"


def stream(commits: int, per_commit: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    out: list[bytes] = []
    steps = dict.fromkeys(MODELS, 0)
    mark = 0
    main_head = None
    branch_heads: dict[str, int] = {}
    for index in range(commits):
        on_branch = index % 500 >= 400 and index >= 500  # the last 100 of every 500 go to a branch
        branch = f"exp-{index // 500}" if on_branch else "main"
        parent = branch_heads.get(branch, main_head) if on_branch else main_head
        files = []
        for _ in range(per_commit + (index % 10 == 0)):  # a few busier commits
            model = rng.choice(MODELS)
            steps[model] += 500
            mark += 1
            blob = card(rng, model, steps[model], index)
            out.append(b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(blob), blob))
            files.append((mark, card_path(model, steps[model])))
        mark += 1
        when = 1_767_000_000 + index * 600
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
        out.extend(b"M 100644 :%d %s\n" % (blob_mark, path.encode()) for blob_mark, path in files)
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
