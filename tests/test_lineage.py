"""The lineage diagram (`present.lineage.svg`): layered, escaped, bounded, deterministic.

Each drawing is parsed as part of an HTML5 document by html5lib in strict mode and read
back as a tree, so the assertions are on what a browser builds, not on substrings.
"""

from __future__ import annotations

from typing import Any

import html5lib

from dvcckpt.present import lineage

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = [
    "</text></svg><script>alert(1)</script>",
    '" onload="alert(2)" x="',
    "<img src=x onerror=alert(3)>",
    "\u202eevil\u200b name\nwith\tbreaks\x00",
    "]]><!-- -->&amp;",
]
ALLOWED = {"svg", "title", "g", "rect", "text", "path", "polygon"}  # and `a` when linked


def drawn(root: str, edges: list[tuple[str, str, str]], links: dict[str, str] | None = None) -> Any:
    """The <svg> element as a browser would build it from the page."""
    picture = lineage.svg(root, edges, links)
    page = f"<!DOCTYPE html><html lang=en><title>t</title><body>{picture}"
    tree = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(page)
    (svg,) = tree.findall(f".//{SVG}svg")
    return svg


def boxes(svg: Any) -> dict[str, tuple[float, float, str]]:
    """Full name (the box's tooltip) -> (x, y, shown label) of every box."""
    out = {}
    for node in svg.iter(f"{SVG}g"):
        if "node" not in (node.get("class") or "").split():
            continue
        rect = node.find(f"{SVG}rect")
        out[node.find(f"{SVG}title").text] = (
            float(rect.get("x")),
            float(rect.get("y")),
            node.find(f"{SVG}text").text,
        )
    return out


def test_a_chain_is_drawn_left_to_right_from_the_root() -> None:
    svg = drawn("c", [("c", "finetuned_from", "b"), ("b", "resumed_from", "a")])
    at = boxes(svg)
    assert at["c"][0] < at["b"][0] < at["a"][0]
    (root,) = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "node root"]
    assert root.find(f"{SVG}title").text == "c"
    relations = [t.text for g in svg.iter(f"{SVG}g") if g.get("class") == "edge" for t in g]
    assert [r for r in relations if r] == ["finetuned_from", "resumed_from"]
    assert svg.get("aria-label") == "Lineage of c" and svg.get("role") == "img"


def test_a_lone_checkpoint_is_one_highlighted_box() -> None:
    svg = drawn("solo", [])
    assert list(boxes(svg)) == ["solo"] and svg.find(f".//{SVG}path") is None


def test_hostile_names_and_relations_stay_text() -> None:
    edges = [(HOSTILE[i], HOSTILE[(i + 1) % 5], HOSTILE[(i + 2) % 5]) for i in range(5)]
    svg = drawn(HOSTILE[0], edges)
    tags = {e.tag.removeprefix(SVG) for e in svg.iter()}
    assert tags <= ALLOWED, tags
    attributes = {name for e in svg.iter() for name in e.attrib}
    assert not [a for a in attributes if a.lower().startswith("on") or "href" in a.lower()]
    tooltips = set(boxes(svg))
    assert "</text></svg><script>alert(1)</script>" in tooltips
    assert "evil name with breaks" in tooltips  # bidi override, zero-width, NUL gone
    text = "".join(svg.itertext())
    assert "\u202e" not in text and "\u200b" not in text and "\x00" not in text


def test_long_names_are_cut_in_the_middle_and_kept_whole_in_the_tooltip() -> None:
    name = "sentiment-train-full-with-a-very-long-run-name-a6f005-step000400"
    wide = "模型" * 40
    at = boxes(drawn(name, [(name, "finetuned_from", wide)]))
    label = at[name][2]
    assert label.startswith("sentiment-train") and label.endswith("step000400") and "…" in label
    assert len(label) == lineage.LABEL_UNITS
    wide_label = at[wide][2]
    assert len(wide_label) * 2 <= lineage.LABEL_UNITS + 1  # wide characters count twice


