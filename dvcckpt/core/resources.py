"""Files shipped with dvcckpt: JSON Schemas and templates.

In a wheel they live inside the package (`dvcckpt/schemas`); in a source
checkout or editable install they sit at the repository top level.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parents[1]  # the dvcckpt package


@cache  # the installation does not move while dvcckpt runs
def _shipped_dir(name: str) -> Path:
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"dvcckpt installation is missing its {name}/ folder")


def schema_path(name: str) -> Path:
    """Path of a shipped schema, e.g. `schema_path("checkpoint.v1")`."""
    return _shipped_dir("schemas") / f"{name}.schema.json"


def template_path(name: str) -> Path:
    return _shipped_dir("templates") / name


@cache
def load_schema(name: str) -> dict[str, Any]:
    with schema_path(name).open(encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema
