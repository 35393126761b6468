"""Provenance captured automatically when a checkpoint is registered.

What is recorded: code version (commit, dirty flag, branch, remote URL without
credentials, script, command line with secret-looking values redacted, config
hash), environment (Python, platform, key library versions, a hash of the whole
installed-package list, the CUDA runtime in use beside the CUDA version torch was
built for, cuDNN, GPUs when visible, the container image), host, user and time.
What is never recorded: environment variables (except `DVCCKPT_IMAGE`, an image
reference checked as one), tokens, passwords, credentials.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from dvcckpt.adapters import git
from dvcckpt.adapters.paths import repo_relative
from dvcckpt.core.redaction import (
    portable_path,
    redact_command,
    redact_command_text,
    strip_credentials,
)
from dvcckpt.errors import UsageError

# Libraries whose version decides whether a checkpoint loads and behaves the same.
KEY_LIBRARIES = (
    "torch", "torchvision", "torchaudio", "transformers", "tokenizers", "datasets",
    "accelerate", "peft", "safetensors", "deepspeed", "lightning", "pytorch-lightning",
    "tensorflow", "keras", "jax", "jaxlib", "flax", "numpy", "scipy", "scikit-learn",
    "xgboost", "lightgbm", "sentencepiece", "onnx", "onnxruntime", "dvc", "dvcckpt",
)  # fmt: skip


def now_utc() -> str:
    return (
        dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    )


def code(
    root: Path, script: str | None, command: str | None, config_file: Path | None
) -> dict[str, Any]:
    section: dict[str, Any] = {
        "repo": strip_credentials(git.remote_url(root)),
        "commit": git.head_commit(root),
        "branch": git.current_branch(root),
        "dirty": git.is_dirty(root),
        "script": recorded_path(script, root) if script else None,
        "command": redact_command_text(command) if command else None,
    }
    if config_file is not None:
        if not config_file.is_file():
            problem = "not a regular file" if config_file.exists() else "no such file"
            raise UsageError(f"config file {config_file}: {problem}", hint="check the path")
        section["config_file"] = recorded_path(str(config_file), root)
        section["config_sha256"] = hashlib.sha256(config_file.read_bytes()).hexdigest()
    return section


def invocation(root: Path) -> tuple[str | None, str | None]:
    """The running program's script (repository-relative) and redacted command line."""
    argv = sys.argv
    if not argv or not argv[0] or argv[0] == "-c":
        return None, None
    script = recorded_path(argv[0], root)
    return script, redact_command([Path(sys.executable).name, script, *argv[1:]])


def recorded_path(path: str, root: Path) -> str:
    """A path as a card records it: relative to the repository, never naming a home folder."""
    try:
        inside = repo_relative(Path(path), root)
        resolved = str(Path(path).resolve())
        home = str(Path.home())
    except (OSError, RuntimeError, ValueError):  # unresolvable: a name without a folder
        return portable_path(path)
    return inside if inside is not None else portable_path(resolved, home)


def user(root: Path) -> dict[str, str | None]:
    return {
        "name": git.config_value(root, "user.name"),
        "email": git.config_value(root, "user.email"),
    }


def environment() -> dict[str, Any]:
    installed = installed_packages()
    listing = "".join(f"{name}=={installed[name]}\n" for name in sorted(installed))
    section: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": socket.gethostname() or None,
        "libraries": {lib: installed[lib] for lib in KEY_LIBRARIES if lib in installed},
        "packages_sha256": hashlib.sha256(listing.encode()).hexdigest(),
        "packages_count": len(installed),
    }
    section.update(accelerators("torch" in installed))
    section.update(container())
    return section


# The installed packages, read once per process and again only when an import folder
# changed: reading every distribution's metadata costs ~90 ms of Python per save, which a
# background save would spend holding the GIL beside the training loop.
_installed: tuple[tuple[object, ...], dict[str, str]] | None = None


def installed_packages() -> dict[str, str]:
    """Canonical distribution name -> version of everything importable (`sys.path`)."""
    global _installed
    key = _import_folders_state()
    if _installed is None or _installed[0] != key:
        from importlib import metadata

        found: dict[str, str] = {}
        for dist in metadata.distributions():
            name = dist.metadata["Name"]
            if name:
                found[_canonical(name)] = dist.version
        _installed = (key, found)
    return dict(_installed[1])


def _import_folders_state() -> tuple[object, ...]:
    """`sys.path` and each folder's modification time: installing or removing a package
    adds or removes a `*.dist-info` folder there, which changes the time."""
    state: list[object] = []
    for entry in sys.path:
        try:
            state.append((entry, os.stat(entry or ".").st_mtime_ns))
        except (OSError, ValueError):
            state.append((entry, None))
    return tuple(state)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_NO_ACCELERATOR: dict[str, Any] = {
    "cuda": None, "cuda_build": None, "cudnn": None, "driver": None, "gpus": [],
}  # fmt: skip

_TORCH_PROBE = (
    "import json, torch; from dvcckpt.adapters.capture import from_torch; "
    "print(json.dumps(from_torch(torch)))"
)


# What the training program's torch reported (`from_torch`), set in the background
# registration process, which registers for that program without importing torch.
reported_accelerators: dict[str, Any] | None = None


