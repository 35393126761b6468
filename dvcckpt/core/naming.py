"""Naming conventions: render run and checkpoint names from patterns, parse them back.

A pattern is a `str.format` template over known placeholders, e.g.
`{model}-{phase}-{kind}-step{step:06d}`. Parsing compiles the same pattern into
an anchored regular expression so a name yields its model, phase, kind and step.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from collections.abc import Mapping
from typing import Any

from dvcckpt.errors import ConfigError, UsageError

DEFAULT_RUN_PATTERN = "{project}_{task}_{model}_{keyparam}_{date}"
DEFAULT_CHECKPOINT_PATTERN = "{model}-{phase}-{kind}-step{step:06d}"

_FIELD_REGEX = {
    "project": r"[A-Za-z0-9][A-Za-z0-9.-]*?",
    "task": r"[A-Za-z0-9][A-Za-z0-9.-]*?",
    "model": r"[A-Za-z0-9][A-Za-z0-9._-]*?",
    "keyparam": r"[A-Za-z0-9][A-Za-z0-9.+-]*?",
    "date": r"\d{4}-\d{2}-\d{2}",
    "phase": r"[a-z][a-z0-9_]*?",
    "kind": r"full|weights|optimizer|ema",
    "step": r"\d+",
    "epoch": r"\d+",
    "seed": r"\d+",
}
_INTEGER_FIELDS = {"step", "epoch", "seed"}


def placeholders(pattern: str) -> list[str]:
    try:
        names = [field for _, field, _, _ in string.Formatter().parse(pattern) if field]
    except ValueError as exc:
        raise ConfigError(f"naming pattern {pattern!r}: {exc}", hint=_PATTERN_HINT) from exc
    unknown = sorted(set(names) - set(_FIELD_REGEX))
    if unknown:
        raise ConfigError(
            f"naming pattern {pattern!r} uses unknown placeholder {{{unknown[0]}}}",
            hint=_PATTERN_HINT,
        )
    return names


_PATTERN_HINT = "placeholders are " + ", ".join("{" + name + "}" for name in _FIELD_REGEX)


def render(pattern: str, values: Mapping[str, Any]) -> str | None:
    """The name for `values`, or None when a placeholder has no value."""
    fields = placeholders(pattern)
    if any(values.get(name) in (None, "") for name in fields):
        return None
    try:
        return pattern.format_map({name: values[name] for name in fields})
    except (ValueError, TypeError) as exc:
        raise UsageError(
            f"cannot fill naming pattern {pattern!r}: {exc}", hint=_PATTERN_HINT
        ) from exc


def missing_fields(pattern: str, values: Mapping[str, Any]) -> list[str]:
    return [name for name in placeholders(pattern) if values.get(name) in (None, "")]


def parse(pattern: str, name: str) -> dict[str, str | int] | None:
    """Fields encoded in `name` according to `pattern`, or None if it does not match."""
    match = _compile(pattern).fullmatch(name)
    if match is None:
        return None
    fields: dict[str, str | int] = {}
    for key, value in match.groupdict().items():
        fields[key] = int(value) if key in _INTEGER_FIELDS else value
    return fields


def _compile(pattern: str) -> re.Pattern[str]:
    regex = ""
    seen: set[str] = set()
    for literal, field, _spec, _conv in string.Formatter().parse(pattern):
        regex += re.escape(literal)
        if field is None:
            continue
        placeholders(f"{{{field}}}")
        if field in seen:
            regex += f"(?P={field})"
        else:
            regex += f"(?P<{field}>{_FIELD_REGEX[field]})"
            seen.add(field)
    return re.compile(regex)


def keyparam_token(key: str | None, params: Mapping[str, Any]) -> str | None:
    """`lr` + 1e-4 -> `lr1e-4`: the key parameter as it appears in a run name."""
    if not key or key not in params:
        return None
    return f"{key}{compact_number(params[key])}"


def compact_number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and value != 0 and not 1e-3 <= abs(value) < 1e5:
        mantissa, exponent = f"{value:e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:g}"


def today() -> str:
    return dt.datetime.now(dt.timezone.utc).date().isoformat()
