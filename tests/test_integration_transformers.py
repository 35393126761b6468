"""Hugging Face Trainer integration: real Trainer runs of a tiny BERT in a real git + DVC repo.

The callback's cards are checked against the Trainer's own in-memory log history (not
against the files the reader parses), the hook and `git commit` accept them, and
`dvcckpt add checkpoint-N/` / `--metrics trainer_state.json` read the same records.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import pickle
import shutil
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch", reason="the integrations extra (torch) is not installed")
transformers = pytest.importorskip(
    "transformers", reason="the integrations extra (transformers) is not installed"
)
pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate")

from dvcckpt.adapters import yamldoc  # noqa: E402
from dvcckpt.integrations.transformers import DvcckptCallback  # noqa: E402
from tests.conftest import git  # noqa: E402

MAX_STEPS, EVERY = 20, 5
STEPS = list(range(EVERY, MAX_STEPS + 1, EVERY))


class Synthetic(torch.utils.data.Dataset):  # type: ignore[misc]
    """Token sequences labelled by their first token: learnable, tiny, deterministic."""

    def __init__(self, size: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.tokens = torch.randint(0, 100, (size, 8), generator=generator)
        self.labels = (self.tokens[:, 0] >= 50).long()

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, index: int) -> dict[str, Any]:
        ones = torch.ones(8, dtype=torch.long)
        return {
            "input_ids": self.tokens[index],
            "attention_mask": ones,
            "labels": self.labels[index],
        }


def accuracy(prediction: Any) -> dict[str, float]:
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def train(
    output: Path,
    callback: DvcckptCallback | None,
    metrics: Callable[[Any], dict[str, float]] = accuracy,
    **arguments: Any,
) -> Any:
    """One real Trainer run (about a second on a CPU); returns the trainer."""
    torch.manual_seed(0)
    config = transformers.BertConfig(
        num_hidden_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=37,
        vocab_size=100,
    )  # fmt: skip
    settings = dict(
        output_dir=str(output), max_steps=MAX_STEPS, save_steps=EVERY, eval_strategy="steps",
        eval_steps=EVERY, logging_steps=EVERY, per_device_train_batch_size=8, seed=7,
        learning_rate=3e-4, metric_for_best_model="accuracy", report_to=[], use_cpu=True,
        disable_tqdm=True,
    )  # fmt: skip
    args = transformers.TrainingArguments(**{**settings, **arguments})
    trainer = transformers.Trainer(
        model=transformers.BertForSequenceClassification(config),
        args=args,
        train_dataset=Synthetic(200, 1),
        eval_dataset=Synthetic(48, 2),
        compute_metrics=metrics,
        callbacks=[callback] if callback else [],
    )
    trainer.train()
    return trainer


def card_of(root: Path, folder: str) -> dict[str, Any]:
    cards = sorted((root / "out").glob(f"{folder}*.ckpt.yaml"))
    assert len(cards) == 1, cards
    document: dict[str, Any] = yamldoc.load_untrusted(cards[0].read_text(), str(cards[0]))
    return document


def logged(trainer: Any, step: int, key: str) -> Any:
    """What the Trainer logged for `key` at `step` (its own in-memory history)."""
    return next(e[key] for e in trainer.state.log_history if e["step"] == step and key in e)


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    # One thread: a model this small only loses time to thread start-up and spinning.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def hf_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Checkpoint folders of one plain Trainer run (no dvcckpt), copied into tests' repos."""
    output = tmp_path_factory.mktemp("hf-run") / "out"
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        torch.set_num_threads(1)
        train(output, None)
        torch.set_num_threads(threads)
    yield output


