"""Command line: each command parses options, calls the library, renders the result.

`main` is the one boundary that maps exceptions to `error:`/`hint:` lines and
exit codes (0 ok, 1 check failed, 2 usage, 3 config, 4 repository/state,
70 internal bug). Library modules are imported inside commands so `--help`
starts fast and never loads dvc or jsonschema.
"""

from __future__ import annotations

import sys
import traceback

import click

# Importing the command modules registers their commands on `cli` (click only).
from dvcckpt.cli import cards, catalog, promotion, storage  # noqa: F401
from dvcckpt.cli.group import cli
from dvcckpt.errors import DvcckptError

EXIT_INTERNAL = 70
EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn every failure into a message and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    show_traceback = "--traceback" in args
    args = [a for a in args if a != "--traceback"]
    try:
        result = cli.main(args=args, prog_name="dvcckpt", standalone_mode=False)
    except DvcckptError as exc:
        _report(exc.message, exc.hint, exc.details, show_traceback)
        return exc.exit_code
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "dvcckpt"
        _report(exc.format_message(), f"see `{command} --help`", [], show_traceback)
        return EXIT_USAGE
    except click.Abort:
        _report("aborted", None, [], show_traceback)
        return 130
    except KeyboardInterrupt:
        _report("interrupted", None, [], show_traceback)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the boundary: anything else is our bug
        _report(
            f"internal error: {type(exc).__name__}: {exc}",
            "re-run with --traceback and report it at the dvcckpt issue tracker",
            [],
            show_traceback,
        )
        return EXIT_INTERNAL
    return result if isinstance(result, int) else 0


def _report(message: str, hint: str | None, details: list[str], show_traceback: bool) -> None:
    if show_traceback:
        traceback.print_exc()
    click.echo(f"error: {message}", err=True)
    for line in details:
        click.echo(f"  {line}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
