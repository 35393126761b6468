"""The Python API used from training loops."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

import dvcckpt
from dvcckpt.errors import StateError, UsageError
from tests.conftest import git, write_checkpoint


def test_save_registers_like_add_and_load_card_finds_it(repo: Path) -> None:
    write_checkpoint(repo / "models/clf/step-000100.pt")
    (repo / "cfg.yaml").write_text("lr: 0.1\n")
    saved = dvcckpt.save(
        "models/clf/step-000100.pt",
        model="clf",
        step=100,
        epoch=1,
        phase="finetune",
        metrics={"dev": {"macro_f1": 0.81, "class_f1": {"neg": 0.7, "pos": 0.9}}},
        params={"lr": 0.1},
        seeds=7,
        tags=["sweep"],
        config_file="cfg.yaml",
        resources={"latency_ms_p95": 12.5},
        extra={"x-team": {"owner": "nlp"}},
    )
    # One id per run: derived once per training process and recorded in run.id.
    assert saved.name == f"clf-finetune-full-{saved.data['run']['id']}-step000100"
    loaded = dvcckpt.load_card(saved.name)
    assert loaded.data == saved.data
    assert loaded.data["seeds"] == {"seed": 7}
    assert loaded.data["x-team"] == {"owner": "nlp"}
    assert loaded.data["code"]["config_sha256"] == hashlib.sha256(b"lr: 0.1\n").hexdigest()
    assert "models/clf/step-000100.pt.ckpt.yaml" in git(repo, "diff", "--cached", "--name-only")


def test_save_records_the_training_script_that_called_it(repo: Path) -> None:
    (repo / "train_loop.py").write_text(
        "import dvcckpt, pathlib\n"
        "p = pathlib.Path('out/step-5.bin'); p.parent.mkdir(); p.write_bytes(b'w' * 100)\n"
        "dvcckpt.save(p, model='loop', metrics={'dev': {'loss': 0.5}})\n"
    )
    subprocess.run([sys.executable, "train_loop.py", "--epochs", "1"], cwd=repo, check=True)
    data = dvcckpt.load_card("out/step-5.bin", repo=repo).data
    assert data["code"]["script"] == "train_loop.py"
    assert data["code"]["command"].endswith("train_loop.py --epochs 1")
    assert data["checkpoint"]["step"] == 5


def test_api_raises_typed_errors(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        dvcckpt.save("missing.pt", model="m", step=1)
    write_checkpoint(repo / "m/a.pt")
    with pytest.raises(UsageError, match="needs step"):
        dvcckpt.save("m/a.pt", model="m")
    with pytest.raises(StateError):
        dvcckpt.load_card("nothing-here")


def test_api_evaluate_forwards_to_the_evaluate_service() -> None:
    import inspect

    from dvcckpt import api
    from dvcckpt.cards import evaluate as service

    wrapper, target = inspect.signature(api.evaluate), inspect.signature(service.evaluate)
    assert list(wrapper.parameters) == list(target.parameters)
    assert all(
        wrapper.parameters[name].kind == target.parameters[name].kind
        and wrapper.parameters[name].default == target.parameters[name].default
        for name in target.parameters
    )
