"""HTML primitives for every page dvcckpt writes (the site, `report --format html`).

Card text is untrusted, so the rule is simple: a plain `str` is text and is always
escaped; only `Markup` (HTML this module or a renderer built) passes as is.
`element` escapes attribute values and children, drops control characters (they
make a document invalid and can hide text), and sends every URL attribute through
`safe_href`, so a `javascript:` link in a card never becomes a link.

`page` writes a complete HTML5 document with a Content-Security-Policy that allows
inline styles and exactly the page's own inline scripts (by sha256): no remote
origin, no injected `<script>`, no event-handler attributes ever run.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any


class Markup(str):
    """HTML that is already safe: built by this module from escaped parts."""

    __slots__ = ()


# Control characters (except tab and newline), surrogates and non-characters: never valid
# in an HTML document, and useful to an attacker for hiding text.
_BAD = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]"
    "|[\U0001fffe\U0001ffff\U0002fffe\U0002ffff\U0003fffe\U0003ffff"
    "\U0004fffe\U0004ffff\U0010fffe\U0010ffff]"
)
_TAG = re.compile(r"^[a-z][a-z0-9-]*$")
_ATTR = re.compile(r"^[a-z][a-z0-9:-]*$")
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "col", "wbr", "source"})
_URL_ATTRS = frozenset({"href", "src", "action", "formaction", "xlink:href", "poster"})
_SPECIAL = re.compile("[&<>\"']")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")


# Bidirectional controls reorder what a reader sees (a name shown reversed, "Trojan
# Source"): card text shows them as U+FFFD, so a reviewer sees that something is there.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean(value: object) -> str:
    """`value` as text with the characters no HTML document may hold removed, and
    bidirectional controls made visible."""
    text = value if isinstance(value, str) else str(value)
    # Every character _BAD and _BIDI match is unprintable: most text skips the regexes.
    return text if text.isprintable() else _BIDI.sub("\ufffd", _BAD.sub("", text))


def esc(value: object) -> Markup:
    """Text escaped for element content and attribute values; Markup passes unchanged."""
    if isinstance(value, Markup):
        return value
    text = clean(value)
    # Most values (numbers, names, dates) hold nothing to escape: skip the five replaces.
    return Markup(html.escape(text, quote=True) if _SPECIAL.search(text) else text)


def safe_href(url: object) -> str | None:
    """`url` when it is an http(s) URL or a relative link, else None.

    Browsers drop tabs and newlines inside a URL (`java\\tscript:` runs), so any
    white space or control character refuses the URL outright.
    """
    if not isinstance(url, str) or not url or len(url) > 4096:
        return None
    if any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in url):
        return None
    if url.startswith("\\") or "\\" in url.split("?", 1)[0]:
        return None  # browsers read `\` as `/`: `\\evil` would be a remote origin in disguise
    if url.startswith("//"):
        return None  # protocol-relative: `//evil.example/x` is another origin
    match = _SCHEME.match(url)
    if match and match.group(1).lower() not in ("http", "https"):
        return None
    return url


def _children(children: Iterable[Any], out: list[str] | None = None) -> list[str]:
    """The children as escaped strings, nested iterables flattened, None/False left out."""
    out = [] if out is None else out
    for child in children:
        kind = type(child)  # exact types first: this runs for every node of every page
        if kind is Markup:
            out.append(child)
        elif kind is str:
            out.append(esc(child))
        elif child is None or child is False:
            continue
        elif isinstance(child, (str, int, float)):
            out.append(esc(child))
        else:
            _children(child, out)
    return out


@functools.lru_cache(maxsize=512)
def _attribute_name(key: str) -> str:
    name = key.rstrip("_").replace("_", "-")
    if not _ATTR.match(name) or name.startswith("on"):
        raise ValueError(f"attribute name not allowed: {name!r}")
    return name


@functools.lru_cache(maxsize=256)
def _tag_name(tag: str) -> str:
    if not _TAG.match(tag) or tag in ("script", "style"):
        raise ValueError(f"tag not allowed here: {tag!r}")  # scripts only via page()
    return tag


def attributes(attrs: dict[str, Any]) -> str:
    """` name="value"` pairs: `class_` becomes `class`, `data_x` becomes `data-x`,
    None/False are left out, True is a boolean attribute, URL attributes must be safe."""
    out = []
    for key, value in attrs.items():
        name = _attribute_name(key)
        if value is None or value is False:
            continue
        if value is True:
            out.append(f" {name}")
            continue
        if name in _URL_ATTRS:
            value = safe_href(str(value))
            if value is None:
                continue
        out.append(f' {name}="{esc(value)}"')
    return "".join(out)


def element(tag: str, *children: Any, **attrs: Any) -> Markup:
    """`<tag attrs>children</tag>` with every str child and attribute value escaped."""
    _tag_name(tag)
    opening = f"<{tag}{attributes(attrs)}>" if attrs else f"<{tag}>"
    if tag in _VOID:
        return Markup(opening)
    return Markup(f"{opening}{''.join(_children(children))}</{tag}>")


def join(parts: Iterable[Any], separator: str = "") -> Markup:
    """Parts escaped as children, joined (the separator is text, escaped too)."""
    return Markup(esc(separator).join(_children(parts)))


def link(text: Any, href: str | None, **attrs: Any) -> Markup:
    """A link when `href` is safe, else the text alone (never a dead or unsafe link)."""
    target = safe_href(href) if href else None
    if target is None:
        return element("span", text, **attrs)
    return element("a", text, href=target, **attrs)


def ul(items: Iterable[Any], **attrs: Any) -> Markup:
    return element("ul", [element("li", item) for item in items], **attrs)


def dl(pairs: Iterable[tuple[Any, Any]], **attrs: Any) -> Markup:
    """A definition list: one `<dt>`/`<dd>` per pair."""
    return element("dl", [(element("dt", k), element("dd", v)) for k, v in pairs], **attrs)


def table(
    header: Sequence[Any],
    rows: Iterable[Sequence[Any]],
    *,
    sortable: bool = False,
    id: str | None = None,
    numeric: Iterable[int] = (),
    caption: Any = None,
    sort_keys: Sequence[Sequence[Any]] | None = None,
) -> Markup:
    """A table with a `<thead>` and `<tbody>`. `numeric` columns are right-aligned and
    marked `data-type="number"` for the sorter; `sort_keys[r][c]`, when given and not
    None, is the cell's `data-sort` value (e.g. a raw number behind a formatted one)."""
    numbers = set(numeric)
    head = element(
        "tr",
        [
            element(
                "th",
                title,
                scope="col",
                data_type="number" if i in numbers else None,
                aria_sort="none" if sortable else None,
            )
            for i, title in enumerate(header)
        ],
    )
    body = []
    for r, row in enumerate(rows):
        keys = sort_keys[r] if sort_keys is not None else ()
        cells = []
        for c, cell in enumerate(row):
            key = keys[c] if c < len(keys) else None
            cells.append(
                element(
                    "td",
                    cell,
                    class_="num" if c in numbers else None,
                    data_sort=None if key is None else str(key),
                )
            )
        body.append(element("tr", cells))
    return element(
        "table",
        element("caption", caption) if caption is not None else None,
        element("thead", head),
        element("tbody", body),
        id=id,
        class_="sortable" if sortable else None,
    )


