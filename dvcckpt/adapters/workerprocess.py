"""A helper Python process spoken to through two pipes, one message (bytes) at a time.

The helper is the interpreter itself started on a short boot line (`python -c`), never
`multiprocessing`: its spawn mode re-imports the parent's main script as a module,
which re-runs a script without an `if __name__ == "__main__"` guard, and forking a
process that holds torch copies its threads' state. The boot line drops the folder
`-c` puts first on `sys.path` and takes the parent's `sys.path`, so the helper imports
what the parent would, never the parent's script; it leaves Ctrl-C to the parent
(SIGINT ignored), may run at a lower CPU priority, and is told the parent is gone by
the end of its message pipe (it then ends; it never keeps the parent alive).

Messages are length-prefixed frames: a receiver never reads half a message, whatever
the sender's content. A forked child of the parent closes its copies of the pipes
(it must neither talk to the parent's helper nor keep it from seeing the end).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import weakref
from typing import IO

_HEADER = 8  # frame length, big-endian
_READY = b"ready"
_BOOT = (
    "import sys; del sys.path[0]\n"
    "import os, pickle, signal\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "inbox = os.fdopen(int(sys.argv[1]), 'rb')\n"
    "sys.path[:] = pickle.loads(inbox.read(int.from_bytes(inbox.read(8), 'big')))\n"
    "from dvcckpt.adapters.workerprocess import _boot\n"
    "_boot(inbox, int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))\n"
)


class WorkerGone(Exception):
    """The helper ended (or could not be reached) before it answered."""

    def __init__(self, status: int | None) -> None:
        super().__init__(f"the helper process ended (exit status {status})")
        self.status = status


class Channel:
    """One end of the two pipes: frames out (an unbuffered pipe), frames in."""

    def __init__(self, inbox: IO[bytes], outbox: IO[bytes]) -> None:
        self.inbox, self.outbox = inbox, outbox

    def send(self, data: bytes) -> None:
        """Raises OSError when the other end is gone."""
        frame = memoryview(len(data).to_bytes(_HEADER, "big") + data)
        while frame:  # the outbox is unbuffered: a write may take part of the frame
            written = self.outbox.write(frame)
            frame = frame[written or 0 :]

    def receive(self) -> bytes | None:
        """The next frame; None once the other end closed its pipe."""
        header = self.inbox.read(_HEADER)
        if len(header) < _HEADER:
            return None
        size = int.from_bytes(header, "big")
        data = self.inbox.read(size)
        return data if len(data) == size else None

    def ready(self) -> None:
        """Tell the parent the helper is prepared for its first message."""
        self.send(_READY)

    def close(self) -> None:
        for handle in (self.outbox, self.inbox):
            with contextlib.suppress(OSError, ValueError):
                handle.close()


class WorkerProcess:
    """The parent's side: a started helper running `entry(channel)`."""

    def __init__(self, process: subprocess.Popen[bytes], channel: Channel) -> None:
        self.process, self.channel = process, channel

    @classmethod
    def start(cls, entry: str, niceness: int = 0) -> WorkerProcess | None:
        """Start a helper calling `entry` ("package.module:function") with its Channel;
        None when it cannot start or ends before its `Channel.ready()`."""
        to_child, child_inbox = os.pipe()
        child_outbox, from_child = os.pipe()
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(to_child), str(from_child), entry,
                 str(niceness)],
                stdin=subprocess.DEVNULL,
                pass_fds=(to_child, from_child),
            )  # fmt: skip
        except OSError:
            for fd in (to_child, child_inbox, child_outbox, from_child):
                os.close(fd)
            return None
        os.close(to_child)
        os.close(from_child)
        # Unbuffered writes: a forked child closing its copy never flushes half a frame.
        channel = Channel(os.fdopen(child_outbox, "rb"), os.fdopen(child_inbox, "wb", 0))
        worker = cls(process, channel)
        _live.add(worker)
        try:
            channel.send(pickle.dumps(list(sys.path)))
            if channel.receive() == _READY:
                return worker
        except OSError:
            pass
        worker.close()
        return None

    def alive(self) -> bool:
        return self.process.poll() is None

    def call(self, message: bytes) -> bytes:
        """Send one message and return the helper's answer; WorkerGone if it ended first
        (it is then reaped and this object is closed)."""
        try:
            self.channel.send(message)
            answer = self.channel.receive()
        except OSError:
            answer = None
        if answer is None:
            self.close(timeout=None)
            raise WorkerGone(self.process.returncode)
        return answer

    def close(self, timeout: float | None = 30) -> None:
        """End the helper (its message pipe closes) and reap it; killed after `timeout`."""
        _live.discard(self)
        self.channel.close()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_live: weakref.WeakSet[WorkerProcess] = weakref.WeakSet()


def _boot(inbox: IO[bytes], outbox_fd: int, entry: str, niceness: int) -> None:
    """The helper's side, from the boot line: set up, then run `entry` until it returns."""
    import importlib

    outbox = os.fdopen(outbox_fd, "wb", 0)
    for handle in (inbox, outbox):  # the processes it starts must not hold the pipes
        os.set_inheritable(handle.fileno(), False)
    if niceness:
        with contextlib.suppress(OSError):
            os.nice(niceness)  # inherited by its threads and the processes it starts
    module, _, function = entry.partition(":")
    channel = Channel(inbox, outbox)
    try:
        getattr(importlib.import_module(module), function)(channel)
    except BrokenPipeError:  # the parent ended while an answer was on its way
        pass
    finally:
        with contextlib.suppress(OSError):
            channel.close()


def _forget_in_child() -> None:
    for worker in list(_live):
        worker.channel.close()
    _live.clear()


os.register_at_fork(after_in_child=_forget_in_child)