def test_each_save_is_registered_with_its_own_step_metrics_best_and_seed(repo: Path, cli) -> None:
    callback = DvcckptCallback(model="tiny-bert", tags=["hf"])
    trainer = train(repo / "out", callback)

    assert callback.failures == []
    run_ids = set()
    for step in STEPS:
        card = card_of(repo, f"checkpoint-{step}")
        assert card["checkpoint"]["step"] == step
        assert card["checkpoint"]["epoch"] == logged(trainer, step, "epoch")
        assert card["metrics"]["eval"]["loss"] == logged(trainer, step, "eval_loss")
        assert card["metrics"]["eval"]["accuracy"] == logged(trainer, step, "eval_accuracy")
        assert card["metrics"]["train"]["loss"] == logged(trainer, step, "loss")
        assert not any(
            "runtime" in name or "per_second" in name for name in card["metrics"]["eval"]
        )
        so_far = [logged(trainer, s, "eval_accuracy") for s in STEPS if s <= step]
        best = card["training"]["x-best_model"]
        assert best["value"] == max(so_far) and best["metric"] == "eval.accuracy"
        assert best["checkpoint"] == f"checkpoint-{best['step']}" and best["mode"] == "max"
        assert card["seeds"]["seed"] == 7
        assert card["params"]["learning_rate"] == 3e-4
        assert card["params"]["per_device_train_batch_size"] == 8
        assert card["model"] == "tiny-bert" and "hf" in card["tags"]
        run_ids.add(card["run"]["id"])
    assert len(run_ids) == 1  # one train(), one run

    assert cli("check").code == 0
    git(repo, "commit", "--quiet", "-m", "checkpoints")
    assert git(repo, "status", "--porcelain", "--", "out") == ""


def test_save_total_limit_leaves_the_deleted_folders_pruned(repo: Path, cli) -> None:
    callback = DvcckptCallback(model="tiny-bert")
    # Without a best metric, the Trainer keeps only the newest two folders.
    train(repo / "out", callback, save_total_limit=2, metric_for_best_model=None)

    assert callback.failures == []
    kept = sorted(p.name for p in (repo / "out").iterdir() if p.is_dir())
    assert kept == ["checkpoint-15", "checkpoint-20"]
    for step in (5, 10):
        stone = card_of(repo, f"checkpoint-{step}")["tombstone"]
        assert stone["kind"] == "pruned" and stone["reason"] == "save_total_limit"
        assert not (repo / "out" / f"checkpoint-{step}.dvc").exists()
    for step in (15, 20):
        assert "tombstone" not in card_of(repo, f"checkpoint-{step}")
    assert cli("check").code == 0
    git(repo, "commit", "--quiet", "-m", "checkpoints")


@pytest.mark.parametrize("background", [False, True], ids=["foreground", "background"])
def test_a_failed_registration_is_logged_once_and_training_completes(
    repo: Path, caplog: pytest.LogCaptureFixture, background: bool
) -> None:
    evaluations: list[int] = []

    def diverging(prediction: Any) -> dict[str, float]:
        evaluations.append(1)
        return {"accuracy": math.nan if len(evaluations) == 2 else 0.5}

    callback = DvcckptCallback(model="tiny-bert", background=background)
    with caplog.at_level(logging.ERROR, logger="dvcckpt"):
        trainer = train(
            repo / "out",
            callback,
            metrics=diverging,
            save_total_limit=2,
            metric_for_best_model=None,
        )

    assert trainer.state.global_step == MAX_STEPS
    assert len(callback.failures) == 1 and "checkpoint-10" in callback.failures[0]
    assert "eval.accuracy is nan" in callback.failures[0]
    assert any("checkpoint-10" in r.getMessage() for r in caplog.records)
    assert "1 checkpoint registration problem" in caplog.records[-1].getMessage()
    assert not list((repo / "out").glob("checkpoint-10*.ckpt.yaml"))
    # The folder rotated out is pruned; the failed one had no card.
    assert card_of(repo, "checkpoint-5")["tombstone"]["reason"] == "save_total_limit"
    for step in (15, 20):
        assert card_of(repo, f"checkpoint-{step}")["checkpoint"]["step"] == step


