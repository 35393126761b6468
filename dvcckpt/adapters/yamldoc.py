"""YAML for cards and config: untrusted input in, canonical text out.

Every reader goes through `load_fast`, which defines what a card says: the hook,
the catalog, `show`, gates and config. Editing (`load_untrusted`, ruamel round-trip,
comments kept) must read the same plain data or refuses the file. Cards come from
pull requests, so the text is checked first (adapters/yamlstrict: YAML 1.2 only, no
directives, merge keys, tags, anchors, non-string keys or BOM confusion) and the
data after (core/limits: size, depth, string length, 64-bit integers, finite
floats). `dump` writes only what `load_fast` reads back unchanged. Output is
canonical (fixed indent, no line wrapping, explicit `null`) so PR diffs stay small
and stable, and it reads the same under YAML 1.1 parsers (PyYAML) as under YAML 1.2.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dvcckpt.adapters import yamlfast, yamlstrict
from dvcckpt.core import limits
from dvcckpt.core.limits import DEFAULT_MAX_BYTES
from dvcckpt.errors import CardError


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    yaml.preserve_quotes = True
    yaml.Constructor, yaml.Representer = _ruamel_classes()
    return yaml


_RUAMEL_CLASSES: tuple[Any, Any] | None = None


def _ruamel_classes() -> tuple[Any, Any]:
    """ruamel's round-trip constructor and representer, adapted (subclasses: DVC shares ruamel).

    Timestamps stay strings, as `load_fast` reads them; dates written by dvcckpt
    are ISO 8601 strings, as `to_plain` makes them.
    """
    global _RUAMEL_CLASSES
    if _RUAMEL_CLASSES is None:
        from ruamel.yaml.constructor import RoundTripConstructor
        from ruamel.yaml.representer import RoundTripRepresenter

        constructor: Any = type("CardConstructor", (RoundTripConstructor,), {})
        constructor.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
        representer: Any = type("CardRepresenter", (RoundTripRepresenter,), {})
        for kind, function in (
            (type(None), _represent_none),
            (float, _represent_float),
            (str, _represent_str),
            (dt.datetime, _represent_date),
            (dt.date, _represent_date),
        ):
            representer.add_representer(kind, function)
        _RUAMEL_CLASSES = (constructor, representer)
    return _RUAMEL_CLASSES


def _construct_timestamp(constructor: Any, node: Any) -> Any:
    return constructor.construct_yaml_str(node)


def _represent_date(representer: Any, data: dt.date) -> Any:
    return _represent_str(representer, to_plain(data))


def _represent_none(representer: Any, _data: None) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def _represent_float(representer: Any, data: float) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:float", yamlfast.float_text(data))


def _represent_str(representer: Any, data: str) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:str", data, style=yamlfast.quoting(data))


def load_untrusted(
    text: str, source: str, max_bytes: int = DEFAULT_MAX_BYTES, within: str = ""
) -> Any:
    """Parse YAML from an untrusted source into round-trip objects (comments kept).

    The text must first pass `load_fast`, and ruamel must read the same plain data:
    a file two readers would read differently is refused, never edited.
    """
    plain = load_fast(text, source, max_bytes, within)
    return _round_trip(yamlstrict.prepare(text, source), source, plain)


def _round_trip(text: str, source: str, plain: Any) -> Any:
    """ruamel's round-trip reading of checked text, refused unless it says `plain`."""
    from ruamel.yaml.error import YAMLError

    try:
        document = _yaml().load(text)
    except (YAMLError, ValueError, OverflowError) as exc:
        raise CardError(
            f"{source}: invalid YAML: {yamlstrict.describe(exc)}",
            hint=yamlstrict.fix_hint(source),
        ) from exc
    where = _difference(plain, to_plain(document))
    if where is not None:
        raise CardError(
            f"{source}: YAML readers disagree about {where}",
            hint="quote the value or write it in a standard form (e.g. 0.5 rather than .5e0); "
            "write multi-line text in double quotes with \\n",
        )
    return document


def _check_size(size: int, source: str, max_bytes: int) -> None:
    if size > max_bytes:
        raise CardError(
            f"{source}: {size} bytes is over the {max_bytes}-byte limit for a card",
            hint="move large content (error lists, curves) into artifacts and reference them",
        )


def dump(
    document: Any,
    header: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    source: str = "the document",
) -> str:
    """Canonical YAML text for a plain or round-trip document.

    Refuses to write what the readers would refuse or read differently: the data
    must be within the limits, and the text must read back as the same data.
    """
    _refuse_limits(document, f"cannot write {source}", "")  # before the recursive to_plain
    plain = to_plain(document)
    fast = yamlfast.emit(document) if type(document) is dict else None
    body = fast if fast is not None else _ruamel_text(document)
    text = f"{header}\n{body}" if header and not body.startswith(header) else body
    _check_size(len(text.encode("utf-8")), f"cannot write {source}", max_bytes)
    # The fast emitter's text holds only plain words, simple quotes, numbers and empty
    # collections of data within the limits: yaml-rs alone reads it back.
    back = _load_simple(text, source) if fast is not None else load_fast(text, source, max_bytes)
    where = _difference(plain, back)
    if where is not None:
        raise CardError(
            f"cannot write {source}: {where} would not read back as written",
            hint="report this as a dvcckpt bug, with the value",
        )
    return text


