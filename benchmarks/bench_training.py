"""A real torch training loop saving checkpoints, with and without dvcckpt.

The loop trains an MLP (CPU, SGD on synthetic data) and `torch.save`s its state dict
(about 50 MB) every `--steps` steps, 20 times. Modes: `plain` (no dvcckpt), `background`
(`dvcckpt.save(..., background=True)` after each save, `dvcckpt.wait()` at the end: the
registrations run in dvcckpt's helper process), with `--thread` also `thread` (the same
with `DVCCKPT_SAVE_WORKER=thread`: registrations in a thread of the training process) and,
with `--sync`, `sync` (plain `dvcckpt.save`). Each run is a fresh process in a fresh
git + DVC repository; the figure is the loop's own wall time (from the first step to the
last card written; torch's import excluded, dvcckpt's included), median of the runs.

Target: background <= 1.05x plain. Each round runs every mode once, back to back, so a
round's ratio compares runs made under the same machine conditions; the verdict is on the
median of the rounds' ratios (the ratio of the medians is printed beside it: on a shared
machine the two differ by the drift between rounds). On a 2-core machine the registrations compete with
torch's threads, so the loop is measured with `torch.set_num_threads(1)` and with torch's
default (`--threads 1,default`).

    python benchmarks/bench_training.py [--runs 3] [--saves 20] [--steps 30] [--thread] [--sync]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

from common import Figure, Sample, new_repo, parse_args, run_measured, scratch, verdict

TARGET_RATIO = 1.05
WIDTH_IN = 1024
BATCH = 64
PLACES = {"helper": "helper process", "here": "training process"}  # `saveprocess.ran`


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--saves", type=int, default=20)
    parser.add_argument("--steps", type=int, default=30, help="training steps between saves")
    parser.add_argument("--size-mb", type=int, default=50, help="checkpoint size")
    parser.add_argument("--threads", default="1,default", help="torch threads settings to run")
    parser.add_argument(
        "--thread",
        action="store_true",
        help="also run background saves registered in a thread (not a process)",
    )
    parser.add_argument("--sync", action="store_true", help="also run with synchronous saves")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    if "--child" in sys.argv:
        args = parser.parse_args()
        train(args)
        return
    args = parse_args(parser, toy={"runs": 1, "saves": 3, "steps": 2, "size_mb": 1, "threads": "1"})
    modes = ["plain", "background", *(["thread"] if args.thread else []),
             *(["sync"] if args.sync else [])]  # fmt: skip
    work = scratch()
    try:
        for threads in args.threads.split(","):
            report(args, threads, modes, measure(args, threads, modes, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(
    args: argparse.Namespace, threads: str, modes: list[str], work: Path
) -> dict[str, list[Sample]]:
    """Run every mode `args.runs` times, alternating their order from round to round."""
    samples: dict[str, list[Sample]] = {mode: [] for mode in modes}
    for round_index in range(args.runs):
        for mode in modes if round_index % 2 == 0 else reversed(modes):
            repo = new_repo(work, f"{mode}-{threads}-{round_index}")
            result = repo / "loop.json"
            command = [sys.executable, str(Path(__file__).resolve()), "--child", mode,
                       "--threads", threads, "--saves", str(args.saves), "--steps",
                       str(args.steps), "--size-mb", str(args.size_mb), "--report", str(result)]  # fmt: skip
            process = run_measured(command, repo)
            loop = json.loads(result.read_text())
            samples[mode].append(Sample(loop["seconds"], process.cpu_seconds, process.rss_mb))
            where = ", ".join(
                f"{count} in the {PLACES[place]}" for place, count in loop["ran"].items()
            )
            print(f"threads {threads}, round {round_index + 1}, {mode}: {loop['seconds']:.2f} s "
                  f"({loop['cards']} cards, {loop.get('waited', 0):.2f} s of it in wait(), "
                  f"CPU of the training process itself {loop['own_cpu']:.2f} s"
                  f"{'; registered ' + where if where else ''})", flush=True)  # fmt: skip
            shutil.rmtree(repo)
    return samples


def report(
    args: argparse.Namespace, threads: str, modes: list[str], samples: dict[str, list[Sample]]
) -> None:
    figures = {mode: Figure(tuple(samples[mode])) for mode in modes}
    for mode, figure in figures.items():
        print(f"threads {threads}, {args.saves} saves of {args.size_mb} MB, {mode + ':':<11} "
              f"median {figure.seconds:7.2f} s, CPU {figure.cpu_seconds:7.2f} s, "
              f"peak RSS {figure.rss_mb:7.1f} MB ({figure.runs()})")  # fmt: skip
    for mode in modes[1:]:
        of_medians = figures[mode].seconds / figures["plain"].seconds
        rounds = [run.seconds / plain.seconds
                  for run, plain in zip(samples[mode], samples["plain"], strict=True)]  # fmt: skip
        ratio = statistics.median(rounds)
        target = f" (target <= {TARGET_RATIO})" if mode in ("background", "thread") else ""
        print(f"threads {threads}, ratio {mode} / plain: {ratio:.3f} median of the rounds' "
              f"ratios ({', '.join(f'{r:.3f}' for r in rounds)}); ratio of the medians "
              f"{of_medians:.3f}{target}")  # fmt: skip
        if mode == "background":
            print(verdict(ratio <= TARGET_RATIO))


def train(args: argparse.Namespace) -> None:
    """The child: one training run in the current directory (a fresh repository)."""
    import torch

    if args.threads != "default":
        torch.set_num_threads(int(args.threads))
    torch.manual_seed(0)
    # Three layers of width w hold ~(2*1024*w + w*w) float32 parameters.
    hidden = int((-2 * WIDTH_IN + (4 * WIDTH_IN**2 + 4 * args.size_mb * 2**20 / 4) ** 0.5) / 2)
    model = torch.nn.Sequential(
        torch.nn.Linear(WIDTH_IN, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, WIDTH_IN),
    )  # fmt: skip
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    inputs = torch.randn(512, WIDTH_IN)
    targets = torch.sin(inputs)  # something learnable
    folder = Path("checkpoints")
    folder.mkdir()
    start = time.perf_counter()
    if args.child == "thread":
        os.environ["DVCCKPT_SAVE_WORKER"] = "thread"
    if args.child != "plain":
        import dvcckpt  # its import is part of what dvcckpt costs the loop
        from dvcckpt.cards import saveprocess
    step = 0
    for _ in range(args.saves):
        for _ in range(args.steps):
            batch = torch.randint(0, len(inputs), (BATCH,))
            loss = torch.nn.functional.mse_loss(model(inputs[batch]), targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
        path = folder / f"step-{step:06d}.pt"
        torch.save(model.state_dict(), path)
        if args.child != "plain":
            dvcckpt.save(path, model="bench", step=step, metrics={"train": {"loss": loss.item()}},
                         background=args.child in ("background", "thread"))  # fmt: skip
    trained = time.perf_counter()
    cards = len(dvcckpt.wait()) if args.child in ("background", "thread") else 0
    if args.child == "sync":
        cards = args.saves
    seconds = time.perf_counter() - start
    if args.child != "plain" and len(list(folder.glob("*.ckpt.yaml"))) != args.saves:
        raise SystemExit(f"expected {args.saves} cards in {folder}")
    waited = seconds - (trained - start)  # the registrations still pending when training ended
    ran = dict(saveprocess.ran) if args.child != "plain" else {}  # where registrations ran
    usage = resource.getrusage(resource.RUSAGE_SELF)  # this process alone, not its helper
    own = usage.ru_utime + usage.ru_stime
    Path(args.report).write_text(json.dumps(
        {"seconds": seconds, "cards": cards, "waited": waited, "ran": ran, "own_cpu": own}
    ))  # fmt: skip


if __name__ == "__main__":
    main()
