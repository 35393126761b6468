"""Background registration on real git + DVC repositories: `save(..., background=True)`
returns a Future at once, one worker registers in submission order, `wait()` and
process exit flush, and no failure is lost or stops the saves after it."""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

import dvcckpt
from dvcckpt.api import SaveArgumentError
from dvcckpt.cards import background
from dvcckpt.cards.card import Card
from dvcckpt.errors import BackgroundSaveError, CardError, StateError, UsageError
from tests.conftest import git, write_checkpoint


@pytest.fixture(autouse=True)
def nothing_left_pending(repo: Path) -> Iterator[None]:
    """A test that fails half-way must not leave its saves to the next test's wait()
    (torn down before `repo`, while the working folder is still the test's)."""
    yield
    with contextlib.suppress(BackgroundSaveError):
        dvcckpt.wait()


def staged(repo: Path) -> set[str]:
    return set(git(repo, "diff", "--cached", "--name-only").split())


def in_completion_order(futures: list[Future[Card]]) -> list[int]:
    order: list[int] = []
    lock = threading.Lock()
    for index, future in enumerate(futures):

        def done(_: Future[Card], index: int = index) -> None:
            with lock:
                order.append(index)

        future.add_done_callback(done)
    return order


def test_background_saves_land_in_order_with_their_cards(repo: Path) -> None:
    paths = [write_checkpoint(repo / f"models/clf/step-{step}.pt", seed=step) for step in (1, 2, 3)]
    futures = [
        dvcckpt.save(path, model="clf", step=step, metrics={"dev": {"acc": step / 10}},
                     background=True)
        for step, path in zip((1, 2, 3), paths, strict=True)
    ]  # fmt: skip
    assert all(isinstance(future, Future) for future in futures)
    order = in_completion_order(futures)
    cards = dvcckpt.wait()
    assert order == [0, 1, 2]
    assert [card.path for card in cards] == [future.result().path for future in futures]
    for step, card in zip((1, 2, 3), cards, strict=True):
        loaded = dvcckpt.load_card(f"models/clf/step-{step}.pt")
        assert loaded.data == card.data
        assert loaded.data["checkpoint"]["step"] == step
        assert loaded.data["metrics"]["dev"]["acc"] == step / 10
    expected = {f"models/clf/step-{step}.pt{suffix}" for step in (1, 2, 3)
                for suffix in (".ckpt.yaml", ".dvc")}  # fmt: skip
    assert expected <= staged(repo)
    assert dvcckpt.wait() == [], "a second wait reports nothing twice"


def test_wait_raises_naming_every_failure_while_the_others_land(repo: Path) -> None:
    first = write_checkpoint(repo / "models/a.pt")
    refused = write_checkpoint(repo / "models/b.pt", seed=1)
    last = write_checkpoint(repo / "models/c.pt", seed=2)
    dvcckpt.save(first, model="m", step=1, background=True)
    dvcckpt.save("models/vanished.pt", model="m", step=2, background=True)
    dvcckpt.save(refused, model="m", step=3, name="Not A Valid Name!", background=True)
    dvcckpt.save(last, model="m", step=4, background=True)
    with pytest.raises(BackgroundSaveError) as caught:
        dvcckpt.wait()
    error = caught.value
    assert [label for label, _ in error.failures] == ["models/vanished.pt", str(refused)]
    assert isinstance(error.failures[0][1], UsageError)
    assert isinstance(error.failures[1][1], CardError)
    assert "2 background save(s) failed" in error.message
    assert "models/vanished.pt" in error.message and str(refused) in error.message
    assert len(error.details) == 2 and error.details[0].startswith("models/vanished.pt: ")
    assert [card.path for card in error.cards] == [
        first.with_name("a.pt.ckpt.yaml"),
        last.with_name("c.pt.ckpt.yaml"),
    ]
    assert {"models/a.pt.ckpt.yaml", "models/c.pt.ckpt.yaml"} <= staged(repo)
    assert not (repo / "models/b.pt.ckpt.yaml").exists()
    assert dvcckpt.wait() == [], "a failure is raised once"


def test_a_foreground_save_waits_for_the_background_ones(repo: Path) -> None:
    paths = [write_checkpoint(repo / f"m/step-{step}.pt", seed=step) for step in range(4)]
    futures = [dvcckpt.save(path, model="m", background=True) for path in paths[:3]]
    foreground = dvcckpt.save(paths[3], model="m")
    assert isinstance(foreground, Card)
    assert all(future.done() for future in futures), "the foreground save overtook them"
    # A foreground failure raises from save() itself, never again from wait().
    dvcckpt.save(write_checkpoint(repo / "m/late.pt"), model="m", step=9, background=True)
    with pytest.raises(UsageError):
        dvcckpt.save("m/missing.pt", model="m")
    assert [card.path.name for card in dvcckpt.wait()] == [
        "step-0.pt.ckpt.yaml", "step-1.pt.ckpt.yaml", "step-2.pt.ckpt.yaml", "late.pt.ckpt.yaml",
    ]  # fmt: skip


