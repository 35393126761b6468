"""The env section: CUDA in use vs torch's build, cuDNN as 9.2.4, torch's local version, containers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from dvcckpt.adapters import capture
from dvcckpt.cards import card
from dvcckpt.errors import UsageError
from tests.conftest import git, write_checkpoint

torch = pytest.importorskip("torch", reason="torch comes with the integrations extra")


@pytest.mark.parametrize(
    ("number", "text"),
    [(90204, "9.2.4"), (91000, "9.10.0"), (90100, "9.1.0"), (8907, "8.9.7"), (8100, "8.1.0"),
     (7605, "7.6.5")],
)  # fmt: skip
def test_cudnn_integer_reads_as_major_minor_patch(number: int, text: str) -> None:
    assert capture.cudnn_version(number) == text


def test_cpu_torch_records_no_cuda_runtime_and_keeps_the_local_version() -> None:
    found = capture.from_torch(torch)
    assert found["cuda"] is None and found["cudnn"] is None and found["gpus"] == []
    assert found["cuda_build"] == torch.version.cuda  # None for the +cpu wheel
    env = capture.environment()
    assert env["libraries"]["torch"] == torch.__version__  # `2.13.0+cpu`, local part kept
    assert env["cuda"] is None and env["cuda_build"] == torch.version.cuda


def _torch_like(gpu: bool) -> Any:
    """What a `+cu130` torch answers, with or without a usable GPU (this machine has none)."""
    props = SimpleNamespace(name="NVIDIA H100", total_memory=80 << 30)
    return SimpleNamespace(
        version=SimpleNamespace(cuda="13.0"),
        cuda=SimpleNamespace(
            is_available=lambda: gpu,
            device_count=lambda: 1,
            get_device_properties=lambda index: props,
        ),
        backends=SimpleNamespace(
            cudnn=SimpleNamespace(is_available=lambda: True, version=lambda: 90204)
        ),
    )


def test_a_cuda_build_without_a_gpu_uses_no_cuda_runtime() -> None:
    assert capture.from_torch(_torch_like(gpu=False)) == {
        "cuda": None, "cuda_build": "13.0", "cudnn": None, "gpus": [],
    }  # fmt: skip
    on_gpu = capture.from_torch(_torch_like(gpu=True))
    assert on_gpu["cuda"] == "13.0" and on_gpu["cuda_build"] == "13.0"
    assert on_gpu["cudnn"] == "9.2.4"
    assert on_gpu["gpus"] == [{"name": "NVIDIA H100", "memory_mb": 80 << 10}]


def test_capture_without_torch_loaded_probes_in_a_child_process(tmp_path: Path) -> None:
    """The CLI never imports torch itself: a child process answers for it."""
    script = (
        "import json, sys\n"
        "from dvcckpt.adapters import capture\n"
        "env = capture.environment()\n"
        "print(json.dumps({'torch_loaded': 'torch' in sys.modules, 'cuda': env['cuda'],\n"
        "    'cuda_build': env['cuda_build'], 'cudnn': env['cudnn']}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, cwd=tmp_path)  # fmt: skip
    found = json.loads(done.stdout)
    assert found == {"torch_loaded": False, "cuda": None, "cuda_build": torch.version.cuda,
                     "cudnn": None}  # fmt: skip


def test_container_detection_records_the_runtime_with_the_image_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DVCCKPT_IMAGE", raising=False)
    bare = tmp_path / "bare"
    (bare / "proc/1").mkdir(parents=True)
    (bare / "proc/1/cgroup").write_text("0::/\n")
    assert capture.container(bare) == {"container": None, "container_image": None}
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / ".dockerenv").write_text("")
    assert capture.container(docker) == {"container": "docker", "container_image": None}
    podman = tmp_path / "podman"
    (podman / "run").mkdir(parents=True)
    (podman / "run/.containerenv").write_text("engine=podman\n")
    assert capture.container(podman)["container"] == "podman"
    pod = tmp_path / "pod"
    (pod / "proc/1").mkdir(parents=True)
    (pod / "proc/1/cgroup").write_text("11:memory:/kubepods/burstable/pod1234/abcd\n")
    assert capture.container(pod)["container"] == "kubepods"


def test_dvcckpt_image_names_the_image_and_is_checked_as_a_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = "ghcr.io/org/train:1.4@sha256:" + "ab" * 32
    monkeypatch.setenv("DVCCKPT_IMAGE", image)
    assert capture.container(tmp_path) == {"container": "container", "container_image": image}
    for bad in ("https://ada:s3cret@registry.example.com/train:1", "train image", "img\x1b[31m"):
        monkeypatch.setenv("DVCCKPT_IMAGE", bad)
        with pytest.raises(UsageError, match="DVCCKPT_IMAGE is not a container image"):
            capture.container(tmp_path)


def test_added_card_records_the_accurate_environment_and_passes_the_hook(
    repo: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DVCCKPT_IMAGE", "registry.example.com:5000/nlp/train:2026.01")
    write_checkpoint(repo / "models/m/step-10.pt")
    added = cli("add", "models/m/step-10.pt", "--step", "10", "-m", "dev.acc=0.5")
    assert added.code == 0, added.err
    env = card.read(repo / "models/m/step-10.pt.ckpt.yaml").data["env"]
    assert env["cuda"] is None and env["cuda_build"] == torch.version.cuda
    assert env["cudnn"] is None and env["libraries"]["torch"] == torch.__version__
    assert env["container_image"] == "registry.example.com:5000/nlp/train:2026.01"
    assert env["container"] == (capture.container()["container"])
    git(repo, "add", "--all")
    assert cli("check").code == 0
    monkeypatch.setenv("DVCCKPT_IMAGE", "user:token@registry/img")
    write_checkpoint(repo / "models/m/step-20.pt", seed=2)
    refused = cli("add", "models/m/step-20.pt", "--step", "20", "-m", "dev.acc=0.6")
    assert refused.code == 2 and "DVCCKPT_IMAGE" in refused.err and "token" not in refused.out
    assert not (repo / "models/m/step-20.pt.ckpt.yaml").exists()
