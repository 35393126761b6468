"""The canonical YAML of a plain document without ruamel, when that is easy to be sure of.

ruamel's emitter costs ~2 ms for a small document, which dominates writing a site of
a thousand model cards or a card in a background save. Most documents dvcckpt writes
are plain mappings of plain values, and for those the canonical text
(`yamldoc.dump`: mapping indent 2, sequence dash at 2 and content at 4, no wrapping,
explicit `null`) is simple to produce. `emit` writes exactly what ruamel would, or
returns None the moment anything could need ruamel's judgement (a string that would
be quoted, escaped or folded, a list in a list, a non-ASCII character, an unusual
float); `tests/test_yaml_fast.py` checks it against ruamel on generated documents.
`yamldoc.dump` still reads the text back before using it.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

from dvcckpt.adapters import yamlstrict

# Strings that YAML 1.1 readers would turn into booleans or numbers.
_YAML11_AMBIGUOUS = re.compile(
    r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF"
    r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?"
    r"|[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?[0-9][0-9_]*)$"
)
# Dates and times (YAML 1.1's timestamp), which readers would turn into datetimes.
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}"
    r"(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?"
)

# Strings ruamel writes unquoted and every YAML reader takes as the same string: words
# of letters, digits and `_./+@()=-` (and `:` inside a word, as in URLs), single spaces
# between them, not starting with a character YAML gives a meaning to.
_CHAR = r"[A-Za-z0-9_./+@()=-]"
_WORD = rf"{_CHAR}(?:(?:{_CHAR}|:)*{_CHAR})?"
_WORDS = re.compile(rf"[A-Za-z_/]{_WORD[len(_CHAR) :]}(?: {_WORD})*")
# What single quotes hold as they are: printable ASCII without a quote.
_QUOTABLE = re.compile(r"[ -&(-~]*")
# Digit-first strings that are no number, date or time in YAML 1.1 or 1.2: hex digests
# with a letter other than `e`, and dotted versions (`3.11.7`, `2.13.0+cpu`).
_DIGEST = re.compile(r"[0-9a-f]*[a-df][0-9a-f]*")
_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+){2,}(?:[+-][A-Za-z0-9.]+)?")
# Words YAML 1.1 reads as booleans or null (ruamel quotes them).
_RESERVED = frozenset({"y", "yes", "n", "no", "on", "off", "true", "false", "null"})
_LONGEST = 1000  # longer strings are left to ruamel (its line width is 4096)


class _Unsure(Exception):
    """Something ruamel might write differently: it writes the document instead."""


def emit(document: dict[str, Any]) -> str | None:
    """The canonical text of `document` (a plain mapping), or None to ask ruamel."""
    lines: list[str] = []
    try:
        _mapping(document, 0, None, lines)
    except _Unsure:
        return None
    return "\n".join(lines) + "\n" if lines else None


def _mapping(mapping: dict[str, Any], column: int, dash: int | None, out: list[str]) -> None:
    """Keys at `column`; the first one after `- ` at `dash` when it is a list item."""
    for index, (key, value) in enumerate(mapping.items()):
        if not isinstance(key, str):
            raise _Unsure
        lead = " " * dash + "- " if dash is not None and index == 0 else " " * column
        head = f"{lead}{_string(key)}:"
        if type(value) is dict and value:
            out.append(head)
            _mapping(value, column + 2, None, out)
        elif type(value) is list and value:
            out.append(head)
            _sequence(value, column + 2, out)
        else:
            out.append(f"{head} {_scalar(value)}")


def _sequence(items: list[Any], dash: int, out: list[str]) -> None:
    for item in items:
        if type(item) is dict and item:
            _mapping(item, dash + 2, dash, out)
        elif type(item) is list and item:
            raise _Unsure  # `-   - x`: ruamel's own layout
        else:
            out.append(f"{' ' * dash}- {_scalar(item)}")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is float:
        return _float(value)
    if kind is str:
        return _string(value)
    if kind is dict and not value:
        return "{}"
    if kind is list and not value:
        return "[]"
    raise _Unsure


def quoting(data: str) -> str | None:
    """The quote style canonical YAML gives a string: `"` when it needs escapes, `'` when
    a YAML 1.1 reader would take it for something else (ruamel quotes a timestamp on its
    own, so the text is the same), else None (plain)."""
    if yamlstrict.needs_escapes(data):  # double quotes: the emitter escapes them
        return '"'
    ambiguous = _YAML11_AMBIGUOUS.match(data) or _TIMESTAMP.fullmatch(data)
    return "'" if ambiguous or yamlstrict.is_disputed(data) else None


def float_text(data: float) -> str:
    """A float as canonical YAML spells it: `repr`, with `1.0e-05` for `1e-05`."""
    text = repr(data)
    if "e" in text and "." not in text.split("e")[0]:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent if exponent[0] in '+-' else '+' + exponent}"
    return text


def _float(value: float) -> str:
    if not math.isfinite(value):
        raise _Unsure
    return float_text(value)


def _string(value: str) -> str:
    text = _string_text(value)
    if text is None:
        raise _Unsure
    return text


@lru_cache(maxsize=4096)  # keys, metric names and types repeat from card to card
def _string_text(value: str) -> str | None:
    """Plain text only where ruamel would write it plain too (it still decides on
    anything less simple); None: unsure."""
    if len(value) > _LONGEST:
        return None
    style = quoting(value)
    if style == "'" and _QUOTABLE.fullmatch(value):
        return f"'{value}'"
    if style is not None or value.lower() in _RESERVED:
        return None
    if _WORDS.fullmatch(value) or _DIGEST.fullmatch(value) or _VERSION.fullmatch(value):
        return value
    return None
