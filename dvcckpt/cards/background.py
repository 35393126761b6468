"""Background registration: `save(..., background=True)` returns at once; `wait()` flushes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def submit(register: Callable[[], T]) -> T:
    """Run `register` in the worker (stub: runs it now)."""
    return register()


def wait() -> list[Any]:
    """Block until every submitted registration finished; returns their cards."""
    return []
