"""Resource limits on untrusted input, in one place so every reader enforces the same ones.

The YAML reader (adapters/yamldoc), the schema validation (core/schema) and the
writer (`yamldoc.dump`) all call `problems()` on the same plain data, so a card
the hook accepts is one the catalog can store and every later command can read,
and the writer never produces a card that the readers would refuse.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

# A card (or config, gates, `.dvc` file) larger than this is refused before parsing;
# dvcckpt.yaml may lower it for cards (`card_max_bytes`).
DEFAULT_MAX_BYTES = 1 << 20
# The most any configuration may allow: committed card versions are read with this
# fixed limit, so a change that shrinks `card_max_bytes` cannot make them unreadable
# (and so skip their immutability check).
HARD_MAX_BYTES = 16 << 20
# Nesting of mappings and lists (the top-level mapping is depth 1). Real cards use
# about 6; the bound keeps every recursive consumer (ruamel, jsonschema, JSON
# encoders) far from Python's recursion limit, whatever the input.
MAX_DEPTH = 32
# Characters in one string value; longer content belongs in an artifact.
MAX_STRING_CHARS = 65_536
# Characters in one mapping key (metric, param and section names).
MAX_KEY_CHARS = 256
# Characters in a checkpoint, model, stage or rule name (the schemas' maxLength):
# names become file and branch names, which the file system caps at 255 bytes.
MAX_NAME_CHARS = 200
# Integers must fit SQLite's signed 64-bit INTEGER, so the catalog stores what the
# hook accepted; floats must be finite (JSON and SQL have no NaN or infinity).
MIN_INT = -(1 << 63)
MAX_INT = (1 << 63) - 1
# Nesting of parentheses and operators in a `--where` expression.
MAX_EXPRESSION_DEPTH = 64
# Text that cannot be written as UTF-8 (lone surrogates), or that a lenient decoder
# left for bytes that were not UTF-8 (U+FFFD): refused in values and keys alike.
_UNENCODABLE = re.compile("[\ud800-\udfff\ufffd]")
# Problems listed per file: enough to fix them all, bounded however bad the input.
MAX_PROBLEMS = 20


def field_path(parts: Iterator[Any] | list[Any] | tuple[Any, ...]) -> str:
    """`metrics.dev.class_f1.neg`, `evaluations[2].split`."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def problems(
    value: Any, within: tuple[Any, ...] = (), strings: bool = True, values: bool = True
) -> list[str]:
    """Every limit `value` breaks, as `field: message` (at most MAX_PROBLEMS).

    `within` is where the value sits in a card (a `--metrics` file is the card's
    `metrics`): fields are named, and depth counted, from there. Iterative, so a
    document of any depth is judged without recursion; nothing below MAX_DEPTH is
    visited. `strings=False` skips the string values in the quick pass, for a reader
    that has shown none can break a limit (its whole text is shorter, and escape-free).
    `values=False` judges only the structure (depth and keys), which is what recursive
    code such as jsonschema needs; the values are then reported with its findings.
    """
    if values and _plainly_within(value, len(within), strings):
        return []
    found: list[str] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [(within, value)]
    while stack and len(found) < MAX_PROBLEMS:
        path, item = stack.pop()
        problem = _scalar_problem(item) if values else None
        if problem:
            found.append(f"{field_path(path)}: {problem}")
            continue
        if not isinstance(item, Mapping | list):
            continue
        if len(path) >= MAX_DEPTH:
            found.append(f"{field_path(path)}: nested deeper than {MAX_DEPTH} levels")
            continue
        if isinstance(item, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(item))))
            continue
        for key, child in reversed(list(item.items())):
            key_problem = _key_problem(key)
            if key_problem:
                found.append(f"{field_path(path)}: {key_problem}")
            else:
                stack.append(((*path, key), child))
    return found


def _plainly_within(value: Any, depth: int, strings: bool) -> bool:
    """True when plain data (exact dict/list/str/int/float/bool/None) is within every
    limit: the quick pass for the common case, with no paths built. False means
    "look closer" (a problem, or a type it does not judge, such as ruamel's)."""
    if type(value) is not dict and type(value) is not list:
        return False
    stack: list[tuple[Any, int]] = [(value, depth)]
    while stack:
        item, level = stack.pop()
        if level >= MAX_DEPTH:
            return False
        if type(item) is dict:
            if "<<" in item or not all(type(key) is str for key in item):
                return False
            if max(map(len, item), default=0) > MAX_KEY_CHARS or not _texts_ok(item):
                return False
            item = item.values()
        for child in item:
            kind = type(child)
            if kind is str:
                if strings and (len(child) > MAX_STRING_CHARS or not _texts_ok((child,))):
                    return False
            elif kind is int:
                if not MIN_INT <= child <= MAX_INT:
                    return False
            elif kind is float:
                if child - child != 0.0:  # NaN and infinities
                    return False
            elif kind is dict or kind is list:
                stack.append((child, level + 1))
            elif child is not None and kind is not bool:
                return False
    return True


def _texts_ok(texts: Any) -> bool:
    return all(text.isascii() or not _UNENCODABLE.search(text) for text in texts)


def _scalar_problem(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int) and not MIN_INT <= value <= MAX_INT:
        return f"{_short(value)} is outside the 64-bit integer range"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            return f"a {len(value)}-character string is over the {MAX_STRING_CHARS}-character limit"
        return _text_problem(value)
    return None


def _text_problem(text: str) -> str | None:
    found = None if text.isascii() else _UNENCODABLE.search(text)
    if found is None:
        return None
    if found.group() == "\ufffd":
        return "holds U+FFFD, the mark of text that was not valid UTF-8"
    return "holds a lone surrogate character, which is not valid Unicode text"


def _key_problem(key: Any) -> str | None:
    if not isinstance(key, str):
        return f"key {_short(key)} is a {type(key).__name__}, keys must be strings (quote it)"
    if len(key) > MAX_KEY_CHARS:
        return f"a {len(key)}-character key is over the {MAX_KEY_CHARS}-character limit"
    if key == "<<":
        return "the key `<<` (a YAML merge key) is not allowed"
    return _text_problem(key)


def _short(value: Any) -> str:
    if isinstance(value, int) and abs(value) >= 10**30:
        return f"a {value.bit_length()}-bit integer"  # str() of a huge int is slow, or refused
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."