def test_a_rerun_into_the_same_output_folder_registers_under_new_names(repo: Path, cli) -> None:
    first = DvcckptCallback(model="tiny-bert", run_id="first")
    train(repo / "out", first)
    git(repo, "commit", "--quiet", "-m", "first run")

    second = DvcckptCallback(model="tiny-bert", run_id="second")
    trainer = train(repo / "out", second, learning_rate=1e-4)

    assert trainer.state.global_step == MAX_STEPS  # the re-run was never stopped
    assert second.failures == []
    for step in STEPS:
        new = repo / "out" / f"checkpoint-{step}.second.ckpt.yaml"
        document = yamldoc.load_untrusted(new.read_text(), str(new))
        assert document["run"]["id"] == "second" and document["params"]["learning_rate"] == 1e-4
    assert cli("check").code == 0
    git(repo, "commit", "--quiet", "-m", "second run")


def test_add_alone_reads_the_trainer_state_of_the_folder(repo: Path, hf_run: Path, cli) -> None:
    shutil.copytree(hf_run / "checkpoint-10", repo / "out" / "checkpoint-10")
    state = json.loads((hf_run / "checkpoint-10" / "trainer_state.json").read_text())
    evaluation = next(e for e in state["log_history"] if e["step"] == 10 and "eval_loss" in e)

    result = cli("add", "out/checkpoint-10", "--model", "tiny-bert")

    assert result.code == 0, result.err
    card = card_of(repo, "checkpoint-10")
    assert card["checkpoint"]["step"] == 10 and card["checkpoint"]["epoch"] == evaluation["epoch"]
    assert card["metrics"]["eval"] == {
        "loss": evaluation["eval_loss"],
        "accuracy": evaluation["eval_accuracy"],
    }
    assert card["seeds"]["seed"] == 7 and card["params"]["learning_rate"] == 3e-4
    assert cli("check").code == 0


def test_metrics_from_a_trainer_state_are_those_of_the_checkpoint_step(
    repo: Path, hf_run: Path, cli
) -> None:
    shutil.copytree(hf_run / "checkpoint-10", repo / "out" / "checkpoint-10")
    weights = repo / "out" / "model.safetensors"
    shutil.copy(hf_run / "checkpoint-20" / "model.safetensors", weights)
    # Recognised by its content, whatever its name: the final state holds every step.
    final = repo / "final-state.json"
    shutil.copy(hf_run / "checkpoint-20" / "trainer_state.json", final)
    history = json.loads(final.read_text())["log_history"]

    def at(step: int) -> float:
        return float(
            next(e["eval_loss"] for e in history if e["step"] == step and "eval_loss" in e)
        )

    assert cli("add", "out/checkpoint-10", "--model", "m", "--metrics", str(final)).code == 0
    assert card_of(repo, "checkpoint-10")["metrics"]["eval"]["loss"] == at(10)
    # A step between evaluations takes the latest evaluation before it.
    result = cli("add", str(weights), "--model", "m", "--step", "12", "--metrics", str(final))
    assert result.code == 0, result.err
    assert card_of(repo, "model.safetensors")["metrics"]["eval"]["loss"] == at(10)
    # Without a step, the state's own global step and its metrics.
    os.remove(repo / "out" / "model.safetensors.ckpt.yaml")
    result = cli("add", str(weights), "--model", "m", "--force", "--metrics", str(final))
    assert result.code == 0, result.err
    card = card_of(repo, "model.safetensors")
    assert card["checkpoint"]["step"] == 20 and card["metrics"]["eval"]["loss"] == at(20)


def test_splits_follow_the_evaluation_prefixes(repo: Path, cli) -> None:
    folder = repo / "out" / "checkpoint-3"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    entries = [
        {"step": 3, "epoch": 1.0, "loss": 0.5, "grad_norm": 1.0, "learning_rate": 1e-4},
        {"step": 3, "eval_dev_loss": 0.4, "eval_dev_f1": 0.8, "eval_dev_runtime": 1.0,
         "eval_dev_samples_per_second": 9.0, "eval_loss": 0.3, "eval_runtime": 2.0},
        {"step": 3, "test_accuracy": 0.7, "test_runtime": 1.0, "test_label": "text"},
        {"step": 2, "eval_loss": 0.9, "eval_runtime": 1.0},
    ]  # fmt: skip
    state = {"global_step": 3, "epoch": 1.0, "log_history": entries}
    (folder / "trainer_state.json").write_text(json.dumps(state))

    assert cli("add", "out/checkpoint-3", "--model", "m").code == 0

    assert card_of(repo, "checkpoint-3")["metrics"] == {
        "train": {"loss": 0.5},
        "dev": {"loss": 0.4, "f1": 0.8},
        "eval": {"loss": 0.3},
        "test": {"accuracy": 0.7},
    }


