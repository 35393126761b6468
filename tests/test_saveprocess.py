"""Background saves register in a helper process (`cards.saveprocess`), on real git + DVC
repositories and real processes: jobs run there, failures cross back as they would
be raised in the program, a killed helper costs one save, the program's own state is
what the card records, and the helper never outlives or re-runs the program."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Any

import pytest

import dvcckpt
from dvcckpt.cards import background, saveprocess
from dvcckpt.errors import BackgroundSaveError, StateError, UsageError
from tests.conftest import write_checkpoint


@pytest.fixture(autouse=True)
def nothing_left_pending(repo: Path) -> Iterator[None]:
    yield
    with contextlib.suppress(BackgroundSaveError):
        dvcckpt.wait()


def isolated(job: Any) -> Future[Any]:
    return background.submit(job, "job", isolated=True)


def gone(pid: int) -> bool:
    """No such process, or one that has ended (a zombie its new parent has not reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_background_save_registers_in_another_process(repo: Path) -> None:
    before = saveprocess.ran["helper"]
    path = write_checkpoint(repo / "models/a.pt")
    card = dvcckpt.save(path, model="m", step=1, background=True).result()
    assert saveprocess.ran["helper"] == before + 1
    pid = isolated(os.getpid).result()
    assert pid != os.getpid() and pid == saveprocess.helper_pid()
    assert dvcckpt.load_card(path).data == card.data
    assert card.path == path.with_name("a.pt.ckpt.yaml")


def test_a_failure_in_the_helper_surfaces_at_wait_as_it_would_in_the_program(
    repo: Path,
) -> None:
    with pytest.raises(UsageError) as foreground:  # a background save takes its path absolute
        dvcckpt.save(repo / "models/missing.pt", model="m")
    before = saveprocess.ran["helper"]
    dvcckpt.save("models/missing.pt", model="m", background=True)
    with pytest.raises(BackgroundSaveError) as caught:
        dvcckpt.wait()
    assert saveprocess.ran["helper"] == before + 1
    [(label, error)] = caught.value.failures
    assert label == "models/missing.pt"
    assert type(error) is UsageError
    expected = foreground.value
    assert (error.message, error.hint, error.exit_code) == (
        expected.message, expected.hint, expected.exit_code,
    )  # fmt: skip
    assert (caught.value.hint, caught.value.exit_code) == (expected.hint, expected.exit_code)
    assert caught.value.details == [f"models/missing.pt: {expected.message}"]
    cause = error.__cause__
    assert isinstance(cause, saveprocess.RemoteTraceback)
    assert "in the background registration process" in str(cause) and "UsageError" in str(cause)


def test_a_helper_killed_mid_job_fails_that_save_and_the_next_one_starts_another(
    repo: Path,
) -> None:
    first = isolated(os.getpid).result()
    isolated(partial(os._exit, 9))
    with pytest.raises(BackgroundSaveError) as caught:
        dvcckpt.wait()
    [(_, error)] = caught.value.failures
    assert isinstance(error, StateError)
    assert "ended unexpectedly (exit status 9)" in error.message
    assert "dvcckpt add" in error.hint
    assert not Path(f"/proc/{first}").exists(), "the killed helper was not reaped"
    path = write_checkpoint(repo / "models/after.pt")
    card = dvcckpt.save(path, model="m", step=2, background=True).result()
    assert card.data["checkpoint"]["step"] == 2
    assert saveprocess.helper_pid() not in (None, first)


def test_thread_mode_registers_in_the_program(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(saveprocess.MODE_VARIABLE, "thread")
    before = saveprocess.ran.copy()
    assert isolated(os.getpid).result() == os.getpid()
    path = write_checkpoint(repo / "models/t.pt")
    card = dvcckpt.save(path, model="m", step=3, background=True).result()
    assert dvcckpt.load_card(path).data == card.data
    assert saveprocess.ran["here"] == before["here"] + 2
    assert saveprocess.ran["helper"] == before["helper"]


def test_a_helper_that_cannot_start_leaves_the_saves_to_the_program(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saveprocess.close()
    # An interpreter started with this environment finds no standard library and exits.
    monkeypatch.setenv("PYTHONHOME", str(repo / "no-python-here"))
    before = saveprocess.ran.copy()
    try:
        path = write_checkpoint(repo / "models/fallback.pt")
        card = dvcckpt.save(path, model="m", step=4, background=True).result()
        assert dvcckpt.load_card(path).data == card.data
        assert saveprocess.ran["here"] == before["here"] + 1
        assert saveprocess.helper_pid() is None
    finally:
        saveprocess._unavailable = False  # the next tests may start one again


class Local:
    """A class of the program's own: the helper must not import its module to rebuild it."""


def test_jobs_the_helper_cannot_take_run_in_the_program(repo: Path) -> None:
    before = saveprocess.ran.copy()
    assert isolated(lambda: os.getpid()).result() == os.getpid()  # pickle cannot carry it
    value = Local()
    assert isolated(partial(dict, value=value)).result()["value"] is value
    loaded = isolated(partial(eval, "sorted(__import__('sys').modules)")).result()
    assert "dvcckpt.cards.register" in loaded and "tests.test_saveprocess" not in loaded
    assert saveprocess.ran["here"] == before["here"] + 2
    assert saveprocess.ran["helper"] == before["helper"] + 1


# No `if __name__ == "__main__"`: a helper that re-ran the script would log a second run.
PROGRAM = """
import json, os, signal, sys, time
from pathlib import Path
with open("runs.log", "a") as log:
    log.write(f"{os.getpid()}\\n")
mode = sys.argv[1]
if mode == "env":
    try:
        import torch  # what a training program has imported
    except ImportError:
        pass
import dvcckpt
from dvcckpt.cards import saveprocess

def checkpoint(step, size=4096):
    path = Path(f"out/step-{step}.pt")
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path

if mode == "env":
    fore = dvcckpt.save(checkpoint(1), model="loop", step=1)
    back = dvcckpt.save(checkpoint(2), model="loop", step=2, background=True).result()
    print(json.dumps({"fore": fore.data, "back": back.data, "ran": dict(saveprocess.ran)}))
    sys.exit()
dvcckpt.save(checkpoint(1), model="loop", step=1, background=True).result()
print(saveprocess.helper_pid(), flush=True)
for step in (2, 3):
    dvcckpt.save(checkpoint(step, 32 << 20), model="loop", step=step, background=True)
if mode == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
if mode == "interrupt":
    print("queued", flush=True)
    time.sleep(120)
"""


def program(repo: Path, mode: str) -> subprocess.Popen[str]:
    (repo / "train.py").write_text(PROGRAM)
    return subprocess.Popen(
        [sys.executable, "train.py", mode, "--lr", "0.1"], cwd=repo, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip


def helper_of(process: subprocess.Popen[str]) -> int:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip().isdigit(), (line, process.stderr.read() if process.stderr else "")
    return int(line)


def cards(repo: Path) -> list[str]:
    return sorted(path.name for path in (repo / "out").glob("*.ckpt.yaml"))


def ran_once(repo: Path) -> bool:
    return len((repo / "runs.log").read_text().splitlines()) == 1


def test_a_program_exits_with_its_saves_flushed_and_no_helper_left(repo: Path) -> None:
    process = program(repo, "exit")
    helper = helper_of(process)
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err
    assert (out, err) == ("", "")
    assert cards(repo) == [f"step-{step}.pt.ckpt.yaml" for step in (1, 2, 3)]
    assert not Path(f"/proc/{helper}").exists(), "the helper outlived the program"
    assert ran_once(repo), "the helper ran the program's script again"


def test_a_killed_program_is_not_kept_alive_and_its_helper_ends(repo: Path) -> None:
    process = program(repo, "kill")
    helper = helper_of(process)
    process.communicate(timeout=180)  # returns once the helper let go of the pipes too
    assert process.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 60
    while not gone(helper) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(helper), "the helper outlived the program that was killed"
    assert ran_once(repo)


def test_ctrl_c_in_the_program_still_flushes_its_saves(repo: Path) -> None:
    process = program(repo, "interrupt")
    helper = helper_of(process)
    assert process.stdout is not None and process.stdout.readline() == "queued\n"
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole group
    _, err = process.communicate(timeout=180)
    assert "KeyboardInterrupt" in err
    assert cards(repo) == [f"step-{step}.pt.ckpt.yaml" for step in (1, 2, 3)], err
    assert not Path(f"/proc/{helper}").exists()
    assert ran_once(repo)


def test_a_background_card_records_the_program_as_a_foreground_one_does(repo: Path) -> None:
    process = program(repo, "env")
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err
    result = json.loads(out)
    assert result["ran"] == {"helper": 1}
    fore, back = result["fore"], result["back"]
    assert back["code"]["script"] == "train.py"
    assert back["code"]["command"].endswith("train.py env --lr 0.1")
    # All but what tells the two checkpoints apart: the same program recorded the same.
    for card in (fore, back):
        for field in ("path", "step", "sha256", "size", "dvc", "created_at"):
            card["checkpoint"].pop(field, None)
        card.pop("name")
    assert back == fore


def test_the_lightning_callback_registers_in_the_helper(repo: Path) -> None:
    pytest.importorskip("lightning")
    from tests import test_integration_lightning as run

    before = saveprocess.ran.copy()
    run.train(repo, background=True)
    dvcckpt.wait()
    assert sorted((repo / "models/tiny").glob("*.ckpt.yaml"))
    assert saveprocess.ran["helper"] >= before["helper"] + run.EPOCHS
    assert saveprocess.ran["here"] == before["here"]


def test_the_transformers_callback_registers_in_the_helper(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from tests import test_integration_transformers as run

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    before = saveprocess.ran.copy()
    threads = run.torch.get_num_threads()
    run.torch.set_num_threads(1)
    try:
        run.train(repo / "out", run.DvcckptCallback(model="tiny-bert", background=True))
    finally:
        run.torch.set_num_threads(threads)
    dvcckpt.wait()
    assert len(list((repo / "out").glob("*.ckpt.yaml"))) == len(run.STEPS)
    assert saveprocess.ran["helper"] == before["helper"] + len(run.STEPS)
    assert saveprocess.ran["here"] == before["here"]


def test_the_installed_packages_are_read_again_once_an_import_folder_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list is kept between saves (the helper registers many): installing or removing
    a package changes its folder, and the next capture reads the list again."""
    from dvcckpt.adapters import capture

    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))

    def touched() -> None:  # a clock tick later, whatever the file system's resolution
        stamp = folder.stat().st_mtime + 1 + len(list(folder.iterdir()))
        os.utime(folder, (stamp, stamp))

    def install(name: str, version: str) -> Path:
        info = folder / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        touched()
        return info

    first = install("Dvcckpt_Probe.One", "1.0")
    assert capture.installed_packages()["dvcckpt-probe-one"] == "1.0"
    install("dvcckpt-probe-two", "2.0")
    assert capture.installed_packages()["dvcckpt-probe-two"] == "2.0"
    shutil.rmtree(first)
    touched()
    listed = capture.installed_packages()
    assert "dvcckpt-probe-one" not in listed and listed["dvcckpt-probe-two"] == "2.0"
