"""The process background saves register in, so they never hold the loop's GIL.

A background registration is mostly Python (YAML, schema checks, git plumbing, the
catalog): in a thread of the training process it holds the GIL in bursts, and every
torch operation of the loop then waits to get it back. Here the registration runs in
one helper process (`adapters.workerprocess`: never a re-run of the training script),
started on first use and reused for every later save, so the loop only pickles a few
kilobytes per save. Each job carries what the registration reads from the running
program: working folder, `sys.argv` and the environment variables at submission, the
token its run ids are derived from (`names.process_token`), and what torch says about
the GPUs when the program has imported it (the helper never imports torch), so the
card records what a registration in the program would.

One job is in the helper at a time (`background` dispatches them in order and waits
for each), so a killed training process loses the same saves as with a thread, except
that the one already running finishes. The helper ignores Ctrl-C (the training
program decides), runs at a lower CPU priority than the loop, and ends when the
program does. A job that cannot be pickled, or holds a value the helper would have to
import other code for (the program's own classes, torch), or a helper that cannot
start, runs in the calling thread instead; `DVCCKPT_SAVE_WORKER=thread` asks for that
always. A helper that dies mid-job fails that save with a StateError; the next save
starts another.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from dvcckpt.adapters import hashing
from dvcckpt.adapters.workerprocess import Channel, WorkerGone, WorkerProcess
from dvcckpt.cards import names
from dvcckpt.errors import StateError, environment_error

T = TypeVar("T")
MODE_VARIABLE = "DVCCKPT_SAVE_WORKER"  # "thread": register in the training process
# Niceness added to the helper: a registration never takes a core the loop could use.
NICENESS = 10
_ENTRY = "dvcckpt.cards.saveprocess:serve"

_lock = threading.Lock()
_helper: WorkerProcess | None = None
_unavailable = False  # the helper could not start: every job runs in the calling thread
_accelerators: dict[str, Any] | None = None
# How many jobs ran where ("helper", "here"): what a test or benchmark reads to tell.
ran: Counter[str] = Counter()


def run(job: Callable[[], T], here: Callable[[Callable[[], T]], T]) -> T:
    """Run `job` in the helper process (started on first use) and return its result;
    its exception is raised here. `here(job)` runs it in this thread when it cannot go."""
    global _helper
    if os.environ.get(MODE_VARIABLE) == "thread":
        return _here(here, job)
    try:
        message = pickle.dumps(_Envelope.of(job), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # a value pickle cannot carry (the caller's own object): run here
        return _here(here, job)
    with _lock:
        helper = _started()
        if helper is None:
            return _here(here, job)
        try:
            outcome, value = pickle.loads(helper.call(message))
        except WorkerGone as gone:
            _helper = None
            raise StateError(
                f"the background registration process ended unexpectedly "
                f"(exit status {gone.status})",
                hint="re-run `dvcckpt add` for the checkpoint that has no card",
            ) from gone
    if outcome == "refused":  # it holds values only this program can rebuild
        return _here(here, job)
    ran["helper"] += 1
    if outcome == "ok":
        return value  # type: ignore[no-any-return]
    raise _rebuilt(value)


def _here(here: Callable[[Callable[[], T]], T], job: Callable[[], T]) -> T:
    ran["here"] += 1
    return here(job)


def close() -> None:
    """Let the helper end and reap it; a later job starts another."""
    global _helper
    with _lock:
        helper, _helper = _helper, None
    if helper is not None:
        helper.close()


def helper_pid() -> int | None:
    """The running helper's process id (None before the first job or after `close`)."""
    helper = _helper
    return helper.process.pid if helper is not None and helper.alive() else None


@dataclass(frozen=True)
class _Envelope:
    """A job with the program state it reads as it was when the job was submitted."""

    job: Callable[[], Any]
    cwd: str
    argv: list[str]
    environ: dict[str, str]
    accelerators: dict[str, Any] | None
    process_token: str  # the program's: its saves' derived run ids are the same here

    @classmethod
    def of(cls, job: Callable[[], Any]) -> _Envelope:
        state = os.getcwd(), list(sys.argv), dict(os.environ), _torch_view()
        return cls(job, *state, names.process_token())


