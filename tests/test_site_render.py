"""The site's pure renderers: HTML primitives (`present.html`) and SVG plots (`present.svgplot`)."""

from __future__ import annotations

import json
import math
import re

import html5lib
import pytest

from dvcckpt.present import svgplot
from dvcckpt.present.html import (
    Markup,
    element,
    esc,
    json_script,
    link,
    page,
    safe_href,
    script_hash,
    table,
)


def parse(text: str) -> object:
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(text)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "java\nscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:x",
        "file:///etc/passwd",
        "\\\\evil.example/x",
        "/\\evil.example",
        "//evil.example/x",
        "///evil.example/x",
        "//evil.example",
        "https://ok.example/\u202e",
        "",
        None,
        42,
    ],
)
def test_unsafe_links_never_pass(url: object) -> None:
    assert safe_href(url) is None
    assert "href" not in link("x", url if isinstance(url, str) else None)


@pytest.mark.parametrize(
    "url", ["https://example.com/a?b=1&c=2", "http://x.example", "../models/a.html", "#top"]
)
def test_web_and_relative_links_pass(url: str) -> None:
    assert safe_href(url) == url
    assert link("x", url).startswith('<a href="')


def test_text_is_escaped_and_markup_is_not_escaped_twice() -> None:
    assert esc('<a href="x">&\x00\x1b') == "&lt;a href=&quot;x&quot;&gt;&amp;"
    built = element("p", "<b>", Markup("<i>ok</i>"), 3, None, ["<", "x"])
    assert built == "<p>&lt;b&gt;<i>ok</i>3&lt;x</p>"
    assert element("td", "x", class_="num", data_sort=0.5, hidden=True) == (
        '<td class="num" data-sort="0.5" hidden>x</td>'
    )
    assert element("a", "x", href="javascript:alert(1)") == "<a>x</a>"


def test_bidirectional_controls_are_shown_never_obeyed() -> None:
    """A name holding RIGHT-TO-LEFT OVERRIDE would read reversed: it shows U+FFFD instead."""
    for control in ("\u202e", "\u202a", "\u2066", "\u2069", "\u200f", "\u061c"):
        assert esc(f"good{control}dab-step1") == "good\ufffddab-step1"
    assert esc("plain café ✓") == "plain café ✓"


@pytest.mark.parametrize("attribute", ["onload", "onclick", "onerror"])
def test_event_handler_attributes_are_refused(attribute: str) -> None:
    with pytest.raises(ValueError):
        element("img", **{attribute: "alert(1)"})


def test_script_and_style_elements_only_come_from_page() -> None:
    for tag in ("script", "style", "Script", "a b"):
        with pytest.raises(ValueError):
            element(tag, "x")


def test_json_data_cannot_close_its_script_element() -> None:
    data = {"notes": "</script><!-- <script>alert(1)</script> & \u2028\u2029"}
    block = json_script("data", data)
    inner = block.removeprefix('<script type="application/json" id="data">').removesuffix(
        "</script>"
    )
    assert "<" not in inner and ">" not in inner and "&" not in inner
    assert "\u2028" not in inner and "\u2029" not in inner
    assert json.loads(inner) == data
    parse(page("t", block))


def test_a_page_is_a_complete_document_that_allows_only_its_own_scripts() -> None:
    script = "document.body.dataset.ok = '1';"
    text = page("<T>", element("table"), scripts=[script], nav=[("home", "index.html")])
    parse(text)
    assert text.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert '<meta charset="utf-8">' in text and "<title>&lt;T&gt;</title>" in text
    assert '<meta name="referrer" content="no-referrer">' in text  # no card URL learns the site
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', text)
    assert policy is not None
    assert script_hash(script).replace("'", "&#x27;") in policy.group(1)
    assert "default-src &#x27;none&#x27;" in policy.group(1)
    assert "script-src &#x27;none&#x27;" in page("t", "x")
    with pytest.raises(ValueError):
        page("t", "x", scripts=["x = '</script><script>alert(1)'"])


def test_tables_have_head_and_body_and_mark_numeric_columns() -> None:
    built = table(
        ["name", "f1"], [["<a>", "0.5"], ["b", "n/a"]], sortable=True, id="t", numeric=[1],
        sort_keys=[[None, 0.5], [None, None]],
    )  # fmt: skip
    parse(page("t", built))
    assert built.count("<tr>") == 3 and "<tbody>" in built and "&lt;a&gt;" in built
    assert '<th scope="col" data-type="number" aria-sort="none">f1</th>' in built
    assert '<td class="num" data-sort="0.5">0.5</td>' in built
    assert '<td class="num">n/a</td>' in built


