"""Reading what users hand to `add`: params/metrics files, dvclive output, run records.

Each becomes a card fragment (`core.fragments`); `from_add_options` merges them
with the explicit options, which take precedence.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dvcckpt.adapters import yamldoc
from dvcckpt.core import fragments, runrecord
from dvcckpt.errors import CardError, UsageError


def read_data_file(path: Path, option: str) -> Any:
    """A JSON or YAML file given on the command line (YAML parsed as untrusted)."""
    if not path.is_file():
        raise UsageError(f"{option} {path}: no such file", hint="check the path")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"{option} {path}: invalid JSON at line {exc.lineno}, column {exc.colno}: "
                f"{exc.msg}",
                hint="fix the JSON syntax",
            ) from None
    try:
        return yamldoc.to_plain(yamldoc.load_untrusted(text, str(path)))
    except CardError as exc:
        raise UsageError(exc.message, exc.hint) from exc


def read_mapping(path: Path, option: str, expected: str, example: str) -> dict[str, Any]:
    """A JSON/YAML file that must hold a mapping (`expected` says of what)."""
    document = read_data_file(path, option)
    if not isinstance(document, dict):
        raise UsageError(f"{option} {path}: expected {expected}", hint=f"for example {example}")
    return document


def params_file(path: Path) -> dict[str, Any]:
    return read_mapping(
        path,
        "--params",
        "a mapping of parameter names to values",
        "`lr: 0.0001` lines (YAML) or a JSON object",
    )


def metrics_file(path: Path) -> dict[str, Any]:
    document = read_mapping(
        path, "--metrics", "a mapping of splits to metrics", '{"dev": {"macro_f1": 0.84}}'
    )
    return fragments.metrics_fragment(document)


def from_add_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """`dvcckpt add` options -> (fragment, sections a run record replaces wholesale)."""
    fragment: dict[str, Any] = {}
    replaced: tuple[str, ...] = ()
    if options.get("run_record"):
        fragment = run_record(options["run_record"])
        replaced = tuple(s for s in runrecord.REPLACED_SECTIONS if s in fragment)
    if options.get("params_file"):
        fragment = fragments.merge(fragment, {"params": params_file(options["params_file"])})
    if options.get("metrics_file"):
        fragment = fragments.merge(fragment, metrics_file(options["metrics_file"]))
    return fragments.merge(fragment, fragments.from_options(options)), replaced


def run_record(path: Path) -> dict[str, Any]:
    record = read_mapping(
        path,
        "--from",
        "a JSON object describing one run",
        '{"run_name": ..., "params": {...}, "metrics": {...}}',
    )
    return runrecord.to_fragment(record)