def _torch_view() -> dict[str, Any] | None:
    """What the program's torch says about CUDA and GPUs (once: it does not change)."""
    global _accelerators
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    if _accelerators is None:
        from dvcckpt.adapters import capture

        _accelerators = capture.from_torch(torch)
    return _accelerators


def _started() -> WorkerProcess | None:
    global _helper, _unavailable
    if _helper is not None and _helper.alive():
        return _helper
    if _helper is not None:  # it ended between two jobs
        _helper.close()
    if _unavailable:
        return None
    _helper = WorkerProcess.start(_ENTRY, niceness=NICENESS)
    _unavailable = _helper is None
    return _helper


# The helper's side ----------------------------------------------------------------


def serve(channel: Channel) -> None:
    """The helper's loop: run each job received, answer with its result or error."""
    from dvcckpt.cards import register  # noqa: F401  (imports paid before the first job)

    channel.ready()
    while (message := channel.receive()) is not None:
        try:
            envelope: _Envelope = _Unpickler(io.BytesIO(message)).load()
        except Exception:  # a value only the program can rebuild: it runs the job itself
            answer: tuple[str, Any] = ("refused", None)
        else:
            answer = _performed(envelope)
        channel.send(_pickled(answer))


class _Unpickler(pickle.Unpickler):
    """Rebuilds only what the helper has loaded or dvcckpt defines: the program's own
    classes (`__main__`) or torch would mean importing, or re-running, its code."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "__main__" or not (module in sys.modules or module.startswith("dvcckpt.")):
            raise pickle.UnpicklingError(f"{module}.{name} is not the helper's to import")
        return super().find_class(module, name)


def _performed(envelope: _Envelope) -> tuple[str, Any]:
    from dvcckpt.adapters import capture

    try:
        os.chdir(envelope.cwd)
        sys.argv[:] = envelope.argv
        os.environ.clear()
        os.environ.update(envelope.environ)
        capture.reported_accelerators = envelope.accelerators
        names.adopt_process_token(envelope.process_token)
        with hashing.on_one_core():  # the loop keeps the other cores
            return "ok", envelope.job()
    except BaseException as exc:  # every failure goes back to the program that saved
        return "error", _portable(exc)


def _pickled(answer: tuple[str, Any]) -> bytes:
    try:
        return pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # a result pickle cannot carry: say so instead
        return pickle.dumps(("error", _portable(exc)), protocol=pickle.HIGHEST_PROTOCOL)


@dataclass(frozen=True)
class _Failure:
    """An exception as it crosses back: its class and state, and the helper's traceback."""

    kind: type[BaseException]
    args: tuple[Any, ...]
    state: dict[str, Any]
    trace: str
    plain: bytes | None  # the exception pickled as itself, when that round-trips


def _portable(exc: BaseException) -> _Failure:
    # An OS fault a library wrapped is told by its cause, which pickling drops.
    exc = environment_error(exc) or exc
    trace = "".join(traceback.format_exception(exc))
    plain: bytes | None = None
    with contextlib.suppress(Exception):
        candidate = pickle.dumps(exc)
        if type(pickle.loads(candidate)) is type(exc):
            plain = candidate
    try:
        state = dict(vars(exc))
        pickle.dumps((type(exc), exc.args, state))
        return _Failure(type(exc), exc.args, state, trace, plain)
    except Exception:
        return _Failure(RuntimeError, (f"{type(exc).__name__}: {exc}",), {}, trace, None)


class RemoteTraceback(Exception):
    """The helper's traceback of a failure, chained as its cause."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _rebuilt(failure: _Failure) -> BaseException:
    if failure.plain is not None:
        exc: BaseException = pickle.loads(failure.plain)
    else:  # e.g. dvcckpt's errors, whose constructors take keyword arguments
        exc = failure.kind.__new__(failure.kind)
        BaseException.__init__(exc, *failure.args)
        exc.__dict__.update(failure.state)
    exc.__cause__ = RemoteTraceback(f"\n(in the background registration process)\n{failure.trace}")
    return exc


def _forget_in_child() -> None:
    """A forked child starts its own helper if it saves (the adapter closed the pipes)."""
    global _helper, _lock
    _helper, _lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)