def accelerators(torch_installed: bool) -> dict[str, Any]:
    """CUDA, cuDNN and GPUs; absent hardware is recorded as none, never an error."""
    found = dict(_NO_ACCELERATOR)
    torch = sys.modules.get("torch")
    if torch is not None:
        found.update(from_torch(torch))
    elif reported_accelerators is not None:
        found.update(reported_accelerators)
    elif torch_installed and not _gpu_driver():
        found.update(_torch_build())  # no driver: no GPU torch could use, nothing to ask it
    elif torch_installed:
        # Importing torch costs seconds; a child process keeps it off our path
        # and runs alongside the hashing.
        found.update(_run_probe([sys.executable, "-c", _TORCH_PROBE]))
    if shutil.which("nvidia-smi"):
        found.update(_from_nvidia_smi(found))
    return found


_GPU_DRIVERS = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/kfd")  # NVIDIA, ROCm


def _gpu_driver() -> bool:
    return any(os.path.exists(path) for path in _GPU_DRIVERS) or bool(shutil.which("nvidia-smi"))


def _torch_build() -> dict[str, Any]:
    """torch's CUDA build version, read from its `version.py` without importing torch."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("torch")
        origin = Path(spec.origin) if spec is not None and spec.origin else None
        text = (origin.parent / "version.py").read_text(encoding="utf-8") if origin else ""
    except (ImportError, OSError, ValueError):
        return {}
    found = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]([0-9.]+)['\"]", text, re.M)
    return {"cuda": None, "cuda_build": found.group(1) if found else None, "cudnn": None}


def from_torch(torch: Any) -> dict[str, Any]:
    """What torch sees: the CUDA runtime in use only when a GPU is usable.

    `torch.version.cuda` is the CUDA version the wheel was built against; a `+cu130`
    wheel on a machine without a GPU uses no CUDA at all, so `cuda` stays null there.
    """
    try:
        gpus = []
        in_use = bool(torch.cuda.is_available())
        if in_use:
            for index in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(index)
                gpus.append({"name": props.name, "memory_mb": props.total_memory // 2**20})
        cudnn = (
            torch.backends.cudnn.version()
            if in_use and torch.backends.cudnn.is_available()
            else None
        )
        build = torch.version.cuda
        return {
            "cuda": build if in_use else None,
            "cuda_build": build,
            "cudnn": None if cudnn is None else cudnn_version(int(cudnn)),
            "gpus": gpus,
        }
    except Exception:  # a broken CUDA setup must not stop a checkpoint from being saved
        return {}


def cudnn_version(number: int) -> str:
    """cuDNN's integer version as `9.2.4`.

    From cuDNN 9 the integer is major*10000 + minor*100 + patch (90204); before,
    major*1000 + minor*100 + patch (8907 is 8.9.7).
    """
    if number >= 90000:
        major, rest = divmod(number, 10000)
    else:
        major, rest = divmod(number, 1000)
    minor, patch = divmod(rest, 100)
    return f"{major}.{minor}.{patch}"


def _run_probe(command: list[str]) -> dict[str, Any]:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return {}


def _from_nvidia_smi(found: dict[str, Any]) -> dict[str, Any]:
    command = ["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
               "--format=csv,noheader,nounits"]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return {}
    rows = [line.split(", ") for line in done.stdout.strip().splitlines() if line.count(", ") == 2]
    if done.returncode != 0 or not rows:
        return {}
    update: dict[str, Any] = {"driver": rows[0][2]}
    if not found.get("gpus"):
        update["gpus"] = [
            {"name": n, "memory_mb": int(m) if m.isdigit() else None} for n, m, _ in rows
        ]
    return update


# An image reference as OCI tools write it: [host[:port]/]path[:tag][@algorithm:hex].
# Anything else (a URL with user:password@, spaces, control characters) is refused.
_IMAGE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"(?::[0-9]{1,5})?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,128})?"
)
_IMAGE_MAX_CHARS = 512
# Words in /proc/1/cgroup that name a container runtime (cgroup v1 paths, some v2 set-ups).
_CGROUP_RUNTIMES = ("docker", "kubepods", "containerd", "libpod", "lxc")


def container(root: Path = Path("/")) -> dict[str, Any]:
    """The container the run executes in: `DVCCKPT_IMAGE` names the image; else only whether.

    Inside a container nothing says which image it was started from, so detection
    (`/.dockerenv`, `/run/.containerenv`, the init process's cgroup) records the
    runtime with the image left null; outside one, both are null.
    """
    image = os.environ.get("DVCCKPT_IMAGE", "").strip()
    if image:
        if len(image) > _IMAGE_MAX_CHARS or not _IMAGE.fullmatch(image):
            raise UsageError(
                f"DVCCKPT_IMAGE is not a container image reference: {image[:80]!r}",
                hint="set it to the image the run executes in, e.g. "
                "ghcr.io/org/train:1.4@sha256:<digest> (no credentials)",
            )
        return {"container": _runtime(root) or "container", "container_image": image}
    return {"container": _runtime(root), "container_image": None}


def _runtime(root: Path) -> str | None:
    if (root / ".dockerenv").exists():
        return "docker"
    if (root / "run/.containerenv").exists():
        return "podman"
    try:
        cgroup = (root / "proc/1/cgroup").read_text(encoding="utf-8", errors="replace")[:65536]
    except OSError:
        return None
    found = [word for word in _CGROUP_RUNTIMES if word in cgroup]
    return found[0] if found else None
