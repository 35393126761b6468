"""Progress bars on a terminal; rich is imported only when a bar is shown."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path


def _interactive() -> bool:
    return sys.stderr.isatty()


@contextmanager
def progress_bar(label: str, total: int, done: Callable[[], int]) -> Iterator[None]:
    """A bar fed by polling `done()` (bytes so far) every 0.1 s; only on a terminal."""
    if not _interactive() or total <= 0:
        yield
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())  # fmt: skip
    stop = threading.Event()
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)

        def poll() -> None:
            while not stop.wait(0.1):
                bar.update(task, completed=min(total, done()))

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        try:
            yield
        finally:
            stop.set()
            poller.join()


def _io_counter(name: str) -> int | None:
    """Bytes this process has read (`rchar`) or written (`wchar`), from /proc (Linux)."""
    try:
        text = Path("/proc/self/io").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return int(value)
    return None


def transfer_progress(label: str, total: int, counter: str) -> AbstractContextManager[None]:
    """A bar for a DVC transfer, on a terminal only.

    DVC's API offers no progress hook, but during an upload the bytes this
    process reads are the bytes it sends (`rchar`), and during a download the
    bytes it writes are the bytes received (`wchar`): polling them drives the bar.
    """
    start = _io_counter(counter) if _interactive() else None
    if start is None:
        return nullcontext()
    return progress_bar(label, total, lambda: (_io_counter(counter) or start) - start)
