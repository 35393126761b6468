"""Validation of cards and project config against the shipped JSON Schemas.

Every violation is reported (not only the first), each with its dotted field
path, because a hook that reveals one problem per commit attempt wastes time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from dvcckpt.core import limits
from dvcckpt.core.limits import field_path
from dvcckpt.core.resources import load_schema
from dvcckpt.errors import CardError, ConfigError

CARD_SCHEMA_ID = "dvcckpt/checkpoint"
CARD_VERSION = (1, 1)
CARD_SCHEMA = "checkpoint.v1"
CONFIG_SCHEMA = "config.v1"
SCHEMA_URL = "https://dvcckpt.dev/schemas/checkpoint.v1.schema.json"


def card_version_string() -> str:
    return f"{CARD_VERSION[0]}.{CARD_VERSION[1]}"


def check_card_version(card: Mapping[str, Any], source: str) -> None:
    """Refuse cards written by a newer dvcckpt before judging their fields."""
    header = card.get("schema")
    version = header.get("version") if isinstance(header, Mapping) else None
    if not isinstance(version, str):
        raise CardError(
            f"{source}: schema.version is missing",
            hint=f"a card starts with `schema: {{id: {CARD_SCHEMA_ID}, version: "
            f"'{card_version_string()}'}}`",
        )
    try:
        major, minor = (int(part) for part in version.split("."))
    except ValueError:
        raise CardError(
            f"{source}: schema.version {version!r} is not MAJOR.MINOR",
            hint=f"use '{card_version_string()}'",
        ) from None
    if (major, minor) > CARD_VERSION:
        raise CardError(
            f"{source}: card schema version {version} is newer than this dvcckpt "
            f"understands (up to {card_version_string()})",
            hint="upgrade dvcckpt: pip install --upgrade dvcckpt",
        )


def card_problems(card: Mapping[str, Any]) -> list[str]:
    """Every schema violation of a plain (JSON-compatible) card, as `field: message`."""
    return problems(card, CARD_SCHEMA)


def validate_card(card: Mapping[str, Any], source: str) -> None:
    check_card_version(card, source)
    found = card_problems(card)
    if found:
        raise CardError(
            _summary(source, found),
            hint="fix the listed fields; `dvcckpt schema` prints the card schema",
            problems=[f"{source}: {p}" for p in found],
        )


def validate_config(config: Mapping[str, Any], source: str) -> None:
    found = problems(config, CONFIG_SCHEMA)
    if found:
        raise ConfigError(
            _summary(source, found),
            hint="fix dvcckpt.yaml; `dvcckpt schema --config` prints its schema",
        )


def _summary(source: str, found: list[str]) -> str:
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return f"{source}: {found[0]}{more}"


def problems(instance: Mapping[str, Any], schema_name: str) -> list[str]:
    """Every violation of a shipped schema, as `field: message`.

    The resource limits (the same ones the reader and the writer enforce) come
    first. A document too deep, or with keys that are not strings, gets only those:
    jsonschema is recursive and must not see it. Values beyond a limit (NaN, huge
    integers, long strings) are listed with the schema's own findings.
    """
    structure = limits.problems(instance, values=False)
    if structure:
        return structure
    beyond = limits.problems(instance)
    validator = _validator(schema_name)
    found = []
    for error in validator.iter_errors(instance):
        error = _most_specific(error)
        if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            found.extend(_unknown_fields(error))
        else:
            found.append((list(error.absolute_path), error.message))
    found.sort(key=lambda item: [str(p) for p in item[0]])
    return [*beyond, *(f"{field_path(path)}: {message}" for path, message in found)]


def _unknown_fields(error: Any) -> list[tuple[list[Any], str]]:
    """`surprise: unknown field` instead of jsonschema's regex-speak."""
    import re

    known = set(error.schema.get("properties", {}))
    patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
    extras = [
        k for k in error.instance if k not in known and not any(p.search(k) for p in patterns)
    ]
    hint = " (extensions go under `x-` keys)" if patterns else ""
    return [([*error.absolute_path, key], f"unknown field{hint}") for key in extras]


def _most_specific(error: Any) -> Any:
    """For anyOf/oneOf failures, the branch error that got deepest says most."""
    from jsonschema.exceptions import best_match

    if error.context:
        return best_match(error.context)
    return error


_VALIDATORS: dict[str, Any] = {}


def _validator(schema_name: str) -> Any:
    if schema_name not in _VALIDATORS:
        from jsonschema import Draft202012Validator, FormatChecker

        checker = FormatChecker()
        checker.checks("date-time", raises=ValueError)(_is_datetime)
        schema = load_schema(schema_name)
        _VALIDATORS[schema_name] = Draft202012Validator(schema, format_checker=checker)
    return _VALIDATORS[schema_name]


def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("a timestamp needs a time zone, e.g. 2026-01-05T10:00:00Z")
    return True
