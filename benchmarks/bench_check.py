"""`dvcckpt check` (the pre-commit hook) on one staged card and on 1,000.

Targets: one staged card <= 250 ms median wall (interpreter start included,
dvc not imported); 1,000 staged cards <= 5 s. Peak memory of each check is shown.

    python benchmarks/bench_check.py [--cards 1000] [--runs 15] [--toy]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from common import measure, new_repo, parse_args, scratch, tool, verdict

TARGET_ONE_MS = 250
TARGET_MANY_S = 5.0


def variant(template: str, index: int, md5: str, sha: str) -> str:
    """A realistic card for checkpoint `index`: same shape, different identity and hashes."""
    text = template.replace("step-000001.pt", f"step-{index:06d}.pt")
    text = text.replace("step000001", f"step{index:06d}").replace("step: 1\n", f"step: {index}\n")
    lines = []
    for line in text.splitlines(keepends=True):
        if line.startswith("  sha256: "):
            line = f"  sha256: {sha}\n"
        elif line.startswith("    md5: "):
            line = f"    md5: {md5}\n"
        lines.append(line)
    return "".join(lines).replace("macro_f1: 0.8", f"macro_f1: {0.5 + index % 500 / 1000}")


def stage_cards(repo: Path, template: str, pointer: str, first: int, count: int) -> None:
    for index in range(first, first + count):
        md5 = hashlib.md5(str(index).encode()).hexdigest()
        sha = hashlib.sha256(str(index).encode()).hexdigest()
        base = repo / f"models/m/step-{index:06d}.pt"
        Path(f"{base}.ckpt.yaml").write_text(variant(template, index, md5, sha))
        old_md5 = pointer.split("md5: ")[1].split()[0]
        Path(f"{base}.dvc").write_text(
            pointer.replace(old_md5, md5).replace("step-000001.pt", base.name)
        )
    subprocess.run(["git", "add", "--all"], cwd=repo, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cards", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    args = parse_args(parser, toy={"cards": 20, "runs": 3})
    work = scratch()
    try:
        repo = new_repo(work, "repo")
        ckpt = repo / "models/m/step-000001.pt"
        ckpt.parent.mkdir(parents=True)
        ckpt.write_bytes(b"\0" * 1024)
        subprocess.run([tool("dvcckpt"), "add", str(ckpt), "--seed", "1", "-p", "lr=0.001",
                        "-m", "dev.macro_f1=0.8", "-m", "dev.class_f1.neg=0.7",
                        "-m", "dev.class_f1.pos=0.9", "--data", "tweets=v1",
                        "--split", "train=sha256:aa", "--tag", "bench"],
                       cwd=repo, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        template = Path(f"{ckpt}.ckpt.yaml").read_text()
        pointer = Path(f"{ckpt}.dvc").read_text()
        print(f"card size: {len(template)} bytes")

        stage_cards(repo, template, pointer, 2, args.cards)
        many = measure([tool("dvcckpt"), "check"], repo, runs=3)
        subprocess.run(["git", "commit", "-qm", "cards", "--no-verify"], cwd=repo, check=True)

        stage_cards(repo, template, pointer, args.cards + 2, 1)
        one = measure([tool("dvcckpt"), "check"], repo, runs=args.runs)
        probe = ("import sys; from dvcckpt.cli import main; main(['check']); "
                 "print('dvc' in sys.modules, 'ruamel' in sys.modules)")  # fmt: skip
        imported = subprocess.run([sys.executable, "-c", probe], cwd=repo, capture_output=True,
                                  text=True, check=True).stdout.split()  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    many_label = f"check, {args.cards} staged cards:"
    print(f"{'check, 1 staged card:':<28} median {one.ms:6.0f} ms, peak RSS {one.rss_mb:5.1f} MB "
          f"({one.runs()}; target <= {TARGET_ONE_MS} ms)")  # fmt: skip
    print(f"{many_label:<28} median {many.seconds:6.2f} s,  peak RSS {many.rss_mb:5.1f} MB "
          f"({many.runs()}; target <= {TARGET_MANY_S} s)")  # fmt: skip
    print(f"dvc imported: {imported[0]}, ruamel imported: {imported[1]}")
    ok = one.ms <= TARGET_ONE_MS and many.seconds <= TARGET_MANY_S and imported[0] == "False"
    print(verdict(ok))


if __name__ == "__main__":
    main()