def test_argument_types_are_checked_at_once_and_values_taken_as_given(repo: Path) -> None:
    path = write_checkpoint(repo / "m/a.pt")
    with pytest.raises(SaveArgumentError, match="step="):
        dvcckpt.save(path, model="m", step="10", background=True)  # type: ignore[call-overload]
    assert background.pending() == 0
    metrics = {"dev": {"acc": 0.5}}
    params: dict[str, object] = {"layers": [1, 2]}
    future = dvcckpt.save(path, model="m", step=1, metrics=metrics, params=params, background=True)
    metrics["dev"]["acc"] = 0.9  # the loop goes on changing its own dicts
    params["layers"] = [3]
    data = future.result().data
    assert data["metrics"]["dev"]["acc"] == 0.5
    assert data["params"]["layers"] == [1, 2]


EXITING_SCRIPT = """
import sys
from pathlib import Path
import dvcckpt
for step in (1, 2):
    path = Path(f"out/step-{step}.pt")
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(bytes(range(256)) * 64 * step)
    dvcckpt.save(path, model="loop", step=step, background=True)
dvcckpt.save("out/never-written.pt", model="loop", step=3, background=True)
print("loop done", flush=True)
"""


def test_process_exit_flushes_and_prints_failures(repo: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", EXITING_SCRIPT], cwd=repo, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.stdout == "loop done\n"
    for step in (1, 2):
        card = dvcckpt.load_card(f"out/step-{step}.pt", repo=repo)
        assert card.data["checkpoint"]["step"] == step
    lines = done.stderr.splitlines()
    assert lines[0].startswith("error: background save of out/never-written.pt: "), done.stderr
    assert lines[1].startswith("hint: "), done.stderr
    assert len(lines) == 2, done.stderr
    # The exit status is the program's own: wait() is how a loop fails on a lost card.
    assert done.returncode == 0


def test_background_hashing_on_one_core_records_the_same_digests(repo: Path) -> None:
    """The worker hashes on one thread (the loop keeps the other cores); the digests
    are those of the threaded path and of the bytes themselves, for a file and a folder."""
    content = bytes(range(256)) * (3 << 12)  # 3 MiB: a chunk large enough to go threaded
    for folder in ("fore", "back"):
        (repo / folder / "dir").mkdir(parents=True)
        (repo / folder / "model.pt").write_bytes(content)
        (repo / folder / "dir/a.bin").write_bytes(content[: 2 << 20])
        (repo / folder / "dir/b.bin").write_bytes(content[1:])
    fore = [dvcckpt.save(repo / "fore" / name, model="m", step=step)
            for step, name in ((1, "model.pt"), (2, "dir"))]  # fmt: skip
    back = [dvcckpt.save(repo / "back" / name, model="m", step=step, background=True)
            for step, name in ((3, "model.pt"), (4, "dir"))]  # fmt: skip
    dvcckpt.wait()
    for threaded, single in zip(fore, (future.result() for future in back), strict=True):
        ours, theirs = threaded.data["checkpoint"], single.data["checkpoint"]
        assert (ours["sha256"], ours["dvc"]["md5"]) == (theirs["sha256"], theirs["dvc"]["md5"])
    file_record = back[0].result().data["checkpoint"]
    assert file_record["sha256"] == hashlib.sha256(content).hexdigest()
    assert file_record["dvc"]["md5"] == hashlib.md5(content).hexdigest()
    cached = repo / ".dvc/cache/files/md5" / file_record["dvc"]["md5"][:2]
    assert (cached / file_record["dvc"]["md5"][2:]).read_bytes() == content


def test_other_background_work_reports_its_failures_but_no_cards(repo: Path) -> None:
    """A callback queues its pruning behind the saves: wait() names its failures (exiting
    as the first would) and returns only the saves' cards."""

    def broken() -> None:
        raise StateError("models/b.ckpt.ckpt.yaml: cannot be pruned", hint="see the card")

    background.submit(lambda: ["pruned card"], "pruning models/a.ckpt")
    background.submit(broken, "pruning models/b.ckpt")
    with pytest.raises(BackgroundSaveError) as caught:
        dvcckpt.wait()
    assert [label for label, _ in caught.value.failures] == ["pruning models/b.ckpt"]
    assert (caught.value.exit_code, caught.value.hint) == (4, "see the card")
    background.submit(lambda: ["pruned card"], "pruning models/c.ckpt")
    assert dvcckpt.wait() == []
