"""Every page dvcckpt writes is valid HTML5: each page of a real `dvcckpt site` output and
`report --format html` parses with html5lib in strict mode (any parse error fails: a
stray end tag, a row outside its table, an unescaped `<`), has no duplicate id, keeps
list items in lists, and loads nothing from outside the page."""

from __future__ import annotations

import re
from collections import Counter

import html5lib
import pytest

from tests.browser import Catalog, catalog

__all__ = ["catalog"]  # the session fixture shared with tests/test_site_browser.py

PAGE_LIMIT = 2 * 1024 * 1024
PARENTS = {"li": {"ul", "ol", "menu"}, "tr": {"thead", "tbody", "tfoot"}, "dt": {"dl", "div"}}
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:|^//", re.IGNORECASE)


def problems_of(text: str, name: str) -> list[str]:
    """What makes the page invalid or not self-contained (empty when it is fine)."""
    try:
        tree = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(text)
    except html5lib.html5parser.ParseError as exc:
        return [f"{name}: {exc}"]
    ids = Counter(e.get("id") for e in tree.iter() if e.get("id") is not None)
    found = [f"{name}: id {i!r} used {n} times" for i, n in ids.items() if n > 1]
    if not text.startswith("<!DOCTYPE html>") or tree.find("head/meta[@charset]") is None:
        found.append(f"{name}: no doctype or charset")
    for parent in tree.iter():
        for child in parent:
            allowed = PARENTS.get(str(child.tag))
            if allowed and parent.tag not in allowed:
                found.append(f"{name}: <{child.tag}> inside <{parent.tag}>")
    for element in tree.iter():
        for attribute in ("src", "href"):
            if EXTERNAL.match(element.get(attribute) or ""):
                found.append(f"{name}: loads or links outside: {element.get(attribute)}")
    if len(text.encode()) > PAGE_LIMIT:
        found.append(f"{name}: {len(text.encode())} bytes")
    return found


def test_the_site_has_every_kind_of_page(catalog: Catalog) -> None:
    names = {p.relative_to(catalog.site).parts[0] for p in catalog.site.rglob("*.html")}
    assert names == {"index.html", "models", "checkpoints"}
    assert len(list((catalog.site / "checkpoints").glob("*.html"))) == 6


def test_every_page_of_the_site_and_the_report_is_valid(catalog: Catalog) -> None:
    paths = [*sorted(catalog.site.rglob("*.html")), catalog.report]
    problems = [p for path in paths for p in problems_of(path.read_text("utf-8"), path.name)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "broken",
    [
        "<table><tr><td>a</td></tr></table><tr><td>b</td></tr>",  # the old report's last row
        "<p><li>x</li></p>",  # an item without its list
        "<p id=a></p><p id=a></p>",
        "<p>a</b></p>",
        "<img src=https://cdn.example/x.png alt=x>",
    ],
)
def test_the_check_refuses_broken_pages(broken: str) -> None:
    text = (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>t</title></head>"
        f"<body>{broken}</body></html>"
    )
    assert problems_of(text, "page"), f"{broken!r} was accepted"
    assert not problems_of(text.replace(broken, "<p>fine</p>"), "page")
