"""Naming conventions: render run and checkpoint names from patterns, parse them back.

A pattern is a `str.format` template over known placeholders, e.g.
`{model}-{phase}-{kind}-{run_id}-step{step:06d}`. Parsing reads a name back into its
model, phase, kind, run id and step.

What `add` writes is what the hook accepts: `name_for` renders a name and reads it
back, and refuses (naming the placeholder) a value the name cannot carry, such as
an epoch of 2.5 (names hold whole numbers) or a model with a space.

Parsing is linear in the name's length whatever the pattern: instead of a
backtracking regular expression (`{project}-{task}-{model}` over a long name of
dashes takes hours), one backward pass marks where the rest of the pattern can
still match, then one forward pass picks each placeholder's value with the same
preference a regex would (shortest for names, longest for numbers).

The pattern language is deliberately small, so every pattern can be read back:
each placeholder at most once, a literal separator between two placeholders,
format specs only on integers and only a bounded zero-padded width (`{step:06d}`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import string
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dvcckpt.errors import ConfigError, UsageError

DEFAULT_RUN_PATTERN = "{project}_{task}_{model}_{keyparam}_{date}"
# The run id keeps two runs of one model apart: names are unique for ever.
DEFAULT_CHECKPOINT_PATTERN = "{model}-{phase}-{kind}-{run_id}-step{step:06d}"
EARLIER_DEFAULT = "{model}-{phase}-{kind}-step{step:06d}"
# A pattern longer than this is refused; names longer than NAME_MAX never match one.
PATTERN_MAX = 200
NAME_MAX = 1000
KEYPARAM_MAX = 64  # characters of `{keyparam}` in a run name
WIDTH_MAX = 20  # `{step:020d}` at most: a step fits in 19 digits (SQLite's integer range)

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_DIGITS = "0123456789"
# Placeholder -> (first character, further characters, lazy): a run of characters,
# shortest first when lazy (a name part), longest first otherwise (a number).
_RUNS: dict[str, tuple[str, str, bool]] = {
    "project": (_ALNUM, _ALNUM + ".-", True),
    "task": (_ALNUM, _ALNUM + ".-", True),
    "model": (_ALNUM, _ALNUM + "._-", True),
    "keyparam": (_ALNUM, _ALNUM + "._+-", True),  # `_`: keys such as learning_rate
    "phase": (_LOWER, _LOWER + _DIGITS + "_", True),
    "run_id": (_ALNUM, _ALNUM + "._-", True),
    "step": (_DIGITS, _DIGITS, False),
    "epoch": (_DIGITS, _DIGITS, False),
    "seed": (_DIGITS, _DIGITS, False),
}
_WORDS = {"kind": ("full", "weights", "optimizer", "ema")}
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
PLACEHOLDERS = (*_RUNS, *_WORDS, "date")
_INTEGER_FIELDS = {"step", "epoch", "seed"}
_SPEC = re.compile(r"0?([1-9][0-9]*)?d")

_PATTERN_HINT = (
    "placeholders are "
    + ", ".join("{" + name + "}" for name in PLACEHOLDERS)
    + f"; put a separator between two of them; integers take a width up to {WIDTH_MAX} "
    "(e.g. {step:06d})"
)


def placeholders(pattern: str, where: str = "naming pattern") -> list[str]:
    """The placeholders of a valid pattern; ConfigError naming `where` otherwise."""
    return [name for _literal, name, _spec in _parts(pattern, where) if name]


def _parts(pattern: str, where: str = "naming pattern") -> list[tuple[str, str | None, str]]:
    """(literal, placeholder or None, format spec) triples of a valid pattern."""

    def refuse(problem: str) -> ConfigError:
        shown = pattern if len(pattern) <= 80 else pattern[:77] + "..."
        return ConfigError(f"{where} {shown!r}: {problem}", hint=_PATTERN_HINT)

    if len(pattern) > PATTERN_MAX:
        raise refuse(f"longer than {PATTERN_MAX} characters")
    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        raise refuse(str(exc)) from None
    parts: list[tuple[str, str | None, str]] = []
    for literal, name, spec, conversion in parsed:
        problem = _placeholder_problem(name, spec or "", conversion, parts, literal)
        if problem:
            raise refuse(problem)
        parts.append((literal, name, spec or ""))
    return parts


def _placeholder_problem(
    name: str | None,
    spec: str,
    conversion: str | None,
    before: list[tuple[str, str | None, str]],
    literal: str,
) -> str | None:
    if name is None:
        return None
    if name not in PLACEHOLDERS:
        return f"unknown placeholder {{{name}}}"
    if conversion:
        return f"{{{name}}} takes no conversion (!{conversion})"
    if spec and name not in _INTEGER_FIELDS:
        return f"{{{name}}} takes no format ({spec[:20]!r})"
    width = _SPEC.fullmatch(spec)
    if spec and width is None:
        return f"{{{name}}} takes only a zero-padded width such as {{{name}:06d}}"
    digits = width.group(1) or "" if width else ""
    if len(digits) > 2 or int(digits or 0) > WIDTH_MAX:  # never int() of a huge text
        return f"{{{name}}}: a width of {digits[:20]} is more than {WIDTH_MAX} digits"
    if any(name == seen for _, seen, _ in before):
        return f"{{{name}}} appears twice"
    if before and before[-1][1] and not literal:
        return f"{{{before[-1][1]}}}{{{name}}} needs a separator between them"
    return None


def render(pattern: str, values: Mapping[str, Any]) -> str | None:
    """The name for `values`, or None when a placeholder has no value.

    Integer placeholders take whole numbers (3.0 renders as 3, the way the hook reads
    it back); anything else there is a UsageError naming the placeholder.
    """
    parts = _parts(pattern)
    if any(values.get(name) in (None, "") for _, name, _ in parts if name):
        return None
    pieces = []
    for literal, name, spec in parts:
        pieces.append(literal)
        if name is None:
            continue
        value = values[name]
        if name in _INTEGER_FIELDS:
            pieces.append(format(_whole_number(pattern, name, value), spec))
        else:
            pieces.append(str(value))
    return "".join(pieces)


def _whole_number(pattern: str, name: str, value: Any) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        return int(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return value
    hint = _PATTERN_HINT
    if name == "epoch":
        hint = (
            "names hold whole epochs: pass a whole --epoch, or name checkpoints saved "
            "within an epoch by {step} in naming.checkpoint of dvcckpt.yaml"
        )
    raise UsageError(
        f"cannot fill naming pattern {_quoted(pattern)}: {{{name}}} needs a whole number "
        f"from 0, got {str(value)[:40]!r}",
        hint=hint,
    )


def name_for(
    pattern: str, values: Mapping[str, Any], what: str, *, exact: bool = True, fix: str = ""
) -> str | None:
    """`render`, refusing a name the hook could not read back (None: a value is missing).

    The rendered name must parse; with `exact` it must also parse back into exactly
    the values given (checkpoint names: the hook compares what they encode with the
    card). Otherwise a UsageError names the placeholder at fault.
    """
    name = render(pattern, values)
    if name is None:
        return None
    wanted = {field: _normal(field, values[field]) for field in placeholders(pattern)}
    parsed = parse(pattern, name)
    if parsed is not None and (not exact or parsed == wanted):
        return name
    culprit = _culprit(wanted, parsed)
    shown = name if len(name) <= 80 else name[:77] + "..."
    raise UsageError(
        f"cannot name the {what}: {{{culprit}}} {str(wanted[culprit])[:60]!r} does not read "
        f"back from {shown!r} (naming pattern {_quoted(pattern)})",
        hint=f"{{{culprit}}} takes {_ALLOWED.get(culprit, _RUN_TEXT)} and no separator of the "
        "pattern; change that value or the pattern in dvcckpt.yaml"
        + (f", or {fix}" if fix else ""),
    )


def _normal(field: str, value: Any) -> str | int:
    return int(value) if field in _INTEGER_FIELDS else str(value)


def _culprit(wanted: Mapping[str, str | int], parsed: Mapping[str, str | int] | None) -> str:
    """The placeholder to blame: one its value cannot fill at all, else one read back wrong."""
    for field, value in wanted.items():
        if not readable(field, str(value)):
            return field
    for field, value in wanted.items():
        if parsed is not None and parsed.get(field) != value:
            return field
    return next(iter(wanted))


def readable(field: str, text: str) -> bool:
    """Whether `text` on its own is a value placeholder `field` reads."""
    if field in _RUNS:
        first, rest, _lazy = _RUNS[field]
        return bool(text) and text[0] in first and all(c in rest for c in text[1:])
    if field in _WORDS:
        return text in _WORDS[field]
    if field in _INTEGER_FIELDS:
        return text.isascii() and text.isdigit()
    return _DATE.fullmatch(text) is not None


_RUN_TEXT = "a letter or digit, then letters, digits"
_ALLOWED = {
    "project": f"{_RUN_TEXT}, '.' or '-'",
    "task": f"{_RUN_TEXT}, '.' or '-'",
    "model": f"{_RUN_TEXT}, '.', '_' or '-'",
    "keyparam": f"{_RUN_TEXT}, '.', '_', '+' or '-'",
    "run_id": f"{_RUN_TEXT}, '.', '_' or '-'",
    "phase": "a lowercase letter, then lowercase letters, digits or '_'",
    "kind": "one of " + ", ".join(_WORDS["kind"]),
    "date": "a date YYYY-MM-DD",
    **dict.fromkeys(sorted(_INTEGER_FIELDS), "a whole number"),
}


def _quoted(pattern: str) -> str:
    return repr(pattern if len(pattern) <= 80 else pattern[:77] + "...")


RUN_ID_MAX = 12  # characters of a card's run.id used as is in `{run_id}`


def short_run_id(run_id: str) -> str:
    """`{run_id}` of a card's run.id: the id itself when short and name-safe, else the
    first 6 hex digits of its sha256 (a tracker's 32-digit id, an id with a `/`)."""
    if len(run_id) <= RUN_ID_MAX and readable("run_id", run_id):
        return run_id
    return derived_run_id(run_id)


def derived_run_id(*parts: str) -> str:
    """6 hex digits of the sha256 of `parts`: a short, stable id of what they describe."""
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:6]


