"""Errors users can act on, each carrying its exit code and a hint.

The CLI boundary (`dvcckpt.cli.main`) is the one place that turns these into
`error:` / `hint:` lines and exit codes; library callers get ordinary exceptions.
"""

from __future__ import annotations

import errno


class DvcckptError(Exception):
    """Base of every expected failure: a message naming the file/field and a fix."""

    exit_code = 70

    def __init__(self, message: str, hint: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details or []  # printed between the error and the hint


class CheckFailed(DvcckptError):
    """A check or gate said no (exit 1)."""

    exit_code = 1


class UsageError(DvcckptError):
    """Bad arguments or option values (exit 2)."""

    exit_code = 2


class ConfigError(DvcckptError):
    """Invalid card, schema or project configuration (exit 3)."""

    exit_code = 3


class StateError(DvcckptError):
    """Repository or state problem: not a repo, unknown checkpoint, unwritable path (exit 4)."""

    exit_code = 4


class CardError(ConfigError):
    """A card failed to parse or validate; `problems` lists every violation found."""

    def __init__(self, message: str, hint: str, problems: list[str] | None = None) -> None:
        super().__init__(message, hint, details=(problems or [])[1:])
        self.problems = problems or []


# Faults of the machine, never of dvcckpt: whatever operation met them, the user's
# fix is the same (free space, fix permissions, shorten the path), so one mapping at
# the boundary covers every reader and writer. errno -> (what happened, the fix).
_SPACE = ("no space left", "free disk space (or raise the quota) and re-run the command")
_ACCESS = ("permission denied", "check the file's permissions and ownership, then re-run")
_FILES = ("too many open files", "raise the open-file limit (`ulimit -n`) and re-run")
_ENVIRONMENT: dict[int, tuple[str, str]] = {
    errno.ENOSPC: _SPACE,
    errno.EDQUOT: ("disk quota exceeded", _SPACE[1]),
    errno.EFBIG: ("file too large for this file system", _SPACE[1]),
    errno.EACCES: _ACCESS,
    errno.EPERM: ("operation not permitted", _ACCESS[1]),
    errno.EROFS: ("read-only file system", "run the command where the repository is writable"),
    errno.ENAMETOOLONG: ("file name too long", "use a shorter name or a shallower folder"),
    errno.ELOOP: ("too many levels of symbolic links", "fix the symlink loop on that path"),
    errno.EMFILE: _FILES,
    errno.ENFILE: _FILES,
    errno.EIO: ("input/output error", "check the disk (`dmesg`) and re-run the command"),
    errno.EBUSY: ("device or resource busy", "wait for the other program and re-run"),
    errno.ETXTBSY: ("file is busy", "wait for the other program and re-run"),
    errno.ENOMEM: ("out of memory", "free memory and re-run the command"),
}


def environment_error(exc: BaseException) -> StateError | None:
    """A StateError for an OS fault that is the environment's, not a dvcckpt bug.

    Looks through explicit causes (`raise ... from`), since libraries such as DVC
    wrap the OSError they met.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _ENVIRONMENT:
            what, hint = _ENVIRONMENT[current.errno]
            where = current.filename
            if isinstance(where, bytes):
                where = where.decode("utf-8", "replace")
            return StateError(f"{where}: {what}" if where else what, hint=hint)
        current = current.__cause__
    return None


class BackgroundSaveError(DvcckptError):
    """Background saves failed (`dvcckpt.wait()`); `failures` pairs each checkpoint with
    its error, `cards` holds the ones that landed. Exits as the first failure would."""

    def __init__(self, failures: list[tuple[str, BaseException]], cards: list[object]) -> None:
        self.failures = failures
        self.cards = cards
        described = [(label, *describe(error)) for label, error in failures]
        labels = ", ".join(label for label, _, _ in described)
        super().__init__(
            f"{len(failures)} background save(s) failed: {labels}",
            hint=described[0][2] if len(described) == 1 else "fix each one and save it again",
            details=[f"{label}: {message}" for label, message, _ in described],
        )
        first = failures[0][1]
        as_command = first if isinstance(first, DvcckptError) else environment_error(first)
        self.exit_code = as_command.exit_code if as_command is not None else 70


def describe(error: BaseException) -> tuple[str, str]:
    """The message and hint the command line would print for `error`."""
    if isinstance(error, DvcckptError):
        return error.message, error.hint
    fault = environment_error(error)
    if fault is not None:
        return fault.message, fault.hint
    return (
        f"internal error: {type(error).__name__}: {error}",
        "report it at the dvcckpt issue tracker",
    )
