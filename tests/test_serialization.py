"""Serialization per file, by content: a Hugging Face folder holding pickles is not `safetensors`."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from dvcckpt.adapters import serialization
from dvcckpt.cards import card
from tests.conftest import git

torch = pytest.importorskip("torch", reason="torch comes with the integrations extra")
safetensors_torch = pytest.importorskip("safetensors.torch")


def hf_folder(folder: Path) -> Path:
    """What `Trainer` saves: safetensors weights, a pickled optimizer and training arguments."""
    folder.mkdir(parents=True)
    safetensors_torch.save_file({"w": torch.zeros(4, 4)}, str(folder / "model.safetensors"))
    torch.save({"state": {0: {"exp_avg": torch.ones(4)}}}, folder / "optimizer.pt")
    torch.save({"lr": 1e-4}, folder / "training_args.bin", _use_new_zipfile_serialization=False)
    (folder / "config.json").write_text('{"model_type": "bert"}')
    return folder


def test_formats_are_read_from_content_not_names(tmp_path: Path) -> None:
    weights = tmp_path / "weights.bin"
    safetensors_torch.save_file({"w": torch.zeros(2)}, str(weights))
    disguised = tmp_path / "model.safetensors"
    disguised.write_bytes(pickle.dumps({"x": 1}))
    unknown = tmp_path / "blob.pt"
    unknown.write_bytes(b"\x00" * 64)
    torch_zip = tmp_path / "state"
    torch.save({"a": torch.zeros(1)}, torch_zip)
    assert serialization.format_of(weights, weights.name) == "safetensors"
    assert serialization.format_of(disguised, disguised.name) == "pickle"
    assert serialization.format_of(torch_zip, torch_zip.name) == "pickle"  # zip with data.pkl
    assert serialization.format_of(unknown, unknown.name) == "pickle"  # unknown .pt: fail closed
    config = tmp_path / "config.json"
    config.write_text("{}")
    assert serialization.format_of(config, config.name) == "other"


def test_hf_folder_is_mixed_with_each_pickle_flagged_unsafe(repo: Path, cli) -> None:
    hf_folder(repo / "models/bert/checkpoint-10")
    added = cli("add", "models/bert/checkpoint-10", "--step", "10", "-m", "dev.acc=0.5")
    assert added.code == 0, added.err
    meta = card.read(repo / "models/bert/checkpoint-10.ckpt.yaml").data["checkpoint"]
    assert meta["serialization"] == "mixed"
    assert meta["serialization_files"] == [
        {"path": "optimizer.pt", "serialization": "pickle", "unsafe": True},
        {"path": "training_args.bin", "serialization": "pickle", "unsafe": True},
        {"path": "model.safetensors", "serialization": "safetensors"},
    ]
    git(repo, "add", "--all")
    assert cli("check").code == 0


def test_safetensors_only_folder_and_a_disguised_single_file(repo: Path, cli) -> None:
    folder = repo / "models/bert/final"
    folder.mkdir(parents=True)
    safetensors_torch.save_file({"w": torch.zeros(2)}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text("{}")
    assert cli("add", "models/bert/final", "--step", "20", "-m", "dev.acc=0.6").code == 0
    meta = card.read(repo / "models/bert/final.ckpt.yaml").data["checkpoint"]
    assert meta["serialization"] == "safetensors" and "unsafe" not in str(meta)
    disguised = repo / "models/bert/weights.safetensors"
    disguised.write_bytes(pickle.dumps({"w": [0.0]}))
    assert cli("add", str(disguised), "--step", "30", "-m", "dev.acc=0.7").code == 0
    single = card.read(repo / "models/bert/weights.safetensors.ckpt.yaml").data["checkpoint"]
    assert single["serialization"] == "pickle" and "serialization_files" not in single