def json_script(id: str, data: Any) -> Markup:
    """Data for a page's script, in a `<script type="application/json">` it cannot close:
    `<`, `>`, `&` and the JavaScript line separators are written as `\\u` escapes."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    text = clean(text)
    for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, code)
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(f'<script type="application/json"{attributes({"id": id})}>{text}</script>')


def script_hash(source: str) -> str:
    """The CSP source expression that allows exactly this inline script."""
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


BASE_STYLE = """
:root{--fg:#1d2330;--muted:#5b6475;--line:#dde1e8;--accent:#2457c5;--soft:#f4f6fa}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
margin:0;background:#fff}
header.top{background:var(--soft);border-bottom:1px solid var(--line);padding:.6em 1.5em}
header.top nav a{margin-right:1.2em}
main{padding:1em 1.5em 3em;max-width:90em}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
h1{font-size:1.6em;margin:.4em 0}h2{font-size:1.25em;margin:1.4em 0 .5em}
h3{font-size:1.05em;margin:1em 0 .3em}
table{border-collapse:collapse;margin:.4em 0 1em;font-size:.92em}
th,td{padding:.3em .7em;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600;white-space:nowrap}
td.num,th[data-type=number]{text-align:right;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
tbody tr:hover{background:#fafbfd}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
.muted{color:var(--muted)}.empty{color:var(--muted);font-style:italic}
.pass{color:#13795b}.fail{color:#b42318}.warn{color:#a15c07}
.tag{display:inline-block;background:var(--soft);border:1px solid var(--line);
border-radius:3px;padding:0 .35em;margin:0 .2em .1em 0;font-size:.85em}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15em 1.2em;margin:.3em 0 1em}
dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
input.filter{padding:.3em .5em;width:24em;max-width:100%;border:1px solid var(--line);
border-radius:4px;font:inherit}
figure{margin:.5em 0 1.5em}figcaption{color:var(--muted);font-size:.9em}
svg{max-width:100%;height:auto}
pre{background:var(--soft);padding:.8em;overflow:auto;white-space:pre-wrap}
section.card{border:1px solid var(--line);border-radius:6px;padding:.2em 1em;margin:1em 0}
"""


def page(
    title: str,
    body: Any,
    *,
    scripts: Sequence[str] = (),
    nav: Sequence[tuple[str, str]] = (),
    style: str = "",
) -> str:
    """A complete HTML5 document. `scripts` are trusted inline sources (never card text);
    `nav` is (label, relative href) pairs for the top bar; `style` adds to the base CSS."""
    hashes = " ".join(script_hash(s) for s in scripts) or "'none'"
    policy = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src {hashes}; base-uri 'none'; form-action 'none'"
    )
    top = (
        element("header", element("nav", [link(label, href) for label, href in nav]), class_="top")
        if nav
        else Markup("")
    )
    inline = "".join(f"<script>{_script_source(s)}</script>" for s in scripts)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(policy)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{esc(title)}</title>\n<style>{BASE_STYLE}{style}</style>\n</head>\n"
        f"<body>\n{top}\n<main>\n{''.join(_children([body]))}\n</main>\n{inline}\n"
        "</body>\n</html>\n"
    )


def _script_source(source: str) -> str:
    if re.search(r"</script|<!--", source, re.IGNORECASE):
        raise ValueError("an inline script may not contain </script or <!--")
    return source