def test_a_cycle_in_hostile_cards_terminates_and_is_drawn_as_an_arc() -> None:
    svg = drawn("a", [("a", "x", "b"), ("b", "y", "a"), ("a", "x", "a"), ("a", "x", "b")])
    assert set(boxes(svg)) == {"a", "b"}
    paths = [p.get("d") for p in svg.iter(f"{SVG}path")]
    assert len(paths) == 2  # the self-loop and the repeated edge are drawn once / not at all


def test_the_drawing_is_bounded_and_says_what_it_left_out() -> None:
    edges = [("root", "merged_from", f"parent-{i}") for i in range(500)]
    edges += [(f"parent-{i}", "resumed_from", f"grand-{i}") for i in range(500)]
    svg = drawn("root", edges)
    shown = boxes(svg)
    assert len(shown) <= lineage.MAX_NODES and "root" in shown
    assert len(shown) == 1 + 2 * lineage.MAX_PER_COLUMN
    note = [t.text for t in svg.findall(f"{SVG}text") if t.text and "not shown" in t.text]
    assert note == [f"{1001 - len(shown)} more ancestor(s) not shown"]
    assert len(lineage.svg("root", edges)) < 60_000


def test_parents_are_ordered_by_their_children_and_output_is_deterministic() -> None:
    edges = [("r", "p", "a"), ("r", "p", "b"), ("b", "q", "x"), ("a", "q", "y")]
    at = boxes(drawn("r", edges))
    assert at["a"][1] < at["b"][1] and at["y"][1] < at["x"][1]  # no crossing
    assert lineage.svg("r", edges) == lineage.svg("r", list(edges))
    assert "id=" not in lineage.svg("r", edges)  # several diagrams may share a page


def test_boxes_link_to_the_pages_given_and_never_to_an_unsafe_url() -> None:
    links = {"c": "../checkpoints/c-1.html", "b": "javascript:alert(1)", "a": "java\tscript:x"}
    svg = drawn("c", [("c", "finetuned_from", "b"), ("b", "resumed_from", "a")], links)
    anchors = list(svg.iter(f"{SVG}a"))
    assert [a.get("href") for a in anchors] == ["../checkpoints/c-1.html"]
    assert anchors[0].find(f"{SVG}g/{SVG}title").text == "c"
    assert "javascript" not in lineage.svg("c", [("c", "x", "b")], links)


# -- what the site gathers (`publish.site.lineage`) -----------------------------------------


def test_the_site_gathers_as_many_edges_as_the_diagram_draws_nearest_first() -> None:
    """60 cards that each list the 59 others: one card's lineage is 3,540 edges unbounded."""
    from dvcckpt.publish import site

    assert site.MAX_LINEAGE_EDGES == lineage.MAX_EDGES
    names = [f"m-n{i:02d}" for i in range(60)]
    named = {n: {"name": n, "parents": [{"name": o} for o in names if o != n]} for n in names}
    edges, left_out = site.lineage(named["m-n00"], named)
    assert len(edges) == lineage.MAX_EDGES
    assert edges[:59] == [("m-n00", "", o) for o in names[1:]]  # the root's parents first
    assert left_out == 60 * 59 - lineage.MAX_EDGES
    assert site.lineage({"name": "x", "parents": "not a list"}, named) == ([], 0)


def test_the_site_follows_parents_only_among_its_own_cards_and_stops_on_cycles() -> None:
    from dvcckpt.publish import site

    named = {
        "b": {"name": "b", "parents": [{"name": "a", "relation": "resumed_from"}]},
        "a": {"name": "a", "parents": [{"name": "b"}, "junk", {"name": "gone"}]},
    }
    child = {"name": "c", "parents": [{"name": "b", "relation": "fine_tuned_from"}]}
    edges, left_out = site.lineage(child, named)
    assert edges == [("c", "fine_tuned_from", "b"), ("b", "resumed_from", "a"),
                     ("a", "", "b"), ("a", "", "gone")]  # fmt: skip
    assert left_out == 0
    assert site.lineage(child, {}) == ([("c", "fine_tuned_from", "b")], 0)
