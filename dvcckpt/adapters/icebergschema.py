"""Apache Iceberg schemas of `publish.tables`' column lists (pyiceberg types, loaded lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dvcckpt.errors import ConfigError

if TYPE_CHECKING:
    from pyiceberg.schema import Schema

Column = tuple[str, str, bool]  # (name, type, required), as `publish.tables` lists them


def iceberg_schema(columns: Sequence[Column]) -> Schema:
    """The Iceberg schema of a column list (field ids in list order, from 1)."""
    from pyiceberg.schema import Schema
    from pyiceberg.types import ListType, NestedField

    fields, next_id = [], len(columns) + 1
    for index, (name, kind, required) in enumerate(columns, start=1):
        if kind == "list<string>":
            element = _primitive("string")
            value: Any = ListType(next_id, element, element_required=False)
            next_id += 1
        else:
            value = _primitive(kind)
        fields.append(NestedField(index, name, value, required=required))
    return Schema(*fields)


def _primitive(kind: str) -> Any:
    from pyiceberg import types

    known = {"string": types.StringType, "long": types.LongType, "double": types.DoubleType,
             "boolean": types.BooleanType, "timestamptz": types.TimestamptzType}  # fmt: skip
    if kind not in known:
        raise ConfigError(f"unknown column type {kind!r}", hint=f"use one of {sorted(known)}")
    return known[kind]()


def partitioning(schema: Schema, column: str) -> Any:
    """Identity partitioning on `column` (each repository's rows in their own files)."""
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import IdentityTransform

    source = schema.find_field(column)
    return PartitionSpec(PartitionField(source.field_id, 1000, IdentityTransform(), column))
