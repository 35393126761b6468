"""Stage state from reviewed history: `stages`, `MODEL@STAGE` and `check --base` on a big history.

    python benchmarks/bench_trust.py [--commits 10000] [--decisions 200] [--toy]

Builds the synthetic history (gen_history.py), commits a signing policy on main,
then one commit per signed promotion (real ssh-keygen signatures, bound to the
card version) and a pull-request branch adding 5 more. Targets: `stages` and
`show MODEL@STAGE` <= 0.5 s warm; `check --base main` of the 5-decision PR <= 1 s.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measure, parse_args, scratch, tool, verdict
from gen_history import generate

from dvcckpt.adapters import signing, yamldoc
from dvcckpt.core import decision as decision_format

PRINCIPAL = "bench@example.com"
CONFIG = (
    "version: 1\nproject: bench\nstages: [dev, staging, production]\nnaming: {enforce: false}\n"
    "promotion: {require_signed: true, allowed_signers: .dvcckpt/allowed_signers}\n"
    f"owners:\n  - {{model: '*', stage: '*', principals: [{PRINCIPAL}]}}\n"
)


def git(repo: Path, *args: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], input=stdin, capture_output=True,
                          check=True)  # fmt: skip
    return done.stdout.decode()


def signed(card: dict[str, Any], path: str, stage: str, key: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {"verdict": "promoted", "stage": stage, "at": "2026-06-01T00:00:00Z",
                             "rationale": "benchmark", "gates": []}  # fmt: skip
    entry["card"] = decision_format.binding(card, path)
    entry["signature"] = {"principal": PRINCIPAL, "namespace": decision_format.NAMESPACE}
    entry["signature"]["sig"] = signing.sign(decision_format.payload(entry), key)
    card = dict(card)
    card["decisions"] = [*(card.get("decisions") or []), entry]
    return card


def pointer(card: dict[str, Any]) -> tuple[str, bytes]:
    """The `.dvc` file a card refers to (the synthetic history has none)."""
    meta = card["checkpoint"]
    name = meta["path"].rsplit("/", 1)[-1]
    text = (f"outs:\n- md5: {meta['dvc']['md5']}\n  size: {meta['dvc']['size']}\n"
            f"  hash: md5\n  path: {name}\n")  # fmt: skip
    return meta["dvc"]["file"], text.encode()


def fast_import(repo: Path, branch: str, commits: list[dict[str, bytes]]) -> None:
    """Append one commit per mapping of path -> content to `branch`."""
    out = []
    for index, files in enumerate(commits):
        message = f"decision {index}".encode()
        out.append(f"commit refs/heads/{branch}\n".encode())
        out.append(b"committer Bench <bench@example.com> 1780000000 +0000\n")
        out.append(b"data %d\n%s\n" % (len(message), message))
        if index == 0:
            out.append(f"from refs/heads/{branch}^0\n".encode())
        for path, content in files.items():
            out.append(f"M 100644 inline {path}\n".encode())
            out.append(b"data %d\n%s\n" % (len(content), content))
    git(repo, "fast-import", "--quiet", stdin=b"".join(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parse_args(parser, toy={"commits": 60, "decisions": 6, "runs": 3})
    work = scratch()
    keep = work
    try:
        repo = work / "history"
        generate(repo, args.commits, 3)
        key = work / "key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        kind, blob = key.with_suffix(".pub").read_text().split()[:2]
        signers = f'{PRINCIPAL} namespaces="dvcckpt" {kind} {blob}\n'.encode()
        fast_import(repo, "main", [{"dvcckpt.yaml": CONFIG.encode(),
                                    ".dvcckpt/allowed_signers": signers}])  # fmt: skip
        cards = [p for p in git(repo, "ls-tree", "-r", "--name-only", "main").split()
                 if p.endswith(".ckpt.yaml")]  # fmt: skip
        chosen = cards[: args.decisions + 5]
        # dvcckpt's own reader and writer: the binding must see the card as dvcckpt does.
        loaded = [yamldoc.to_plain(yamldoc.load_fast(git(repo, "show", f"main:{p}"), p))
                  for p in chosen]  # fmt: skip
        stages = ("dev", "staging", "production")
        commits = [
            {path: yamldoc.dump(signed(card, path, stages[i % 3], key)).encode()}
            for i, (path, card) in enumerate(zip(chosen[:-5], loaded[:-5], strict=True))
        ]
        fast_import(repo, "main", commits)
        git(repo, "branch", "pr", "main")
        pr = {path: yamldoc.dump(signed(card, path, "dev", key)).encode()
              for path, card in zip(chosen[-5:], loaded[-5:], strict=True)}  # fmt: skip
        pr.update(pointer(card) for card in loaded[-5:])
        fast_import(repo, "pr", [pr])
        git(repo, "checkout", "-q", "-f", "pr")
        dvcckpt = tool("dvcckpt")
        model = loaded[0]["model"]
        cold = measure([dvcckpt, "stages", "--json"], repo, runs=1)
        warm = measure([dvcckpt, "stages", "--json"], repo, runs=args.runs)
        show = measure([dvcckpt, "show", f"{model}@{stages[0]}", "--json"], repo, runs=args.runs)
        check = measure([dvcckpt, "check", "--base", "main"], repo, runs=args.runs)
        counted = subprocess.run([dvcckpt, "audit", "--json"], cwd=repo, capture_output=True,
                                 text=True, check=True).stdout.count('"status": "verified"')  # fmt: skip
    except subprocess.CalledProcessError as exc:
        print(exc.stderr, file=sys.stderr)
        raise
    finally:
        if not __import__("os").environ.get("BENCH_KEEP"):
            shutil.rmtree(keep, ignore_errors=True)
    print(f"history: {args.commits} commits + {args.decisions} signed decisions "
          f"({counted} verified by the replay)")  # fmt: skip
    rows = [
        ("stages (cold: replay + signature checks)", cold, "no target"),
        ("stages (warm)", warm, "target <= 0.5 s"),
        (f"show {model}@dev (warm)", show, "target <= 0.5 s"),
        ("check --base main, 5 decisions", check, "target <= 1 s"),
    ]
    for label, figure, target in rows:
        print(f"{label + ':':<42} median {figure.seconds:6.3f} s, peak RSS "
              f"{figure.rss_mb:5.0f} MB ({figure.runs()}; {target})")  # fmt: skip
    ok = warm.seconds <= 0.5 and show.seconds <= 0.5 and check.seconds <= 1.0
    ok = ok and counted == args.decisions
    print(verdict(ok))


if __name__ == "__main__":
    main()
