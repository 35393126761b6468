"""The YAML language of cards and config: a subset that every YAML reader reads alike.

YAML parsers disagree at the edges (directives switching to YAML 1.1, merge keys,
tags, a byte-order mark, keys that are numbers, line separators), so a reviewer, the
hook and the gates could each see a different card. Text that uses any of these is
refused, naming the file and line. The checks are split so the common case stays
cheap: `prepare` (one regex over the text) always runs; the libyaml event scan runs
only when `needs_scan` finds a character or a depth that could need it.
"""

from __future__ import annotations

import re
from typing import Any

from dvcckpt.core.limits import MAX_DEPTH
from dvcckpt.errors import CardError

# Characters outside YAML's printable set, plus the ones readers disagree about:
# NEL/LS/PS end a line for YAML 1.1 readers (libyaml) but not for YAML 1.2 ones,
# a byte-order mark is allowed only as the first character, and U+FFFD is what
# a lenient decoder leaves for bytes that were not UTF-8.
_FORBIDDEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffd\ufffe\uffff\ud800-\udfff]"
)
# Anchors/aliases/tags need `&*!`; merge keys `<<`; directives a `%` line; several
# documents a `---`/`...` line. Without any of them the event scan has nothing to find.
_SCAN_MARKERS = re.compile(r"[&*!]|<<|(?:^|[\r\n])(?:%|---|\.\.\.)")
_INDENT = re.compile(r"(?:^|[\r\n])([ \t]*)")
# The fast parser (yaml-rs) is safe to this depth; it overflows its stack far deeper.
SAFE_PARSE_DEPTH = 1000
# Plain keys that some reader resolves to a number, boolean or null (YAML 1.2 core,
# plus ruamel's wider int/float forms): keys must be strings.
_NON_STRING_KEY = re.compile(
    r"(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE"
    r"|[-+]?(?:0b[01_]+|0o?[0-7_]+|0x[0-9a-fA-F_]+|[0-9_]+)"
    r"|[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
    r"|[-+]?\.(?:inf|Inf|INF|nan|NaN|NAN))?",
)


def fix_hint(source: str) -> str:
    return f"fix the YAML syntax in {source} (a YAML linter shows the exact spot)"


