"""Errors users can act on, each carrying its exit code and a hint.

The CLI boundary (`dvcckpt.cli.main`) is the one place that turns these into
`error:` / `hint:` lines and exit codes; library callers get ordinary exceptions.
"""

from __future__ import annotations


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
