"""Bad inputs to the write side: add/save, promote, reject, archive, retire.

Every case is a clean refusal (tests/corpus.py: a user exit code, one `error:` line
naming the file or field, a `hint:`, no traceback) that leaves the repository exactly
as it was, and none may hang: special files are refused before anything is opened.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import dvcckpt
from dvcckpt.api import SaveArgumentError
from dvcckpt.errors import UsageError
from tests.conftest import git, write_checkpoint
from tests.corpus import assert_user_error, changed, snapshot

CKPT = "m/a.pt"
Setup = Callable[[Path], list[str]]


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """Fail a case that blocks (a FIFO opened for reading) instead of hanging the suite."""

    def expire(_signum: int, _frame: Any) -> None:
        raise TimeoutError("the command hung")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def data_file(name: str, content: bytes, *args: str) -> Setup:
    """`add m/a.pt` with FILE `name` holding `content` passed as `args` (FILE substituted)."""

    def setup(root: Path) -> list[str]:
        write_checkpoint(root / CKPT)
        (root / name).write_bytes(content)
        return ["add", CKPT, "--step", "1", *(name if a == "FILE" else a for a in args)]

    return setup


def add_with(*args: str) -> Setup:
    def setup(root: Path) -> list[str]:
        write_checkpoint(root / CKPT)
        return ["add", CKPT, "--step", "1", *args]

    return setup


def add_path(make: Callable[[Path], str]) -> Setup:
    def setup(root: Path) -> list[str]:
        return ["add", make(root), "--step", "1"]

    return setup


def fifo(root: Path) -> str:
    os.mkfifo(root / "pipe.pt")
    return "pipe.pt"


def fifo_in_folder(root: Path) -> str:
    write_checkpoint(root / "ck/weights.bin")
    os.mkfifo(root / "ck/pipe")
    return "ck"


def unix_socket(root: Path) -> str:
    server = socket.socket(socket.AF_UNIX)
    os.chdir(root)  # socket paths are short; bind relative to the repository
    server.bind("sock.pt")
    server.close()
    return "sock.pt"


def device(root: Path) -> str:
    if os.geteuid() != 0:
        pytest.skip("creating a device node needs root")
    os.mknod(root / "dev.pt", stat.S_IFCHR | 0o600, os.makedev(1, 3))  # like /dev/null
    return "dev.pt"


def long_name(root: Path) -> str:
    # The checkpoint's name fits (250 bytes), its card's (+10) does not.
    return str(write_checkpoint(root / ("x" * 246 + ".pt")).relative_to(root))


def blocked_cache(root: Path) -> str:
    (root / ".dvc/cache").write_text("not a folder\n")
    write_checkpoint(root / CKPT)
    return CKPT


def inside_tracked_folder(root: Path) -> str:
    write_checkpoint(root / "data/inner.pt")
    (root / "data.dvc").write_text(
        "outs:\n- md5: 0123456789abcdef0123456789abcdef.dir\n  path: data\n"
    )
    return "data/inner.pt"


def dvcignored_file(root: Path) -> str:
    write_checkpoint(root / "ck/weights.bin")
    write_checkpoint(root / "ck/train.log")
    with (root / ".dvcignore").open("a") as handle:
        handle.write("*.log\n")
    return "ck"


def dvcignored_checkpoint(root: Path) -> str:
    write_checkpoint(root / CKPT)
    with (root / ".dvcignore").open("a") as handle:
        handle.write("*.pt\n")
    return CKPT


def committed(root: Path) -> None:
    write_checkpoint(root / CKPT)
    assert dvcckpt.save(root / CKPT, step=1, metrics={"dev": {"macro_f1": 0.9}}).name
    git(root, "commit", "--quiet", "--no-verify", "-m", "checkpoint")


def force_committed(root: Path) -> list[str]:
    committed(root)
    return ["add", CKPT, "--step", "2", "--force"]


def decision(*args: str) -> Setup:
    def setup(root: Path) -> list[str]:
        committed(root)
        return list(args)

    return setup


NESTED_YAML = "".join(f"{'  ' * i}k{i}:\n" for i in range(600)).encode() + b"  " * 600 + b"v\n"
CASES: dict[str, tuple[Setup, tuple[str, ...]]] = {
    # -- files given to --params / --metrics / --from --------------------------------
    "params-not-utf8": (data_file("p.yaml", b"lr: \xff\n", "--params", "FILE"), ("p.yaml", "UTF-8")),
    "params-utf16": (data_file("p.yaml", "lr: 0.1\n".encode("utf-16"), "--params", "FILE"),
                     ("p.yaml", "UTF-16")),
    "metrics-utf16-json": (data_file("m.json", '{"dev": {"f1": 1}}'.encode("utf-16"),
                                     "--metrics", "FILE"), ("m.json", "UTF-16")),
    "from-not-utf8": (data_file("run.json", b'{"run_name": "\xc3("}', "--from", "FILE"),
                      ("run.json", "UTF-8")),
    "params-json-100000-brackets": (data_file("p.json", b"[" * 100_000, "--params", "FILE"),
                                    ("p.json",)),
    "params-yaml-600-levels": (data_file("p.yaml", NESTED_YAML, "--params", "FILE"), ("p.yaml",)),
    "params-json-nan": (data_file("p.json", b'{"lr": NaN}', "--params", "FILE"),
                        ("p.json", "params.lr", "not a finite number")),
    "metrics-json-infinity": (data_file("m.json", b'{"dev": {"f1": Infinity}}', "--metrics",
                                        "FILE"), ("m.json", "metrics.dev.f1", "finite")),
    "metrics-json-huge-int": (data_file("m.json", b'{"dev": {"n": 1' + b"0" * 30 + b"}}",
                                        "--metrics", "FILE"), ("m.json", "metrics.dev.n")),
    "params-is-a-folder": (add_with("--params", "m"), ("--params", "not a regular file")),
    "params-is-a-fifo": (lambda root: [*add_with()(root), "--params", fifo(root)],
                         ("--params", "not a regular file")),
    "config-is-a-fifo": (lambda root: [*add_with()(root), "--config", fifo(root)], ("pipe.pt",)),
    # -- values given as options -------------------------------------------------------
    "metric-nan": (add_with("-m", "dev.f1=nan"), ("dev.f1",)),
    "name-very-long": (add_with("--name", "n" * 5000), ("name",)),
    # -- what is added -----------------------------------------------------------------
    "empty-path": (add_path(lambda root: ""), ("empty",)),
    "dot-is-the-repository": (add_path(lambda root: "."), ("repository itself",)),
    "the-git-folder": (add_path(lambda root: ".git"), (".git", "git's own folder")),
    "a-git-file": (add_path(lambda root: ".git/config"), (".git", "git's own folder")),
    "dvc-config": (add_path(lambda root: ".dvc/config"), (".dvc",)),
    "tracked-by-git": (add_path(lambda root: "train.py"), ("train.py", "tracked by git")),
    "inside-a-dvc-tracked-folder": (add_path(inside_tracked_folder), ("data",)),
    "fifo": (add_path(fifo), ("pipe.pt", "FIFO")),
    "folder-holding-a-fifo": (add_path(fifo_in_folder), ("ck/pipe", "FIFO")),
    "socket": (add_path(unix_socket), ("sock.pt", "socket")),
    "device": (add_path(device), ("dev.pt", "device")),
    "name-too-long-for-its-card": (add_path(long_name), ("name too long",)),
    "path-component-too-long": (add_path(lambda root: "y" * 300 + "/a.pt"), ("too long",)),
    "blocked-cache": (add_path(blocked_cache), (".dvc/cache",)),
    "file-excluded-by-dvcignore": (add_path(dvcignored_file), ("ck/train.log", ".dvcignore")),
    "checkpoint-excluded-by-dvcignore": (add_path(dvcignored_checkpoint), (CKPT, ".dvcignore")),
    "force-on-a-committed-card": (force_committed, ("a.pt.ckpt.yaml", "immutable")),
    # -- decisions and tombstones ------------------------------------------------------
    "promote-empty-rationale": (decision("promote", CKPT, "--to", "staging", "--rationale", ""),
                                ("--rationale",)),
    "promote-blank-rationale": (decision("promote", CKPT, "--to", "staging", "--rationale", " \t"),
                                ("--rationale",)),
    "promote-blank-override-reason": (decision("promote", CKPT, "--to", "staging", "--rationale",
                                               "ok", "--override", "--reason", "  "),
                                      ("--reason",)),
    "promote-empty-reference": (decision("promote", "", "--to", "staging", "--rationale", "ok"),
                                ("empty checkpoint reference",)),
    "reject-empty-reason": (decision("reject", CKPT, "--reason", ""), ("--reason",)),
    "reject-empty-reference": (decision("reject", " ", "--reason", "bad"), ("empty checkpoint reference",)),
    "archive-blank-reason": (decision("archive", CKPT, "--reason", "\n"), ("--reason",)),
    "retire-empty-reason": (decision("retire", CKPT, "--reason", ""), ("--reason",)),
    "retire-empty-reference": (decision("retire", "", "--reason", "old"), ("empty checkpoint reference",)),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_refused_and_changes_nothing(repo: Path, cli: Any, case: str) -> None:
    setup, names = CASES[case]
    args = setup(repo)
    os.chdir(repo)
    before, staged = snapshot(repo), git(repo, "diff", "--cached", "--name-status")
    result = cli(*args)
    assert_user_error(result.code, result.err, names=names)
    assert changed(before, snapshot(repo)) == []
    assert git(repo, "diff", "--cached", "--name-status") == staged


SAVE_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "metrics-a-list": ({"metrics": [1, 2]}, "metrics"),
    "tags-a-string": ({"tags": "abc"}, "tags"),
    "tags-not-strings": ({"tags": [1, 2]}, "tags"),
    "params-a-list": ({"params": [("lr", 0.1)]}, "params"),
    "step-a-string": ({"step": "5"}, "step"),
    "step-a-bool": ({"step": True}, "step"),
    "seeds-a-string": ({"seeds": "42"}, "seeds"),
    "parents-a-string": ({"parents": "finetuned_from=x"}, "parents"),
    "extra-a-list": ({"extra": ["x-a"]}, "extra"),
}


@pytest.mark.parametrize("case", sorted(SAVE_CASES))
def test_save_refuses_wrong_argument_types(repo: Path, case: str) -> None:
    kwargs, name = SAVE_CASES[case]
    write_checkpoint(repo / CKPT)
    before = snapshot(repo)
    with pytest.raises(SaveArgumentError, match=name) as raised:
        dvcckpt.save(repo / CKPT, **kwargs)
    assert isinstance(raised.value, TypeError) and isinstance(raised.value, UsageError)
    assert raised.value.hint
    assert changed(before, snapshot(repo)) == []


@pytest.mark.parametrize("path", [123, None, b"m/a.pt", ""])
def test_save_refuses_a_path_that_is_not_one(repo: Path, path: Any) -> None:
    with pytest.raises(UsageError, match="path"):
        dvcckpt.save(path)


def test_save_refuses_non_finite_metrics(repo: Path) -> None:
    write_checkpoint(repo / CKPT)
    before = snapshot(repo)
    with pytest.raises(UsageError, match=r"metrics\.dev\.f1: nan is not a finite number"):
        dvcckpt.save(repo / CKPT, step=1, metrics={"dev": {"f1": float("nan")}})
    assert changed(before, snapshot(repo)) == []


def test_a_split_value_too_long_for_a_file_name_is_a_hash(repo: Path, cli: Any) -> None:
    write_checkpoint(repo / CKPT)
    result = cli("add", CKPT, "--step", "1", "--split", "train=" + "d/" * 3000)
    assert result.code == 0, result.err


def test_force_still_replaces_an_uncommitted_draft(repo: Path, cli: Any) -> None:
    write_checkpoint(repo / CKPT)
    assert cli("add", CKPT, "--step", "1").code == 0
    assert cli("add", CKPT, "--step", "2", "--force").code == 0
    assert "step: 2" in (repo / (CKPT + ".ckpt.yaml")).read_text()


def test_utf8_bom_in_a_params_file_is_read(repo: Path, cli: Any) -> None:
    write_checkpoint(repo / CKPT)
    (repo / "p.json").write_bytes(b'\xef\xbb\xbf{"lr": 0.5}')
    result = cli("add", CKPT, "--step", "1", "--params", "p.json")
    assert result.code == 0, result.err
    assert "lr: 0.5" in (repo / (CKPT + ".ckpt.yaml")).read_text()