def decode(data: bytes, source: str) -> str:
    """UTF-8 text of a file's bytes, with an error that says what the bytes are instead."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CardError(
            f"{source}: the file is UTF-16 text; dvcckpt reads UTF-8 only",
            hint=f"save {source} as UTF-8 (without a byte-order mark)",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CardError(
            f"{source}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x})",
            hint=f"save {source} as UTF-8",
        ) from None


def prepare(text: str, source: str) -> str:
    """The text without a leading byte-order mark; refuses characters readers disagree on.

    One leading BOM is dropped by every reader alike (editors on Windows add it);
    anywhere else it is refused.
    """
    text = text.removeprefix("\ufeff")
    found = _FORBIDDEN.search(text)
    if found:
        char = found.group()
        line = text.count("\n", 0, found.start()) + 1
        raise CardError(f"{source}: line {line}: {_describe_char(char)}", hint=_char_hint(char, source))
    return text


def _describe_char(char: str) -> str:
    if char == "\x00":
        return "NUL character (is the file UTF-16?); dvcckpt reads UTF-8 only"
    if char == "\ufeff":
        return "byte-order mark (U+FEFF) inside the file; one is allowed only at its start"
    if char == "\ufffd":
        return "U+FFFD replacement character: the file is not valid UTF-8"
    return f"character U+{ord(char):04X} is not allowed in YAML read by dvcckpt"


def _char_hint(char: str, source: str) -> str:
    if char in "\x00\ufffd":
        return f"save {source} as UTF-8"
    return "remove it, or write it as an escape (e.g. \\u2028) inside double quotes"


def needs_scan(text: str) -> bool:
    """Whether the text could hold anything the event scan refuses (sound, never misses).

    The nesting bound: flow collections nest once per `[`/`{` (twice for `[a: ...]`);
    block collections that go on over several lines nest at most twice per column
    of indentation, and those that stay on one line open after a `-` or `?`.
    """
    if _SCAN_MARKERS.search(text):
        return True
    indent = max(map(len, _INDENT.findall(text)), default=0)
    block = 2 * (indent + 1) + text.count("-") + text.count("?")
    flow = 2 * text.count("[") + text.count("{")
    return block + flow + 1 > SAFE_PARSE_DEPTH


def scan(text: str, source: str) -> None:
    """Refuse, with its line, anything outside the accepted language (libyaml events).

    Events come from libyaml's iterative parser, so no input can exhaust the stack.
    """
    import yaml

    stack: list[_Mapping | None] = []  # per open collection (None: a list)
    documents = 0
    try:
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                _refuse_document(event, documents, source)
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                stack.pop()
            elif isinstance(event, yaml.NodeEvent):
                mapping = stack[-1] if stack else None
                is_key = mapping is not None and mapping.nodes % 2 == 0
                _refuse_node(event, is_key, source)
                if mapping is not None:
                    mapping.add(event, is_key, source)
                if isinstance(event, yaml.CollectionStartEvent):
                    stack.append(_Mapping() if isinstance(event, yaml.MappingStartEvent) else None)
                    if len(stack) > MAX_DEPTH:
                        raise _refusal(event, source, f"nested deeper than {MAX_DEPTH} levels")
    except yaml.YAMLError as exc:
        if "nesting depth" in str(exc):
            raise CardError(
                f"{source}: nested deeper than {MAX_DEPTH} levels", hint=_DEPTH_HINT
            ) from None
        raise CardError(f"{source}: invalid YAML: {describe(exc)}", hint=fix_hint(source)) from None


_DEPTH_HINT = "flatten the structure; cards hold a few levels of mappings and lists"


def _refuse_document(event: Any, documents: int, source: str) -> None:
    if event.version or event.tags:
        raise _refusal(
            event,
            source,
            "YAML directives (%YAML, %TAG) are not allowed",
            "remove the directive lines; dvcckpt reads YAML 1.2 only",
        )
    if documents > 1:
        raise _refusal(
            event, source, "more than one YAML document", "keep one document: remove the `---`"
        )


class _Mapping:
    """An open mapping: its nodes so far (even: the next one is a key) and its keys."""

    __slots__ = ("keys", "nodes")

    def __init__(self) -> None:
        self.nodes = 0
        self.keys: set[str] = set()

    def add(self, event: Any, is_key: bool, source: str) -> None:
        self.nodes += 1
        if not is_key:
            return
        if event.value in self.keys:
            raise _refusal(
                event, source, f"duplicate key {event.value!r}", "keep one of the two entries"
            )
        self.keys.add(event.value)


def _refuse_node(event: Any, is_key: bool, source: str) -> None:
    import yaml

    if isinstance(event, yaml.AliasEvent) or event.anchor:
        raise _refusal(
            event,
            source,
            "YAML anchors and aliases are not allowed",
            "write the value out in full; aliases can expand into huge documents",
        )
    if event.tag is not None:
        raise _refusal(
            event,
            source,
            f"YAML tag {event.tag!r} is not allowed",
            "remove the tag; cards hold plain mappings, lists, strings and numbers",
        )
    if not is_key:
        return
    if not isinstance(event, yaml.ScalarEvent):
        raise _refusal(event, source, "a mapping key must be a string, not a mapping or list")
    if event.value == "<<":
        raise _refusal(
            event,
            source,
            "the key `<<` (a YAML merge key) is not allowed",
            "write the merged keys out in full",
        )
    if event.implicit[0] and _NON_STRING_KEY.fullmatch(event.value):
        raise _refusal(
            event,
            source,
            f"key {event.value!r} is not a string (YAML reads it as a number, boolean or null)",
            f"quote the key: '{event.value}'",
        )


def _refusal(event: Any, source: str, problem: str, hint: str = "") -> CardError:
    return CardError(
        f"{source}: line {line_of(event)}: {problem}",
        hint=hint or "keys must be strings; quote them",
    )


def line_of(event: Any) -> int:
    mark = getattr(event, "start_mark", None)
    return int(mark.line) + 1 if mark is not None else 0


def describe(exc: Exception) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return str(problem)
