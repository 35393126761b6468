"""`dvcckpt quickstart DIR`: a complete, offline demo of the registry.

Creates a git + DVC repository with a local DVC remote, writes a small training
script that registers one checkpoint per epoch through `dvcckpt.save`, runs it,
pushes the checkpoints to the remote and prints what was recorded.
"""

from __future__ import annotations

import shutil
import string
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from dvcckpt.adapters import dvcrepo as store
from dvcckpt.adapters import git
from dvcckpt.cards import card
from dvcckpt.core import config, layout, resources
from dvcckpt.errors import StateError, UsageError
from dvcckpt.setup import demo

REMOTE_DIR = ".dvc-remote"


def run(directory: Path, epochs: int, seed: int, echo: Callable[[str], None]) -> list[card.Card]:
    root = _new_directory(directory)
    echo(f"creating a git + DVC repository in {root}")
    _init_repository(root)
    _write_project(root, epochs, seed)
    git.run_git(root, "add", "--all")
    git.run_git(root, "commit", "--quiet", "-m", "Set up quickstart project")
    echo(f"training {epochs} epochs (seed {seed}), registering a checkpoint per epoch")
    _train(root, echo)
    cards = sorted(root.glob(f"models/sentiment/*{layout.CARD_SUFFIX}"))
    recorded = [card.read(c) for c in cards]
    pushed = store.push(root, [_checkpoint_of(root, c) for c in recorded])
    echo(f"pushed {pushed} file(s) to the local DVC remote {root / REMOTE_DIR}")
    echo("")
    echo(_summary(recorded))
    echo("")
    echo(f"next: cd {root} && dvcckpt show {recorded[-1].name}")
    return recorded


def _new_directory(directory: Path) -> Path:
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise UsageError(
            f"{directory} already exists and is not empty",
            hint="pick a new directory name; quickstart never touches existing files",
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(
            f"cannot create {directory}: {exc.strerror}", hint="pick a writable place"
        ) from exc
    return directory.resolve()


def _init_repository(root: Path) -> None:
    git.run_git(root, "init", "--quiet", "--initial-branch=main")
    if not git.config_value(root, "user.email"):
        # A fresh machine may have no git identity; commits need one.
        git.run_git(root, "config", "user.name", "dvcckpt quickstart")
        git.run_git(root, "config", "user.email", "quickstart@dvcckpt.invalid")
    store.init(root)
    store.set_remote(root, "local", {"url": str(root / REMOTE_DIR)}, {}, default=True)


def _write_project(root: Path, epochs: int, seed: int) -> None:
    fill = {"project": "quickstart", "epochs": str(epochs), "seed": str(seed)}
    _render(resources.template_path(config.CONFIG_FILE), root / config.CONFIG_FILE, fill)
    _render(resources.template_path("quickstart/params.yaml"), root / "params.yaml", fill)
    shutil.copyfile(resources.template_path("quickstart/train.py"), root / "train.py")
    (root / ".gitignore").write_text(f"/{REMOTE_DIR}/\n", encoding="utf-8")
    data = root / "data"
    data.mkdir()
    for split, source in demo.data_files().items():
        shutil.copyfile(source, data / f"tweets_{split}.csv")


def _render(template: Path, target: Path, fill: dict[str, str]) -> None:
    text = string.Template(template.read_text(encoding="utf-8")).safe_substitute(fill)
    target.write_text(text, encoding="utf-8")


def _train(root: Path, echo: Callable[[str], None]) -> None:
    done = subprocess.run(
        [sys.executable, "train.py"], cwd=root, capture_output=True, text=True, check=False
    )
    for line in done.stdout.splitlines():
        echo(f"  {line}")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise StateError(f"train.py failed: {last}", hint=f"run `python train.py` in {root}")


def _checkpoint_of(root: Path, recorded: card.Card) -> Path:
    return root / str(recorded.data["checkpoint"]["path"])  # the card says (`core.layout`)


def _summary(cards: list[card.Card]) -> str:
    header = ("checkpoint", "step", "dev acc", "dev macro_f1", "test macro_f1", "sha256")
    rows = [header]
    for item in cards:
        data = item.data
        metrics = data["metrics"]
        rows.append((
            item.name,
            str(data["checkpoint"]["step"]),
            str(metrics["dev"]["accuracy"]),
            str(metrics["dev"]["macro_f1"]),
            str(metrics["test"]["macro_f1"]),
            data["checkpoint"]["sha256"][:12],
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )
