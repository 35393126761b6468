"""Reading what users hand to `add`: params/metrics files, dvclive output, run records.

Each becomes a card fragment (`core.fragments`); `from_add_options` merges them
with the explicit options, which take precedence.
"""

from __future__ import annotations

import codecs
import json
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dvcckpt.adapters import yamldoc
from dvcckpt.cards import frameworks
from dvcckpt.core import fragments, limits, runrecord
from dvcckpt.errors import CardError, UsageError


def read_data_file(path: Path, option: str, section: str = "") -> Any:
    """A JSON or YAML file given on the command line (YAML parsed as untrusted).

    UTF-8 only (a UTF-8 byte-order mark is dropped). NaN and infinities are refused,
    and so is anything beyond the card limits (`core.limits`: nesting depth, string
    length, 64-bit integers), before any recursive code sees the document; problems are
    named by their card field (the document becomes the card's `section`).
    """
    try:
        info = path.stat()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or "no such file"
        raise UsageError(f"{option} {path}: {reason.lower()}", hint="check the path") from None
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{option} {path}: not a regular file", hint="pass a JSON or YAML file")
    if info.st_size > limits.HARD_MAX_BYTES:
        raise UsageError(
            f"{option} {path}: {info.st_size} bytes is over the {limits.HARD_MAX_BYTES}-byte limit",
            hint="keep large outputs in artifacts (--artifact), not in the card",
        )
    text = _utf8_text(path, option)
    try:
        if path.suffix == ".json":
            document = json.loads(text)
        else:
            document = yamldoc.load_untrusted(text, str(path))
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{option} {path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            hint="fix the JSON syntax",
        ) from None
    except CardError as exc:
        raise CardError(f"{option} {_as_card_field(exc.message, path, section)}", exc.hint) from exc
    except RecursionError:
        raise _too_deep(path, option) from None
    found = limits.problems(document)
    if found:
        field = f"{section}.{found[0]}" if section else found[0]
        raise CardError(
            f"{option} {path}: {field}",
            hint=f"nest at most {limits.MAX_DEPTH} levels; use finite numbers (null for a "
            "missing value), 64-bit integers and strings within the card limits",
        )
    return yamldoc.to_plain(document)


def _as_card_field(message: str, path: Path, section: str) -> str:
    """`p.yaml: dev.f1: ...` (the reader's field) -> `p.yaml: metrics.dev.f1: ...`."""
    rest = message.removeprefix(f"{path}: ")
    field, sep, problem = rest.partition(": ")
    if not section or rest == message or not sep or " " in field:
        return message
    return f"{path}: {section}.{field}: {problem}"


def _utf8_text(path: Path, option: str) -> str:
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE)):
        raise UsageError(
            f"{option} {path}: the file is UTF-16 or UTF-32, not UTF-8",
            hint="save it as UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8`)",
        )
    try:
        return data.removeprefix(codecs.BOM_UTF8).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{option} {path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            hint="save the file as UTF-8",
        ) from None


def _too_deep(path: Path, option: str) -> UsageError:
    return UsageError(
        f"{option} {path}: nested deeper than {limits.MAX_DEPTH} levels",
        hint="flatten the document (dotted keys nest: `optimizer.lr`)",
    )


def read_mapping(
    path: Path, option: str, expected: str, example: str, section: str = ""
) -> dict[str, Any]:
    """A JSON/YAML file that must hold a mapping (`expected` says of what)."""
    document = read_data_file(path, option, section)
    if not isinstance(document, dict):
        raise UsageError(f"{option} {path}: expected {expected}", hint=f"for example {example}")
    return document


def params_file(path: Path) -> dict[str, Any]:
    return read_mapping(
        path,
        "--params",
        "a mapping of parameter names to values",
        "`lr: 0.0001` lines (YAML) or a JSON object",
        "params",
    )


def metrics_file(path: Path, step: int | None = None) -> dict[str, Any]:
    """`--metrics`: a mapping of splits, or a framework's own record read at `step`."""
    framework = frameworks.metrics_at(path, step)
    if framework is not None:
        return framework
    document = read_mapping(
        path,
        "--metrics",
        "a mapping of splits to metrics",
        '{"dev": {"macro_f1": 0.84}}',
        "metrics",
    )
    return fragments.metrics_fragment(document)


def from_add_options(
    options: Mapping[str, Any], checkpoint: Path | None = None
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """`dvcckpt add` options -> (fragment, sections a run record replaces wholesale)."""
    fragment: dict[str, Any] = {}
    replaced: tuple[str, ...] = ()
    if options.get("run_record"):
        fragment = run_record(options["run_record"])
        replaced = tuple(s for s in runrecord.REPLACED_SECTIONS if s in fragment)
    if options.get("params_file"):
        fragment = fragments.merge(fragment, {"params": params_file(options["params_file"])})
    if options.get("metrics_file"):
        step = options.get("step")
        if step is None and checkpoint is not None:
            step = frameworks.step_of(checkpoint)
        fragment = fragments.merge(fragment, metrics_file(options["metrics_file"], step))
    if options.get("run_id"):
        fragment = fragments.merge(fragment, {"run": {"id": str(options["run_id"])}})
    return fragments.merge(fragment, fragments.from_options(options)), replaced


def run_record(path: Path) -> dict[str, Any]:
    record = read_mapping(
        path,
        "--from",
        "a JSON object describing one run",
        '{"run_name": ..., "params": {...}, "metrics": {...}}',
    )
    return runrecord.to_fragment(record)
