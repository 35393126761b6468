"""YAML for cards and config: untrusted input in, canonical text out.

Cards come from pull requests, so they are parsed as untrusted input: size is
capped, and anchors/aliases (the "billion laughs" bomb) and non-standard tags
are refused before anything is constructed. Output is canonical (fixed indent,
no line wrapping, explicit `null`) so PR diffs stay small and stable, and it
reads the same under YAML 1.1 parsers (PyYAML) as under YAML 1.2.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dvcckpt.core.limits import DEFAULT_MAX_BYTES
from dvcckpt.errors import CardError

_ALLOWED_TAGS = {
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")
}
# Strings that YAML 1.1 readers would turn into booleans or numbers.
_YAML11_AMBIGUOUS = re.compile(
    r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF"
    r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?"
    r"|[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?[0-9][0-9_]*)$"
)


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    yaml.preserve_quotes = True
    representer = yaml.representer
    representer.add_representer(type(None), _represent_none)
    representer.add_representer(float, _represent_float)
    representer.add_representer(str, _represent_str)
    return yaml


def _represent_none(representer: Any, _data: None) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def _represent_float(representer: Any, data: float) -> Any:
    text = repr(data)
    if "e" in text and "." not in text.split("e")[0]:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent if exponent[0] in '+-' else '+' + exponent}"
    return representer.represent_scalar("tag:yaml.org,2002:float", text)


def _represent_str(representer: Any, data: str) -> Any:
    style = "'" if _YAML11_AMBIGUOUS.match(data) else None
    return representer.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def load_untrusted(text: str, source: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Parse YAML from an untrusted source into round-trip objects (comments kept)."""
    from ruamel.yaml.error import YAMLError

    _check_size(len(text.encode("utf-8")), source, max_bytes)
    _refuse_unsafe(text, source)
    try:
        return _yaml().load(text)
    except YAMLError as exc:
        raise CardError(
            f"{source}: invalid YAML: {_describe(exc)}", hint=_fix_hint(source)
        ) from exc


def _check_size(size: int, source: str, max_bytes: int) -> None:
    if size > max_bytes:
        raise CardError(
            f"{source}: {size} bytes is over the {max_bytes}-byte limit for a card",
            hint="move large content (error lists, curves) into artifacts and reference them",
        )


def _line_of(event: Any) -> int:
    mark = getattr(event, "start_mark", None)
    return int(mark.line) + 1 if mark is not None else 0


def _describe(exc: Exception) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return str(problem)


def _fix_hint(source: str) -> str:
    return f"fix the YAML syntax in {source} (a YAML linter shows the exact spot)"


def dump(document: Any, header: str | None = None) -> str:
    """Canonical YAML text for a plain or round-trip document."""
    stream = io.StringIO()
    _yaml().dump(document, stream)
    body = stream.getvalue()
    return f"{header}\n{body}" if header and not body.startswith(header) else body


def load_fast(text: str, source: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Parse untrusted YAML into plain data, ~10-100x faster than the round-trip loader.

    For read-only paths (the hook, the catalog, lookups): a Rust YAML 1.2 parser
    that refuses duplicate keys, so it reads cards exactly as the round-trip
    loader does. Anchors, aliases and tags need `&`, `*` or `!`; only texts
    containing one of those pay for the event scan that refuses them.
    """
    import yaml_rs

    _check_size(len(text.encode("utf-8")), source, max_bytes)
    _refuse_unsafe(text, source)
    try:
        return yaml_rs.loads(
            text,
            parse_datetime=False,
            duplicate_key_policy=yaml_rs.DuplicateKeyPolicy.Error,
        )
    except yaml_rs.YAMLDecodeError as exc:
        _locate_error(text, source)  # libyaml names the line and column
        raise CardError(f"{source}: invalid YAML: {exc}", hint=_fix_hint(source)) from exc


def _locate_error(text: str, source: str) -> None:
    import yaml

    try:
        yaml.load(text, Loader=_libyaml_loader())
    except yaml.YAMLError as exc:
        raise CardError(
            f"{source}: invalid YAML: {_describe(exc)}", hint=_fix_hint(source)
        ) from exc


def _refuse_unsafe(text: str, source: str) -> None:
    """Refuse anchors, aliases and non-core tags before anything is constructed.

    They all need `&`, `*` or `!`, so only texts containing one pay for the
    libyaml event scan; both loaders share it.
    """
    if not any(marker in text for marker in "&*!"):
        return
    import yaml

    try:
        for event in yaml.parse(text, Loader=_libyaml_loader()):
            _refuse_event(event, source)
    except yaml.YAMLError as exc:
        raise CardError(
            f"{source}: invalid YAML: {_describe(exc)}", hint=_fix_hint(source)
        ) from exc


def _refuse_event(event: Any, source: str) -> None:
    import yaml

    line = _line_of(event)
    if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
        raise CardError(
            f"{source}:{line}: YAML anchors and aliases are not allowed",
            hint="write the value out in full; aliases can expand into huge documents",
        )
    tag = getattr(event, "tag", None)
    if tag and tag not in _ALLOWED_TAGS and tag != "!":
        raise CardError(
            f"{source}:{line}: YAML tag {tag!r} is not allowed",
            hint="remove the tag; cards hold plain mappings, lists, strings and numbers",
        )


_LIBYAML_LOADER: Any = None


def _libyaml_loader() -> Any:
    """libyaml's safe loader with YAML 1.2 core-schema booleans, integers and floats."""
    global _LIBYAML_LOADER
    if _LIBYAML_LOADER is None:
        import yaml

        loader_base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        loader: Any = type("CardLoader", (loader_base,), {})
        replaced = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
        loader.yaml_implicit_resolvers = {
            first: [(tag, rx) for tag, rx in resolvers if tag not in replaced]
            for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
        }
        for tag, pattern, firsts in _YAML12_RESOLVERS:
            loader.add_implicit_resolver(tag, re.compile(pattern), list(firsts))
        loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
        loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
        _LIBYAML_LOADER = loader
    return _LIBYAML_LOADER


_YAML12_RESOLVERS = (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
)


def _construct_map(loader: Any, node: Any) -> Any:
    # libyaml keeps the last of duplicate keys; a reviewer reads the first. Refuse both.
    import yaml

    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.value in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
            )
        seen.add(key_node.value)
    yield from yaml.constructor.SafeConstructor.construct_yaml_map(loader, node)


def _construct_int(loader: Any, node: Any) -> int:
    text = str(loader.construct_scalar(node)).replace("_", "")
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)  # YAML 1.2: a leading zero is not octal


def read_text(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    try:
        # Refuse before reading a huge file into memory.
        _check_size(path.stat().st_size, str(path), max_bytes)
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CardError(f"{path}: not UTF-8 text", hint="save the file as UTF-8") from exc


def read_file(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Round-trip parse of a file (comments and order kept, for editing)."""
    return load_untrusted(read_text(path, max_bytes), str(path), max_bytes)


def to_plain(value: Any) -> Any:
    """JSON-compatible copy of round-trip data (dates become ISO 8601 strings)."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Sequence):
        return [to_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
