"""PyTorch Lightning: `DvcckptCallback` in a real `Trainer` run, in a real git + DVC repo.

A tiny linear classifier trains for four epochs on synthetic data, keeping the two best
checkpoints by `val_acc`; every save gets a card, the ones top-k deleted are pruned, the
hook accepts the lot and `git commit` works. `dvcckpt add` reads Lightning's names.
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dvcckpt.cards import card
from dvcckpt.core import layout
from tests.conftest import BIN, git, write_checkpoint

torch = pytest.importorskip("torch")
lightning = pytest.importorskip("lightning")
from dvcckpt.integrations.lightning import DvcckptCallback  # noqa: E402

SEED = 7
EPOCHS = 4


class TinyClassifier(lightning.LightningModule):  # type: ignore[misc]
    """Logistic regression over 8 features; learns slowly so val_acc climbs epoch by epoch."""

    def __init__(self, features: int = 8, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(features, 2)

    def training_step(self, batch: Any, _: int) -> Any:
        inputs, labels = batch
        loss = torch.nn.functional.cross_entropy(self.layer(inputs), labels)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, _: int) -> None:
        inputs, labels = batch
        logits = self.layer(inputs)
        self.log("val_loss", torch.nn.functional.cross_entropy(logits, labels))
        self.log("val_acc", (logits.argmax(dim=1) == labels).float().mean())
        self.log("val_diverged", torch.tensor(float("nan")))  # never reaches a card

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loaders() -> tuple[Any, Any]:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(320, 8, generator=generator)
    labels = (inputs @ torch.linspace(-1, 1, 8) > 0).long()
    data = torch.utils.data.TensorDataset(inputs, labels)
    train, val = torch.utils.data.random_split(data, [256, 64], generator=generator)
    return (
        torch.utils.data.DataLoader(train, batch_size=32, shuffle=True, generator=generator),
        torch.utils.data.DataLoader(val, batch_size=64),
    )


def train(
    repo: Path, kind: type[DvcckptCallback] = DvcckptCallback, **options: Any
) -> DvcckptCallback:
    lightning.seed_everything(SEED, verbose=False)
    settings = {"monitor": "val_acc", "mode": "max", "save_top_k": 2, **options}
    callback = kind(
        dirpath=repo / "models/tiny",
        filename="{epoch}-{step}-{val_acc:.3f}",
        model="tiny",
        **settings,
    )
    trainer = lightning.Trainer(
        max_epochs=EPOCHS,
        accelerator="cpu",
        devices=1,
        callbacks=[callback],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=repo / "lightning",
    )
    trainer.fit(TinyClassifier(), *loaders())
    assert trainer.state.finished  # whatever dvcckpt did, training ran to its end
    return callback


def card_of(checkpoint: Path) -> dict[str, Any]:
    return card.read(layout.card_path_for(checkpoint), 1 << 20).data


def commit(repo: Path, message: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["git", "commit", "-qm", message], cwd=repo, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize("background", [True, False], ids=["background", "synchronous"])
def test_lightning_run_registers_saves_and_prunes_top_k(
    repo: Path, cli, caplog, background: bool
) -> None:
    assert cli("install-hook").code == 0
    saved: list[str] = []
    removed: list[str] = []

    class Watching(DvcckptCallback):
        def _save_checkpoint(self, trainer: Any, filepath: str) -> None:
            saved.append(filepath)
            super()._save_checkpoint(trainer, filepath)

        def _remove_checkpoint(self, trainer: Any, filepath: str) -> None:
            removed.append(filepath)
            super()._remove_checkpoint(trainer, filepath)

    with caplog.at_level(logging.WARNING, logger="dvcckpt"):
        callback = train(repo, Watching, save_last=True, background=background)

    assert not callback.failures, callback.failures
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "'val_diverged' = tensor(nan) is not a finite scalar" in caplog.text
    kept = sorted((repo / "models/tiny").glob("epoch=*.ckpt"))
    assert len(kept) == 2 and removed, (saved, removed)  # top-k deleted at least one
    assert {str(path) for path in kept} == set(callback.best_k_models)
    for path in kept:
        data = card_of(path)
        epoch, step, acc = (part.split("=")[1] for part in path.stem.split("-"))
        assert data["checkpoint"]["epoch"] == int(epoch)
        assert data["checkpoint"]["step"] == int(step) > 0
        assert data["checkpoint"]["kind"] == "full"
        assert math.isclose(data["metrics"]["val"]["acc"], float(acc), abs_tol=5e-4)
        assert set(data["metrics"]["val"]) == {"loss", "acc"}
        assert set(data["metrics"]["train"]) == {"loss"}
        assert data["seeds"]["seed"] == SEED
        assert data["params"] == {"features": 8, "lr": 0.05}
        assert data["x-lightning"]["monitor"] == "val.acc"
        assert data["x-lightning"]["mode"] == "max"
        assert "tombstone" not in data
    for gone in map(Path, removed):
        assert not gone.exists()
        data = card_of(gone)
        assert data["tombstone"]["reason"] == "save_top_k"
        assert data["tombstone"].get("kind") == "pruned"
        assert not layout.pointer_path_for(gone).exists()

    check = cli("check")
    assert check.code == 0, check.err
    done = commit(repo, "tiny run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(repo, "status", "--porcelain", "--", "models") == "?? models/tiny/last.ckpt\n"
    assert cli("verify", "--all").code == 0
    # Lightning writes last.ckpt only where it also saved a top-k checkpoint: that state
    # is registered under the checkpoint's name, and last.ckpt itself is not.
    last = repo / "models/tiny/last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == EPOCHS * 8
    assert not layout.card_path_for(last).exists()


def test_registration_failure_is_logged_and_training_completes(repo: Path, caplog) -> None:
    # The project requires a dataset on every card: each registration is refused.
    (repo / "dvcckpt.yaml").write_text("version: 1\nproject: p\nrequired:\n  all: [data.dataset]\n")
    with caplog.at_level(logging.ERROR, logger="dvcckpt"):
        callback = train(repo)

    kept = sorted((repo / "models/tiny").glob("*.ckpt"))
    assert len(kept) == 2  # Lightning carried on saving and pruning its own files
    assert not any(layout.card_path_for(path).exists() for path in kept)
    assert callback.failures and "data.dataset" in caplog.text
    assert "registration problem(s) during training" in caplog.text


def test_add_reads_a_lightning_file_name(repo: Path, cli) -> None:
    checkpoint = write_checkpoint(repo / "models/l/epoch=4-step=50-val_acc=0.840.ckpt")

    result = cli("add", str(checkpoint.relative_to(repo)), "--model", "tiny")

    assert result.code == 0, result.err
    data = card_of(checkpoint)
    # The card never doubles the suffix: epoch=...ckpt.yaml, not epoch=...ckpt.ckpt.yaml.
    assert (repo / "models/l/epoch=4-step=50-val_acc=0.840.ckpt.yaml").is_file()
    assert not (repo / "models/l/epoch=4-step=50-val_acc=0.840.ckpt.ckpt.yaml").exists()
    assert data["checkpoint"]["step"] == 50 and data["checkpoint"]["epoch"] == 4
    assert data["metrics"] == {"val": {"acc": 0.84}}