def _ruamel_text(document: Any) -> str:
    """Round-trip data (comments kept), or a value only ruamel can judge."""
    stream = io.StringIO()
    _yaml().dump(document, stream)
    return stream.getvalue()


def load_fast(
    text: str | bytes,
    source: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    within: str = "",
    values: bool = True,
) -> Any:
    """Parse untrusted YAML into plain data: the one reading of a card.

    Plain text (what dvcckpt writes) is parsed by yaml-rs, a YAML 1.2 parser
    refusing duplicate keys, ~5x faster than libyaml and ~200x faster than ruamel.
    Text that could hold anything the language refuses (`&*!|>`, `<<`, a `%`/`---`
    line, numbers with `_`, deep nesting; `yamlstrict.needs_scan`) is read from
    libyaml's events instead, which refuse it with its line. The limits are then
    checked on the data; `within` names the card section the document becomes.
    `values=False` leaves the value limits (numbers, string lengths) to a caller that
    validates the schema next and lists every problem at once (the hook): depth and
    keys are still refused here.
    """
    if isinstance(text, bytes):
        _check_size(len(text), source, max_bytes)
        text = yamlstrict.decode(text, source)
    _check_size(len(text.encode("utf-8")), source, max_bytes)
    text = yamlstrict.prepare(text, source)
    if yamlstrict.needs_scan(text):
        document, blocks = yamlstrict.load(text, source)
        if blocks:  # rare in cards (dvcckpt never writes them): ruamel must agree
            _refuse_limits(document, source, "", within)
            _round_trip(text, source, document)
    else:
        document = _load_simple(text, source)
    _refuse_limits(document, source, text, within, values)
    return document


def _load_simple(text: str, source: str) -> Any:
    import yaml_rs

    try:
        return yaml_rs.loads(
            text, parse_datetime=False, duplicate_key_policy=yaml_rs.DuplicateKeyPolicy.Error
        )
    except Exception as exc:  # untrusted text: yaml-rs also raises TypeError (`? {a: 1}`)
        yamlstrict.load(text, source)  # libyaml names the line and column
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CardError(
            f"{source}: invalid YAML: {first}", hint=yamlstrict.fix_hint(source)
        ) from None


def _refuse_limits(
    document: Any, source: str, text: str, within: str = "", values: bool = True
) -> None:
    # No string value can be longer than the text, nor hold U+FFFD or a surrogate
    # (which `prepare` refused raw) without a `\` escape.
    strings = not text or len(text) > limits.MAX_STRING_CHARS or "\\" in text
    path = tuple(within.split(".")) if within else ()
    found = limits.problems(document, path, strings, values)
    if not found:
        return
    if text:
        yamlstrict.load(text, source)  # a key that is not a string: name its line
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    raise CardError(
        f"{source}: {found[0]}{more}",
        hint="see the limits in the README: move large content into artifacts, "
        "quote keys, and write numbers within range",
        problems=[f"{source}: {p}" for p in found],
    )


def _difference(first: Any, second: Any) -> str | None:
    """The first field where two plain documents differ (types included), or None."""
    if json.dumps(first) == json.dumps(second):
        return None
    stack: list[tuple[tuple[Any, ...], Any, Any]] = [((), first, second)]
    while stack:
        path, a, b = stack.pop()
        if isinstance(a, dict) and isinstance(b, dict) and list(a) == list(b):
            stack.extend(((*path, k), a[k], b[k]) for k in a)
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            stack.extend(((*path, i), x, y) for i, x, y in zip(range(len(a)), a, b, strict=True))
        elif json.dumps(a) != json.dumps(b):
            return f"{limits.field_path(path)} ({_brief(a)} or {_brief(b)})"
    return "(top level)"


def _brief(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def read_text(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """A YAML file's UTF-8 text. Refused before reading: anything but a regular file
    (a FIFO would block for ever) and files over the limit; reading stops one byte
    past it, so a file growing meanwhile is refused too."""
    import stat

    if not stat.S_ISREG(path.stat().st_mode):
        raise CardError(f"{path}: not a regular file", hint="pass the path of a YAML file")
    _check_size(path.stat().st_size, str(path), max_bytes)
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    _check_size(len(data), str(path), max_bytes)
    return yamlstrict.decode(data, str(path))


def read_file(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Round-trip parse of a file (comments and order kept, for editing)."""
    return load_untrusted(read_text(path, max_bytes), str(path), max_bytes)


def to_plain(value: Any) -> Any:
    """JSON-compatible copy of round-trip data (dates become ISO 8601 strings).

    Data from the readers is at most MAX_DEPTH deep; data built by code may be
    deeper, and gets the limit's error rather than a RecursionError.
    """
    try:
        return _plain(value)
    except RecursionError:
        raise CardError(
            f"a document nested deeper than {limits.MAX_DEPTH} levels",
            hint="flatten the structure; cards hold a few levels of mappings and lists",
        ) from None


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Sequence):
        return [_plain(v) for v in value]
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
