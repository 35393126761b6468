"""The catalog site and the HTML report, opened in a real headless Chromium.

The pages of a real `dvcckpt site` output (and `report --format html`) are loaded from
`file://` as a user would; the tests assert on what the browser rendered: no console
error, exception or Content-Security-Policy violation, tables and SVG plots laid out
with a real size, typing in the filter narrows the rows, clicking a header sorts them.
Set DVCCKPT_SCREENSHOT_DIR to keep screenshots of the pages (site-model.png, ...).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser import SENTIMENT_STEPS, Browser, Catalog, browser, catalog, required

__all__ = ["browser", "catalog"]  # session fixtures shared with tests/test_html_valid.py

ROWS = "Array.from(document.querySelectorAll('#checkpoints tbody tr'))"
VISIBLE_ROWS = f"{ROWS}.filter(r => !r.hidden && r.offsetHeight > 0).length"
STEPS = f"{ROWS}.map(r => r.cells[2].textContent.trim())"


def one(folder: Path, prefix: str) -> Path:
    (found,) = sorted(folder.glob(f"{prefix}*.html"))
    return found


def shoot(browser: Browser, name: str) -> None:
    folder = os.environ.get("DVCCKPT_SCREENSHOT_DIR")
    if folder:
        browser.screenshot(Path(folder) / name)


def size(browser: Browser, selector: str) -> list[list[float]]:
    """Rendered width and height of every element matching `selector`."""
    value = browser.evaluate(
        f"Array.from(document.querySelectorAll({selector!r}))"
        ".map(e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; })"
    )
    return [[float(w), float(h)] for w, h in value]


def test_index_lists_every_model_and_renders_cleanly(browser: Browser, catalog: Catalog) -> None:
    browser.open(catalog.site / "index.html")
    assert browser.problems == []
    text = browser.evaluate("document.body.innerText")
    assert "sentiment" in text and "ner" in text
    links = browser.evaluate(
        "Array.from(document.querySelectorAll('a')).map(a => a.getAttribute('href'))"
    )
    models = {f"models/{p.name}" for p in (catalog.site / "models").glob("*.html")}
    assert models <= set(links)
    assert all(w > 0 and h > 0 for w, h in size(browser, "table"))
    shoot(browser, "site-index.png")


def test_model_page_filters_sorts_and_plots(browser: Browser, catalog: Catalog) -> None:
    browser.open(one(catalog.site / "models", "sentiment-"))
    assert browser.problems == []
    assert browser.evaluate(VISIBLE_ROWS) == len(SENTIMENT_STEPS)
    plots = size(browser, "svg")
    assert plots and all(w > 100 and h > 50 for w, h in plots), plots
    assert browser.evaluate("document.querySelectorAll('svg path, svg polyline').length") > 0
    shoot(browser, "site-model.png")
    # the filter is shown by the script, and typing narrows the table to matching rows
    assert browser.evaluate("document.querySelector('input.filter').hidden") is False
    browser.type_into("input.filter", "step000300")
    assert browser.evaluate(VISIBLE_ROWS) == 1
    assert "1 of 4" in browser.evaluate("document.getElementById('checkpoint-count').textContent")
    browser.type_into("input.filter", " nothing-matches-this")
    assert browser.evaluate(VISIBLE_ROWS) == 0
    # a click on the numeric `step` header sorts ascending, a second one descending
    browser.open(one(catalog.site / "models", "sentiment-"))
    header = "#checkpoints thead th:nth-child(3)"
    assert browser.evaluate(f"document.querySelector({header!r}).textContent") == "step"
    browser.click(header)
    assert browser.evaluate(STEPS) == [str(s) for s in SENTIMENT_STEPS]
    assert browser.evaluate(f"document.querySelector({header!r}).ariaSort") == "ascending"
    browser.click(header)
    assert browser.evaluate(STEPS) == [str(s) for s in reversed(SENTIMENT_STEPS)]
    assert browser.problems == []


def test_checkpoint_page_draws_lineage_and_keeps_hostile_text_inert(
    browser: Browser, catalog: Catalog
) -> None:
    browser.open(one(catalog.site / "checkpoints", "sentiment-*step000400-"))
    assert browser.problems == []
    (diagram,) = size(browser, "svg.lineage")
    assert diagram[0] > 300 and diagram[1] > 20
    boxes = browser.evaluate("document.querySelectorAll('svg.lineage g.node').length")
    assert boxes == len(SENTIMENT_STEPS)  # 400 resumed from 300, from 200, from 100
    shoot(browser, "site-checkpoint.png")
    browser.open(one(catalog.site / "checkpoints", "ner-*step000010-"))
    # an injected script would run, or be blocked by the CSP (a reported violation)
    assert browser.problems == []
    assert browser.evaluate("typeof window.__pwned") == "undefined"
    assert browser.evaluate("document.querySelectorAll('img').length") == 0
    scripts = browser.evaluate("Array.from(document.scripts).map(s => s.textContent).join(' ')")
    assert "__pwned" not in scripts
    assert "window.__pwned = 1" in browser.evaluate("document.body.innerText")


def test_report_page_renders_cleanly(browser: Browser, catalog: Catalog) -> None:
    browser.open(catalog.report)
    assert browser.problems == []
    assert browser.evaluate("document.querySelectorAll('script').length") == 0
    (diagram,) = size(browser, "svg.lineage")
    assert diagram[0] > 300 and diagram[1] > 20
    tables = size(browser, "table")
    assert tables and all(w > 0 and h > 0 for w, h in tables)
    assert browser.evaluate("typeof window.__pwned") == "undefined"
    shoot(browser, "report.png")


def test_a_blocked_script_is_reported(browser: Browser, tmp_path: Path) -> None:
    """The harness sees what the assertions above rely on: errors and CSP violations."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html lang=en><head><meta http-equiv='Content-Security-Policy' "
        "content=\"script-src 'none'\"><title>t</title></head><body><script>1</script>"
        "</body></html>"
    )
    browser.open(page)
    assert any("Content Security Policy" in p for p in browser.problems), browser.problems
    page.write_text("<!DOCTYPE html><title>t</title><script>console.error('boom')</script>")
    browser.open(page)
    assert browser.problems == ["console.error: boom"]


def test_without_chromium_the_tests_skip_unless_it_is_required(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DVCCKPT_CHROMIUM", str(tmp_path / "no-chromium"))
    monkeypatch.delenv("DVCCKPT_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Chromium found"):
        required()
    monkeypatch.setenv("DVCCKPT_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="DVCCKPT_REQUIRE_BROWSER=1"):
        required()