def missing_fields(pattern: str, values: Mapping[str, Any]) -> list[str]:
    return [name for name in placeholders(pattern) if values.get(name) in (None, "")]


def parse(pattern: str, name: str) -> dict[str, str | int] | None:
    """Fields encoded in `name` according to `pattern`, or None if it does not match.

    Under the default checkpoint pattern, names written before it carried a run id
    (`EARLIER_DEFAULT`) still match: a project that never set a pattern keeps its cards.
    """
    fields = _parse(pattern, name)
    if fields is None and pattern == DEFAULT_CHECKPOINT_PATTERN:
        fields = _parse(EARLIER_DEFAULT, name)
    return fields


def _parse(pattern: str, name: str) -> dict[str, str | int] | None:
    parts = _parts(pattern)
    if len(name) > NAME_MAX:
        return None
    ends = [_candidates(field) for _, field, _ in parts]
    # possible[k][i]: parts k.. can match name[i:] exactly (computed backwards).
    possible = [[False] * (len(name) + 2) for _ in range(len(parts) + 1)]
    possible[len(parts)][len(name)] = True
    for k in range(len(parts) - 1, -1, -1):
        literal, rest, following = parts[k][0], ends[k], _prefix_sums(possible[k + 1])
        for i in range(len(name) + 1):
            if name.startswith(literal, i):
                start = i + len(literal)
                possible[k][i] = rest(name, start, following)
    if not possible[0][0]:
        return None
    fields: dict[str, str | int] = {}
    position = 0
    for k, (literal, field, _spec) in enumerate(parts):
        start = position + len(literal)
        if field is None:
            position = start
            continue
        position = next(j for j in _ordered(field, name, start) if possible[k + 1][j])
        text = name[start:position]
        fields[field] = int(text) if field in _INTEGER_FIELDS else text
    return fields


