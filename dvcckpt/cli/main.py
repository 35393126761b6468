"""Command line: each command parses options, calls the library, renders the result.

`main` is the one boundary that maps exceptions to `error:`/`hint:` lines and
exit codes (0 ok, 1 check failed, 2 usage, 3 config, 4 repository/state,
70 internal bug, 130 interrupted). Library modules are imported inside commands
so `--help` starts fast and never loads dvc or jsonschema.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

# Importing the command modules registers their commands on `cli` (click only).
from dvcckpt.cli import cards, catalog, evaluations, org, promotion, site, storage  # noqa: F401
from dvcckpt.cli.group import cli
from dvcckpt.core.display import visible
from dvcckpt.errors import DvcckptError, environment_error

EXIT_INTERNAL = 70
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# An error line echoes user input (names, paths, values); these bounds keep a hostile
# value from printing megabytes or breaking the one-`error:`-line contract.
MAX_LINE = 1000
MAX_DETAILS = 20


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn every failure into a message and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    show_traceback = "--traceback" in args
    args = [a for a in args if a != "--traceback"]
    try:
        result = cli.main(args=args, prog_name="dvcckpt", standalone_mode=False)
    except BrokenPipeError:
        return _closed_output()
    except (KeyboardInterrupt, click.Abort):
        _report("interrupted", "re-run the command to finish it", [], show_traceback)
        return EXIT_INTERRUPTED
    except DvcckptError as exc:
        _report(exc.message, exc.hint, exc.details, show_traceback)
        return exc.exit_code
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "dvcckpt"
        _report(exc.format_message(), f"see `{command} --help`", [], show_traceback)
        return EXIT_USAGE
    except click.ClickException as exc:  # e.g. click.FileError: a file named on the command line
        _report(exc.format_message(), "check the path and re-run", [], show_traceback)
        return EXIT_USAGE
    except Exception as exc:  # the boundary: an environment fault, else our bug
        fault = environment_error(exc)
        if fault is not None:
            _report(fault.message, fault.hint, [], show_traceback)
            return fault.exit_code
        _report(
            f"internal error: {type(exc).__name__}: {exc}",
            "re-run with --traceback and report it at the dvcckpt issue tracker",
            [],
            show_traceback,
        )
        return EXIT_INTERNAL
    return result if isinstance(result, int) else 0


def _closed_output() -> int:
    """The reader went away (`dvcckpt find | head`): stay silent, like other Unix tools.

    Pointing stdout at /dev/null keeps Python's final flush from complaining.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (tests capture it)
        pass
    return 0


def _report(message: str, hint: str | None, details: list[str], show_traceback: bool) -> None:
    try:
        if show_traceback:
            traceback.print_exc()
        click.echo(f"error: {printable(message)}", err=True)
        shown = details[:MAX_DETAILS]
        for line in shown:
            click.echo(f"  {printable(line)}", err=True)
        if len(details) > len(shown):
            click.echo(f"  ... and {len(details) - len(shown)} more", err=True)
        if hint:
            click.echo(f"hint: {printable(hint)}", err=True)
    except BrokenPipeError:  # stderr closed too: nothing more can be said
        pass


def printable(text: str, limit: int = MAX_LINE) -> str:
    """One bounded line: control characters escaped (a newline or an escape sequence in a
    path must not forge lines or drive the terminal), the middle of a long text elided."""
    text = str(text)
    keep = (limit - 5) // 2
    if len(text) > limit:  # elide before escaping, so a 100 MB value costs nothing
        return f"{visible(text[:keep])[:keep]} ... {visible(text[-keep:])[-keep:]}"
    escaped = visible(text)
    return escaped if len(escaped) <= limit else f"{escaped[:keep]} ... {escaped[-keep:]}"
