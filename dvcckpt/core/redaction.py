"""Keeping secrets out of cards: credentials in URLs, secret-looking command-line values.

Pure string functions, applied to everything dvcckpt records about how a
checkpoint was made (remote URLs, command lines, imported run records).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

_SECRET_WORDS = re.compile(
    r"(token|secret|passw(or)?d|pwd|api[_-]?key|access[_-]?key|credential|auth)", re.I
)
REDACTED = "***"


def strip_credentials(url: str | None) -> str | None:
    """`https://user:tok@host/x.git` -> `https://host/x.git`; scp-style URLs keep `git@`."""
    if not url or "://" not in url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def redact_command(argv: Sequence[str]) -> str:
    """Command line as a shell string, with values of secret-looking options hidden."""
    redacted: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            redacted.append(REDACTED)
            hide_next = False
            continue
        key, sep, _value = arg.partition("=")
        if _SECRET_WORDS.search(key) and sep:
            redacted.append(f"{key}={REDACTED}")
        elif arg.startswith("-") and _SECRET_WORDS.search(arg):
            redacted.append(arg)
            hide_next = True
        elif "://" in arg:
            redacted.append(strip_credentials(arg) or arg)
        else:
            redacted.append(arg)
    return shlex.join(redacted)


def redact_command_text(command: str) -> str:
    """`redact_command` for a command line given as one string."""
    try:
        argv = shlex.split(command)
    except ValueError:
        argv = command.split()
    return redact_command(argv)