# -- plots ----------------------------------------------------------------------------


def test_ticks_are_round_and_cover_the_range() -> None:
    assert svgplot.ticks(0.0, 1.0) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert svgplot.ticks(0.41, 0.57) == pytest.approx([0.45, 0.5, 0.55])
    assert svgplot.ticks(500, 75000, 7) == [20000, 40000, 60000]
    assert svgplot.ticks(3.0, 3.0) == [3.0]
    assert svgplot.ticks(0.0, math.inf) == []
    assert [svgplot.short(v) for v in (0.85, 12000, 1.5e6)] == ["0.85", "12k", "1.5M"]


def test_a_plot_draws_lines_ci_bands_legend_and_escaped_labels() -> None:
    points = [svgplot.Point(s, 0.8 + s / 1000, 0.78 + s / 1000, 0.82 + s / 1000, f"<c{s}>")
              for s in (100, 200, 300)]  # fmt: skip
    plain = [svgplot.Point(s, 0.7) for s in (100, 300)]
    svg = svgplot.line_plot("dev.<f1>", [svgplot.Line("<run a>", points),
                                         svgplot.Line("run-b", plain)], x_label="step")  # fmt: skip
    parse(page("t", svg))
    assert svg.count("<polyline") == 2 and svg.count('<polygon class="ci"') == 1
    assert svg.count("<circle") == 5 and "&lt;run a&gt;" in svg and "dev.&lt;f1&gt;" in svg
    assert "<title>&lt;run a&gt;: &lt;c200&gt; 1 [0.98, 1.02]</title>" in svg  # the tooltip
    assert "<script" not in svg


def test_a_plot_is_bounded_and_says_what_it_left_out() -> None:
    many = [
        svgplot.Line(f"run{i}", [svgplot.Point(x, math.sin(x + i)) for x in range(1000)])
        for i in range(12)
    ]
    svg = svgplot.line_plot("loss", many, x_label="step", max_lines=8, max_points=100)
    assert svg.count("<polyline") == 8 and svg.count("<circle") == 800
    assert "4 more runs not drawn" in svg and "thinned to 100 points" in svg
    assert len(svg) < 200_000


def test_nothing_to_plot_is_said_plainly() -> None:
    empty = svgplot.line_plot("f1", [svgplot.Line("a", [svgplot.Point(1, math.nan)])], x_label="s")
    assert empty == '<p class="empty">No values of f1 to plot.</p>'
    lone = svgplot.line_plot("f1", [svgplot.Line("a", [svgplot.Point(1, 0.5, 0.4, 0.6)])],
                             x_label="step")  # fmt: skip
    assert "<svg" in lone and 'stroke-width="6"' in lone  # one interval: an error bar


@pytest.mark.parametrize(
    "values",
    [(1e308, -1e308), (1.7e308, 0.0), (-1.79e308, 1.79e308, 0.5), (5e-324, 0.0), (1e308, 1e308)],
)
def test_extreme_finite_values_are_plotted_with_finite_coordinates(
    values: tuple[float, ...],
) -> None:
    points = [svgplot.Point(float(i), v, v, v) for i, v in enumerate(values)]
    svg = svgplot.line_plot("f1", [svgplot.Line("a", points)], x_label="step")
    parse(page("t", svg))
    assert "<svg" in svg and "nan" not in svg.lower() and "inf" not in svg.lower()
    numbers = re.findall(r'\s(?:x|y|x1|x2|y1|y2|cx|cy|points)="([^"]*)"', svg)
    coordinates = [float(n) for found in numbers for n in re.split(r"[ ,]", found) if n]
    assert coordinates and all(-100 <= c <= 1000 for c in coordinates)
    assert svgplot.ticks(-1e308, 1e308) and all(math.isfinite(t) for t in svgplot.ticks(0, 1.7e308))


def test_a_plot_whose_frame_is_not_finite_is_dropped_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert svgplot.Frame(0, 1, -1e308, 1e308, 0, 1, 0, 1).finite()
    infinite = svgplot.Frame(0.0, 1.0, -math.inf, 1.0, 60, 584, 28, 240)
    monkeypatch.setattr(svgplot, "_frame", lambda *args: infinite)  # a frame bug, injected
    note = svgplot.line_plot("<f1>", [svgplot.Line("a", [svgplot.Point(1, 0.5)])], x_label="s")
    assert note == '<p class="empty">The values of &lt;f1&gt; are too large to plot.</p>'