# A part's matcher: whether some end of the placeholder starting at `start` is followed
# by a position where the rest matches (`following` are prefix sums of that row).
_Matcher = Callable[[str, int, Sequence[int]], bool]


def _prefix_sums(row: list[bool]) -> list[int]:
    sums = [0]
    for flag in row:
        sums.append(sums[-1] + flag)
    return sums


def _candidates(field: str | None) -> _Matcher:
    if field is None:
        return lambda name, start, following: following[start + 1] > following[start]
    if field in _RUNS:
        cache = [0]

        def run(name: str, start: int, following: Sequence[int]) -> bool:
            end = _run_end(field, name, start, cache)
            return end > start and following[end + 1] > following[start + 1]

        return run
    return lambda name, start, following: any(
        following[j + 1] > following[j] for j in _ordered(field, name, start)
    )


def _run_end(field: str, name: str, start: int, cache: list[int]) -> int:
    """Where the longest run for `field` starting at `start` ends (== start: none).

    Called for ascending `start` during one parse, so remembering in `cache` where
    the current run of allowed characters ends keeps the whole pass linear.
    """
    first, rest, _lazy = _RUNS[field]
    if start >= len(name) or name[start] not in first:
        return start
    if cache[0] <= start:
        end = start + 1
        while end < len(name) and name[end] in rest:
            end += 1
        cache[0] = end
    return cache[0]


def _ordered(field: str, name: str, start: int) -> list[int]:
    """Ends of `field` at `start` in the order a regex would try them."""
    if field in _RUNS:
        end = _run_end(field, name, start, [0])
        options = range(start + 1, end + 1)
        return list(options if _RUNS[field][2] else reversed(options))
    if field in _WORDS:
        return [start + len(w) for w in _WORDS[field] if name.startswith(w, start)]
    return [start + 10] if _DATE.match(name, start) else []


def keyparam_token(key: str | None, params: Mapping[str, Any]) -> str | None:
    """`lr` + 1e-4 -> `lr1e-4`: the key parameter as it appears in a run name."""
    if not key or key not in params:
        return None
    # Spelled with the characters {keyparam} parses (`adamw 8bit` -> `adamw-8bit`), so
    # the hook reads back every run name dvcckpt writes; none if that is impossible.
    token = re.sub(r"[^A-Za-z0-9._+-]+", "-", f"{key}{compact_number(params[key])}")[:KEYPARAM_MAX]
    first, _rest, _lazy = _RUNS["keyparam"]
    return token if token[0] in first else None


def compact_number(value: Any) -> str:
    """A short spelling of a parameter; never fails (NaN, infinity, huge integers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)[:100]
    if isinstance(value, int) and not -(10**15) < value < 10**15:
        value = (
            float(value) if value.bit_length() < 1000 else (math.inf if value > 0 else -math.inf)
        )
    if not math.isfinite(value):
        return str(value)  # nan, inf, -inf
    if isinstance(value, float) and value != 0 and not 1e-3 <= abs(value) < 1e5:
        mantissa, exponent = f"{value:e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:g}"


def today() -> str:
    return dt.datetime.now(dt.timezone.utc).date().isoformat()
