"""dvcckpt.load for inference code: by name and MODEL@STAGE, pulled, verified, pickles refused."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import dvcckpt
from dvcckpt.cards import card
from dvcckpt.errors import CheckFailed, UsageError
from dvcckpt.storage.load import open_safetensors
from tests.conftest import git

torch = pytest.importorskip("torch", reason="torch comes with the integrations extra")
safetensors_torch = pytest.importorskip("safetensors.torch")

DVC = str(Path(sys.executable).parent / "dvc")


@pytest.fixture
def served(repo: Path, cli, tmp_path: Path) -> dict[str, str]:
    """Three checkpoints on main, pushed to a local remote; the safetensors one holds `dev`."""
    (repo / "dvcckpt.yaml").write_text("version: 1\nproject: demo\nstages: [dev, production]\n")
    (repo / "gates.yaml").write_text(
        "version: 1\ngates:\n  - stage: dev\n    rules:\n"
        "      - {name: dev-acc, metric: metrics.dev.acc, op: '>=', value: 0.4}\n"
    )
    subprocess.run([DVC, "remote", "add", "-d", "local", str(tmp_path / "remote")], cwd=repo,
                   check=True, capture_output=True)  # fmt: skip
    (repo / "models/clf").mkdir(parents=True)
    weights = repo / "models/clf/step-100.safetensors"
    safetensors_torch.save_file({"w": torch.arange(6.0).reshape(2, 3)}, str(weights))
    torch.save({"w": torch.zeros(2)}, repo / "models/clf/step-200.pt")
    folder = repo / "models/clf/checkpoint-300"
    folder.mkdir()
    safetensors_torch.save_file({"w": torch.ones(2)}, str(folder / "model.safetensors"))
    torch.save({"state": {}}, folder / "optimizer.pt")
    names = {}
    for key, path, step in (("safe", weights, 100), ("pickle", "models/clf/step-200.pt", 200),
                            ("mixed", folder, 300)):  # fmt: skip
        names[key] = dvcckpt.save(path, model="clf", step=step, metrics={"dev": {"acc": 0.5}}).name
    git(repo, "add", "--all")
    git(repo, "commit", "-qm", "three checkpoints")
    assert cli("push", "--all").code == 0
    git(repo, "checkout", "-qb", "promote")
    assert cli("promote", names["safe"], "--to", "dev", "--rationale", "serve it").code == 0
    git(repo, "commit", "-qm", "promote to dev")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "promote", "-m", "Merge promote")
    return names


def test_load_by_name_and_by_stage_returns_the_verified_path(
    repo: Path, served: dict[str, str]
) -> None:
    path = dvcckpt.load(served["safe"])
    assert path == (repo / "models/clf/step-100.safetensors").resolve()
    assert dvcckpt.load("clf@dev") == path
    with open_safetensors("clf@dev", framework="pt") as handle:
        assert list(handle.keys()) == ["w"]
        assert handle.get_tensor("w").tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def test_a_missing_copy_is_pulled_from_the_remote(repo: Path, served: dict[str, str]) -> None:
    weights = repo / "models/clf/step-100.safetensors"
    original = weights.read_bytes()
    weights.unlink()
    shutil.rmtree(repo / ".dvc/cache")  # only the remote holds it now
    assert dvcckpt.load("clf@dev") == weights.resolve()
    assert weights.read_bytes() == original


def test_a_copy_that_differs_from_its_card_is_refused(repo: Path, served: dict[str, str]) -> None:
    weights = repo / "models/clf/step-100.safetensors"
    weights.chmod(0o644)
    tampered = bytearray(weights.read_bytes())
    tampered[-1] ^= 1
    weights.write_bytes(bytes(tampered))
    with pytest.raises(CheckFailed, match="does not match its card") as refused:
        dvcckpt.load(served["safe"])
    assert "move models/clf/step-100.safetensors aside" in (refused.value.hint or "")
    assert weights.read_bytes() == bytes(tampered)  # never overwritten


def test_pickles_are_refused_unless_allowed(repo: Path, served: dict[str, str]) -> None:
    with pytest.raises(UsageError, match=r"holds pickled files \(step-200.pt\)") as refused:
        dvcckpt.load(served["pickle"])
    assert "allow_pickle=True" in (refused.value.hint or "")
    path = dvcckpt.load(served["pickle"], allow_pickle=True)
    assert torch.load(path, weights_only=True)["w"].tolist() == [0.0, 0.0]
    with pytest.raises(UsageError, match=r"holds pickled files \(optimizer.pt\)"):
        dvcckpt.load(served["mixed"])
    with open_safetensors(served["mixed"]) as handle:  # the weights alone read no pickle
        assert handle.get_tensor("w").tolist() == [1.0, 1.0]
    with pytest.raises(UsageError, match="not a safetensors file"):
        open_safetensors(served["pickle"])


def test_the_bytes_decide_when_an_old_card_claims_safetensors(
    repo: Path, served: dict[str, str]
) -> None:
    """A card written before content sniffing said `safetensors` for a folder with pickles."""
    card_file = repo / "models/clf/checkpoint-300.ckpt.yaml"
    document = card.read(card_file).data
    del document["checkpoint"]["serialization_files"]
    document["checkpoint"]["serialization"] = "safetensors"
    card_file.write_bytes(card.render(card_file, document))
    with pytest.raises(UsageError, match=r"holds pickled files \(optimizer.pt\)"):
        dvcckpt.load(served["mixed"])


def test_a_version_from_history_the_work_tree_lacks_is_downloaded_aside(
    repo: Path, served: dict[str, str], tmp_path: Path
) -> None:
    registered = git(repo, "rev-parse", "HEAD").strip()
    original = (repo / "models/clf/step-100.safetensors").read_bytes()
    git(repo, "rm", "-q", "models/clf/step-100.safetensors.ckpt.yaml",
        "models/clf/step-100.safetensors.dvc")  # fmt: skip
    (repo / "models/clf/step-100.safetensors").unlink()
    git(repo, "commit", "-qm", "drop the checkpoint from the work tree")
    path = dvcckpt.load(f"{served['safe']}@{registered}")
    assert path.is_relative_to(repo / ".dvc/tmp/dvcckpt-load") and path.read_bytes() == original
    assert not (repo / "models/clf/step-100.safetensors").exists()  # the work tree is untouched
    shutil.rmtree(repo / ".dvc/cache")
    shutil.rmtree(tmp_path / "remote")  # the copy aside is verified and reused, not fetched again
    assert dvcckpt.load(f"{served['safe']}@{registered}") == path
