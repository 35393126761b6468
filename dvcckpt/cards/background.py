"""Background registration: `save(..., background=True)` returns at once; `wait()` flushes.

One worker thread runs the registrations one at a time, in submission order, so two
never race for the git index or a `.gitignore`, and the cards land in the order the
training loop saved them; a save's registration it hands to the helper process of
`cards.saveprocess` (off the loop's GIL) and waits for. A failed registration never stops the next one: its error
is kept and raised by `wait()` (all failures since the last `wait()` at once), and at
process exit the pending ones are finished and the failures printed as `error:` lines.

The exit flush runs when the main thread ends (threading's exit hooks), while thread
pools still take work; the worker is a daemon, so nothing joins it first. The exit
status stays the program's own: `wait()` is how a loop fails on a lost card. A forked
child starts with no worker and nothing pending (the parent's thread is not there).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from dvcckpt.adapters import hashing
from dvcckpt.cards import saveprocess
from dvcckpt.core.display import visible
from dvcckpt.errors import BackgroundSaveError, describe

T = TypeVar("T")
_MAX_LINE = 1000  # an error line echoes paths and values: keep it one bounded line
_HANDOVER_SECONDS = 0.0005


@dataclass
class _Job:
    run: Callable[[], Any]
    future: Future[Any]
    label: str
    tracked: bool  # a background save `wait()` reports (a foreground one raises itself)


@dataclass
class _State:
    jobs: queue.SimpleQueue[_Job] = field(default_factory=queue.SimpleQueue)
    thread: threading.Thread | None = None
    pending: int = 0
    finished: list[_Job] = field(default_factory=list)  # tracked, since the last wait()
    idle: threading.Condition = field(default_factory=threading.Condition)


_state = _State()


def submit(register: Callable[[], T], label: str, *, isolated: bool = False) -> Future[T]:
    """Queue `register` behind every earlier one; the Future holds its result or error.

    `isolated`: run it in the registration process (`cards.saveprocess`), off this
    process's GIL; it must then be picklable (a module function and its arguments), or
    it runs in the worker thread as any other job.
    """
    run = partial(saveprocess.run, register, _here) if isolated else partial(_here, register)
    return _enqueue(run, label, tracked=True)


def in_order(register: Callable[[], T], label: str) -> T:
    """Run a foreground registration after the background ones still pending.

    With nothing pending it runs here and now (its errors raise with their own traceback).
    """
    with _state.idle:
        busy = _state.pending > 0
    if not busy:
        return register()
    return _enqueue(partial(_here, register), label, tracked=False).result()


def pending() -> int:
    """How many registrations are queued or running."""
    with _state.idle:
        return _state.pending


def wait() -> list[Any]:
    """Block until every submitted registration finished; returns the cards of the
    background saves since the last `wait()`, in submission order.

    Raises `BackgroundSaveError` naming every one of them that failed (the others landed:
    its `cards`).
    """
    with _state.idle:
        _state.idle.wait_for(lambda: _state.pending == 0)
        finished, _state.finished = _state.finished, []
    failures = [(job.label, error) for job in finished if (error := job.future.exception())]
    cards = [job.future.result() for job in finished if job.future.exception() is None]
    if failures:
        raise BackgroundSaveError(failures, cards)
    return cards


def _enqueue(register: Callable[[], T], label: str, tracked: bool) -> Future[T]:
    future: Future[T] = Future()
    future.set_running_or_notify_cancel()  # queued work cannot be cancelled
    with _state.idle:
        _state.pending += 1
        if _state.thread is None:
            _state.thread = threading.Thread(target=_work, name="dvcckpt-save", daemon=True)
            _state.thread.start()
    _state.jobs.put(_Job(register, future, label, tracked))
    return future


def _work() -> None:
    while True:
        job = _state.jobs.get()
        try:
            job.future.set_result(job.run())
        except BaseException as exc:  # kept for wait(): the worker must outlive any failure
            job.future.set_exception(exc)
        with _state.idle:
            if job.tracked:
                _state.finished.append(job)
            _state.pending -= 1
            _state.idle.notify_all()


def _here(register: Callable[[], T]) -> T:
    """Run a registration in the worker thread, beside the training loop."""
    with hashing.on_one_core(), _quick_handover():
        return register()


@contextlib.contextmanager
def _quick_handover() -> Iterator[None]:
    """While a registration runs, hand the GIL back to the training loop sooner.

    The loop releases the GIL in every torch operation and needs it back to start the
    next; by default it waits up to 5 ms for this thread's Python code (YAML, schema
    checks) to let go, and dozens of operations per step make that a visible slowdown.
    The training loop keeps the other cores (`hashing.on_one_core`).
    """
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, _HANDOVER_SECONDS))
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _flush_at_exit() -> None:
    """Finish the pending registrations at process exit and print what failed."""
    if _state.thread is None:
        return
    try:
        wait()
    except BackgroundSaveError as exc:
        for label, error in exc.failures:
            message, hint = describe(error)
            _say(f"error: background save of {label}: {message}")
            _say(f"hint: {hint}")
    except KeyboardInterrupt:  # the helper ends after its job, when this process has
        _say(f"error: interrupted with {pending()} checkpoint registration(s) unfinished")
        _say("hint: re-run `dvcckpt add` for the checkpoints that have no card")
        return
    saveprocess.close()


def _say(line: str) -> None:
    line = visible(line)  # a newline in a path must not forge lines
    if len(line) > _MAX_LINE:
        line = f"{line[: _MAX_LINE - 4]} ..."
    with contextlib.suppress(OSError, ValueError):  # stderr closed: nothing more to say
        print(line, file=sys.stderr, flush=True)


def _forget_in_child() -> None:
    global _state
    _state = _State()


def _register_exit_flush() -> None:
    """Flush when the main thread ends, before Python shuts down its thread pools: a
    registration uses them (hashing, environment capture), and at `atexit` time they
    refuse new work. Threading's exit hooks run newest first, so registering after
    `concurrent.futures.thread` put its own puts this flush ahead of that shutdown."""
    import concurrent.futures.thread  # noqa: F401  (its exit hook must come first)

    hook = getattr(threading, "_register_atexit", None)
    if hook is None:  # not CPython 3.9+: the later `atexit` is the best there is
        atexit.register(_flush_at_exit)
    else:
        hook(_flush_at_exit)


_register_exit_flush()
os.register_at_fork(after_in_child=_forget_in_child)