class _RunsCode:
    """Pickles as `os.system(...)`: what a hostile training_args.bin would hold."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.command,))


def _torch_archive(payload: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("training_args/data.pkl", payload)
        archive.writestr("training_args/version", "3\n")
    return buffer.getvalue()


def _system_payload(marker: Path) -> bytes:
    return pickle.dumps(_RunsCode(f"touch {marker}"), protocol=2)


def _exec_payload(marker: Path) -> bytes:
    # The classic: builtins.exec of a string, through REDUCE (protocol 0).
    return f"cbuiltins\nexec\n(Vopen({str(marker)!r}, 'w').close()\ntR.".encode()


@pytest.mark.parametrize("payload", [_system_payload, _exec_payload], ids=["system", "exec"])
def test_a_hostile_training_args_bin_runs_nothing(
    repo: Path, hf_run: Path, cli, tmp_path: Path, payload: Callable[[Path], bytes]
) -> None:
    # The payload is real: unpickled the usual way, it runs.
    control = tmp_path / "control"
    pickle.loads(payload(control))
    assert control.exists()
    marker = tmp_path / "ran"
    folder = repo / "out" / "checkpoint-5"
    shutil.copytree(hf_run / "checkpoint-5", folder)
    (folder / "training_args.bin").write_bytes(_torch_archive(payload(marker)))

    result = cli("add", "out/checkpoint-5", "--model", "m")

    assert result.code == 2
    assert "training_args.bin" in result.err and "nothing was run" in result.err
    assert not marker.exists()
    assert not list((repo / "out").glob("*.ckpt.yaml"))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{", "invalid JSON"),
        ('{"global_step": "ten", "log_history": []}', "global_step is 'ten'"),
        ('{"global_step": 5, "log_history": {"step": 5}}', "log_history is not a list"),
        ('{"global_step": 5, "log_history": [{"step": 5, "eval_loss": NaN}]}', "eval.loss is nan"),
    ],
)
def test_a_malformed_trainer_state_is_an_error_naming_it(
    repo: Path, hf_run: Path, cli, content: str, problem: str
) -> None:
    folder = repo / "out" / "checkpoint-5"
    shutil.copytree(hf_run / "checkpoint-5", folder)
    (folder / "trainer_state.json").write_text(content)

    result = cli("add", "out/checkpoint-5", "--model", "m")

    assert result.code == 2
    assert "checkpoint-5/trainer_state.json" in result.err and problem in result.err
    assert "Traceback" not in result.err
    assert not list((repo / "out").glob("*.ckpt.yaml"))


def test_only_the_main_process_registers(repo: Path, hf_run: Path) -> None:
    shutil.copytree(hf_run / "checkpoint-5", repo / "out" / "checkpoint-5")
    args = transformers.TrainingArguments(output_dir=str(repo / "out"), report_to=[], use_cpu=True)
    control = transformers.TrainerControl()
    callback = DvcckptCallback(model="m", background=False)
    for main in (False, True):
        state = transformers.TrainerState(global_step=5, is_world_process_zero=main)
        callback.on_train_begin(args, state, control)
        callback.on_save(args, state, control)
        callback.on_train_end(args, state, control)
        registered = list((repo / "out").glob("*.ckpt.yaml"))
        assert len(registered) == (1 if main else 0)
    assert [card.data["checkpoint"]["step"] for card in callback.cards] == [5]
