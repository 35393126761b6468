"""The YAML language of cards and config: a subset that every YAML reader reads alike.

YAML parsers disagree at the edges (directives switching to YAML 1.1, merge keys,
tags, a byte-order mark, keys that are numbers, line separators), so a reviewer, the
hook and the gates could each see a different card. Text that uses any of these is
refused, naming the file and line. The checks are split so the common case stays
cheap: `prepare` (one regex over the text) always runs; `needs_scan` (substring
tests) says whether the text could hold anything refused or anything yaml-rs reads
differently from ruamel; only then is the data built by `load`, from libyaml's
events, instead of by yaml-rs (adapters/yamldoc.load_fast).
"""

from __future__ import annotations

import re
from typing import Any

from dvcckpt.core.limits import MAX_DEPTH
from dvcckpt.errors import CardError

# Characters outside YAML's printable set, plus the ones readers disagree about:
# a raw tab (readers differ on where one may stand; `\t` in double quotes is fine),
# NEL/LS/PS end a line for YAML 1.1 readers (libyaml) but not for YAML 1.2 ones,
# a byte-order mark is allowed only as the first character, and U+FFFD is what
# a lenient decoder leaves for bytes that were not UTF-8.
_FORBIDDEN = re.compile(
    "[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffd\ufffe\uffff\ud800-\udfff]"
)
# Anchors/aliases/tags need `&*!`, block scalars `|>`, merge keys `<<`; directives
# start a line with `%`, more documents with `---`/`...`. A text without any of
# them holds none (plain `in` tests: the common case pays microseconds).
_MARKER_CHARS = "&*!|>"
# Plain scalars that YAML readers read differently: `_` digit separators (YAML 1.1
# only; yaml-rs and ruamel accept different forms, e.g. `_1`, `1_e3`, `+_`), an
# upper-case radix (`0X1F`: a number for yaml-rs only), `.5e3` (a float in YAML 1.2,
# a string for ruamel) and mixed-case `.iNf`.
_UNDERSCORED = re.compile(r"[-+]?(?:[0-9_.]*(?:[eE][-+]?[0-9_]*)?|0[xXoObB][0-9a-fA-F_]*)")
_DISPUTED = re.compile(r"[-+]?0[XOB][0-9a-fA-F_]*|[-+]?\.[0-9]+[eE][0-9]+|(?i:[-+]?\.(?:inf|nan))")
_UNDISPUTED = re.compile(r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")
# Every text holding one of those as a plain scalar has one of these: a `_` in a
# delimited run of decimal-number characters, `_` after a radix prefix, `.5e3`, an
# upper-case radix prefix, or `.i`/`.n` (any case: the special floats). Each is
# searched on its own so the regex engine can skip ahead to its first character.
_UNDERSCORE_TAIL = re.compile(r"_[-+0-9_.eE]*[\s\[\]{},:#]")
_NUMBER_CHARS = frozenset("-+0123456789_.eE")
_DELIMITERS = frozenset(" \n\r[]{},:")
_RADIX_UNDERSCORE = re.compile(r"0[xXoObB][0-9a-fA-F]*_")
_DOT_EXPONENT_MARK = re.compile(r"\.[0-9]+[eE][0-9]")
_RADIX_UPPER = re.compile(r"0[XOB]")
_SPECIAL_FLOAT_MARK = re.compile(r"\.[iInN]")
_INDENT = re.compile(r"[\n\r]( +)")
# Below this indentation (one fast substring test) the exact one need not be computed.
_INDENT_CAP = 300
# The fast parser (yaml-rs) is safe to this depth; it overflows its stack far deeper.
SAFE_PARSE_DEPTH = 1000


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
        raise CardError(
            f"{source}: line {line}: {_describe_char(char)}", hint=_char_hint(char, source)
        )
    return text


def _describe_char(char: str) -> str:
    if char == "\x00":
        return "NUL character (is the file UTF-16?); dvcckpt reads UTF-8 only"
    if char == "\ufeff":
        return "byte-order mark (U+FEFF) inside the file; one is allowed only at its start"
    if char == "\ufffd":
        return "U+FFFD replacement character: the file is not valid UTF-8"
    if char == "\t":
        return "tab character (YAML readers disagree about tabs)"
    return f"character U+{ord(char):04X} is not allowed in YAML read by dvcckpt"


def _char_hint(char: str, source: str) -> str:
    if char in "\x00\ufffd":
        return f"save {source} as UTF-8"
    if char == "\t":
        return "indent and separate with spaces; inside text write \\t in double quotes"
    return "remove it, or write it as an escape (e.g. \\u2028) inside double quotes"


def needs_scan(text: str) -> bool:
    """Whether the text could hold anything `load` refuses or yaml-rs reads differently
    from ruamel (sound: it never misses one; it may say yes for nothing).

    The nesting bound: flow collections nest once per `[`/`{` (twice for `[a: ...]`);
    block collections that go on over several lines nest at most twice per column
    of indentation, and those that stay on one line open after a `-` or `?`.
    """
    # Single-character tests first (memchr-fast); the longer ones only when needed.
    if any(mark in text for mark in _MARKER_CHARS) or "<<" in text:
        return True
    if "%" in text and (text.startswith("%") or "\n%" in text or "\r%" in text):
        return True
    ends = ("\n", "\r") if "\r" in text else ("\n",)
    if text.startswith(("---", "...")) or any(f"{e}---" in text or f"{e}..." in text for e in ends):
        return True
    if _underscored_number(f"\n{text}\n") or _RADIX_UNDERSCORE.search(text):
        return True
    if _DOT_EXPONENT_MARK.search(text) or _SPECIAL_FLOAT_MARK.search(text):
        return True
    if _RADIX_UPPER.search(text):
        return True
    indent = _INDENT_CAP
    if " " * _INDENT_CAP in text:
        indent = max(map(len, _INDENT.findall(text)), default=0)
        indent = max(indent, len(text) - len(text.lstrip(" ")))
    block = 2 * (indent + 1) + text.count("-") + text.count("?")
    flow = 2 * text.count("[") + text.count("{")
    return block + flow + 1 > SAFE_PARSE_DEPTH


def _underscored_number(text: str) -> bool:
    """A `_` inside a delimited run of number characters (`text` starts and ends with a
    newline, so every run has a delimiter on both sides)."""
    for match in _UNDERSCORE_TAIL.finditer(text):
        start = match.start() - 1
        while text[start] in _NUMBER_CHARS:
            start -= 1
        if text[start] in _DELIMITERS:
            return True
    return False


def load(text: str, source: str) -> tuple[Any, bool]:
    """Plain data of the text, refusing (with its line) anything outside the language,
    and whether it holds a block scalar (`|`, `>`: readers disagree on some of
    their edge cases, so the caller has them read a second time).

    Built from libyaml's events (an iterative parser, so no input can exhaust the
    stack), with the scalar types ruamel's YAML 1.2 resolver gives, so the
    round-trip reader used for editing reads the same data.
    """
    import yaml

    stack: list[_Open] = []
    documents, root, blocks = 0, None, False
    try:
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                _refuse_document(event, documents, source)
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                stack.pop()
            elif isinstance(event, yaml.DocumentEndEvent) and event.explicit:
                raise _refusal(
                    event, source, "the document end marker `...` is not allowed", "remove it"
                )
            elif isinstance(event, yaml.NodeEvent):
                parent = stack[-1] if stack else None
                if getattr(event, "style", None) in ("|", ">"):
                    if parent is None:  # readers disagree on where it ends
                        raise _refusal(event, source, "the document is a block scalar")
                    blocks = True
                is_key = parent is not None and parent.is_mapping and parent.nodes % 2 == 0
                _refuse_node(event, is_key, source)
                value = _value(event, source)
                if parent is None:
                    root = value
                else:
                    parent.add(event, value, is_key, source)
                if isinstance(event, yaml.CollectionStartEvent):
                    stack.append(_Open(value))
                    if len(stack) > MAX_DEPTH:
                        problem = f"nested deeper than {MAX_DEPTH} levels"
                        raise _refusal(event, source, problem, _DEPTH_HINT)
    except yaml.YAMLError as exc:
        if "nesting depth" in str(exc):
            raise CardError(
                f"{source}: nested deeper than {MAX_DEPTH} levels", hint=_DEPTH_HINT
            ) from None
        raise CardError(f"{source}: invalid YAML: {describe(exc)}", hint=fix_hint(source)) from None
    return root, blocks


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


class _Open:
    """An open collection: its value, its nodes so far (in a mapping, even: the next
    node is a key), its keys and the key waiting for its value."""

    __slots__ = ("is_mapping", "key", "keys", "nodes", "value")

    def __init__(self, value: dict[str, Any] | list[Any]) -> None:
        self.value = value
        self.is_mapping = isinstance(value, dict)
        self.nodes = 0
        self.keys: set[Any] = set()
        self.key: Any = None

    def add(self, event: Any, value: Any, is_key: bool, source: str) -> None:
        self.nodes += 1
        if isinstance(self.value, list):
            self.value.append(value)
        elif not is_key:
            self.value[self.key] = value
        elif value in self.keys:
            raise _refusal(
                event, source, f"duplicate key {event.value!r}", "keep one of the two entries"
            )
        else:
            self.keys.add(value)
            self.key = value


def _value(event: Any, source: str) -> Any:
    import yaml

    if isinstance(event, yaml.MappingStartEvent):
        return {}
    if isinstance(event, yaml.SequenceStartEvent):
        return []
    if not event.implicit[0]:  # quoted or block: a string
        return event.value
    try:
        return resolve(event.value)
    except OverflowError:
        raise _refusal(event, source, _RANGE, "write a smaller number") from None


_RANGE = "an integer with this many digits is outside the 64-bit integer range"
# ruamel's YAML 1.2 resolver (the editing reader): same order, same forms.
_BOOL = re.compile(r"true|True|TRUE|false|False|FALSE")
_NULL = re.compile(r"~|null|Null|NULL|")
_FLOAT = re.compile(
    r"[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
    r"|[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?"
)
_SPECIAL_FLOAT = re.compile(r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")
_INT = re.compile(r"[-+]?(?:0b[0-1_]+|0o?[0-7_]+|[0-9_]+|0x[0-9a-fA-F_]+)")


def resolve(text: str) -> Any:
    """The value of a plain scalar: bool, float, int, null or string.

    OverflowError for an integer too long to be within any limit (Python's int()
    of thousands of digits is slow, or refused).
    """
    if _BOOL.fullmatch(text):
        return text[0] in "tT"
    if _FLOAT.fullmatch(text):
        return float(text.replace("_", ""))
    if _SPECIAL_FLOAT.fullmatch(text):
        return float(text.replace(".", "", 1))  # Python reads inf/Inf/INF, nan/NaN/NAN
    if _INT.fullmatch(text):
        digits = text.replace("_", "").lstrip("+")
        if len(digits) > 40:
            raise OverflowError(text)
        sign, digits = (-1, digits[1:]) if digits.startswith("-") else (1, digits)
        base = {"0b": 2, "0o": 8, "0x": 16}.get(digits[:2], 10)
        return sign * int(digits[2:] if base != 10 else digits, base)
    if _NULL.fullmatch(text):
        return None
    return text


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
    if isinstance(event, yaml.ScalarEvent) and event.implicit[0]:
        _refuse_disputed(event, source)
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
    if event.implicit[0] and not _is_string(event.value):
        raise _refusal(
            event,
            source,
            f"key {event.value!r} is not a string (YAML reads it as a number, boolean or null)",
            f"quote the key: '{event.value}'",
        )


def needs_escapes(value: str) -> bool:
    """Whether text holds characters the reader refuses raw (the writer escapes them)."""
    return _FORBIDDEN.search(value) is not None


def is_disputed(value: str) -> bool:
    """Whether YAML readers disagree about this text as a plain scalar (the writer quotes it)."""
    if "_" in value and _UNDERSCORED.fullmatch(value):
        return True
    return bool(_DISPUTED.fullmatch(value)) and not _UNDISPUTED.fullmatch(value)


def _refuse_disputed(event: Any, source: str) -> None:
    value = event.value
    if is_disputed(value):
        raise _refusal(
            event,
            source,
            f"the value {value!r} is read differently by different YAML readers",
            "write the number without `_` and with a digit before the point "
            "(e.g. 1000, 0.5e3), or quote it if it is text",
        )


def _is_string(plain: str) -> bool:
    try:
        return isinstance(resolve(plain), str)
    except OverflowError:
        return False


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
