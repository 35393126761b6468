"""What every page of the static catalog site shares: file names, links, the sorting
script, the footer (`present.site` writes the pages).

Names are untrusted, so a file name is a slug of the name (lower-case letters,
digits, `-`) plus a hash of the exact identity (a model's name, a card's path):
never a path separator, never two pages on one file. Links are relative, so the
folder can be moved, served from a bucket or opened from `file://`.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dvcckpt.present.html import Markup, element, link

if TYPE_CHECKING:
    from dvcckpt.publish.site import Checkpoint, Model, Site

SLUG_TEXT = 48  # characters of the readable part of a slug

# Sorting and filtering, for every table.sortable and input.filter on a page. It reads
# cells' text (or data-sort) and only moves rows or sets `hidden`: no card text is ever
# parsed as HTML. The filter is hidden until this script shows it.
SCRIPT = r"""(function () {
  "use strict";
  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };
  function key(cell, numeric) {
    if (!cell) return null;
    var raw = cell.getAttribute("data-sort");
    if (raw === null) raw = cell.textContent.trim();
    if (raw === "") return null;
    if (!numeric) return raw.toLowerCase();
    var n = parseFloat(raw);
    return isNaN(n) ? null : n;
  }
  each(document.querySelectorAll("table.sortable"), function (tbl) {
    var heads = tbl.tHead.rows[0].cells;
    each(heads, function (th, index) {
      th.tabIndex = 0;
      function sort() {
        var numeric = th.getAttribute("data-type") === "number";
        var up = th.getAttribute("aria-sort") !== "ascending";
        each(heads, function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", up ? "ascending" : "descending");
        var body = tbl.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[index], numeric), y = key(b.cells[index], numeric);
          if (x === y) return 0;
          if (x === null) return 1;
          if (y === null) return -1;
          var c = numeric ? x - y : x.localeCompare(y, undefined, {numeric: true});
          return up ? c : -c;
        });
        each(rows, function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
      });
    });
  });
  each(document.querySelectorAll("input.filter"), function (input) {
    var tbl = document.getElementById(input.getAttribute("data-table"));
    var count = document.getElementById(input.getAttribute("data-count"));
    if (!tbl) return;
    input.hidden = false;
    input.addEventListener("input", function () {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var rows = tbl.tBodies[0].rows, shown = 0;
      each(rows, function (row) {
        var text = row.textContent.toLowerCase();
        var keep = words.every(function (w) { return text.indexOf(w) !== -1; });
        row.hidden = !keep;
        if (keep) shown += 1;
      });
      if (count) count.textContent = shown + " of " + rows.length + " shown";
    });
  });
})();
"""


def section(card: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A card's section when it is a mapping (cards are untrusted: it may be anything)."""
    value = card.get(key)
    return value if isinstance(value, Mapping) else {}


def entries(card: Mapping[str, Any], key: str) -> list[Any]:
    """A card's list field when it is a list, else an empty one."""
    value = card.get(key)
    return value if isinstance(value, list) else []


def slug(text: str, identity: str | None = None) -> str:
    """A safe file stem: readable part of `text` plus a hash of `identity` (default text)."""
    readable = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:SLUG_TEXT].strip("-")
    digest = hashlib.sha256((identity if identity is not None else text).encode()).hexdigest()
    return f"{readable or 'x'}-{digest[:12]}"


@dataclass
class Links:
    """Where each model's and checkpoint's page is, relative to the site's root."""

    models: dict[str, str] = field(default_factory=dict)  # model -> models/<slug>.html
    paths: dict[str, str] = field(default_factory=dict)  # card path -> checkpoints/<slug>.html
    names: dict[str, str] = field(default_factory=dict)  # checkpoint name -> its page

    @classmethod
    def of(cls, site: Site) -> Links:
        links = cls()
        taken: set[str] = set()
        for model in site.models:
            links.models[model.name] = _unique(f"models/{slug(model.name)}", taken)
            for checkpoint in model.checkpoints:
                version = checkpoint.version
                name = version.name or "checkpoint"
                target = _unique(f"checkpoints/{slug(name, version.path)}", taken)
                links.paths[version.path] = target
                links.names.setdefault(name, target)
        return links

    def checkpoint(self, name: object, prefix: str = "../") -> Markup:
        """A checkpoint's name, linked to its page when the site has one."""
        target = self.names.get(str(name))
        return link(str(name), prefix + target) if target else element("span", str(name))


def _unique(stem: str, taken: set[str]) -> str:
    """`stem.html`, or with a counter should two identities ever share a hash prefix."""
    candidate, number = f"{stem}.html", 1
    while candidate in taken:
        number += 1
        candidate = f"{stem}-{number}.html"
    taken.add(candidate)
    return candidate


def nav(prefix: str, model: str | None = None, links: Links | None = None) -> list[tuple[str, str]]:
    items = [("All models", f"{prefix}index.html")]
    if model is not None and links is not None and model in links.models:
        items.append((model, prefix + links.models[model]))
    return items


def footer(site: Site) -> Markup:
    head = (site.head or "no commit")[:12]
    return element(
        "p",
        f"{site.title}: scope {site.scope}, stages from {site.branch}, commit {head}; "
        f"written {site.generated_at} by dvcckpt site.",
        class_="muted",
    )


def date(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(timestamp)) if timestamp else ""


def holder_of(model: Model, stage: str) -> Checkpoint | None:
    """The checkpoint in scope that holds `stage` (`publish.site.is_holder`), if any."""
    return next((c for c in model.checkpoints if stage in c.holds), None)


def holder_link(checkpoint: Checkpoint | None, name: str, links: Links, prefix: str) -> Markup:
    """The holder linked to its page; when its card is retired or not in the site's scope
    (pruned, or replaced by a re-run's card), the page says so and links nothing."""
    if checkpoint is None:
        note = " (its card is not in this site: pruned or replaced)"
        return element("span", element("span", name), element("span", note, class_="warn"))
    linked = link(name, prefix + links.paths[checkpoint.version.path])
    if checkpoint.card.get("tombstone") is not None:
        return element("span", linked, element("span", " (retired)", class_="warn"))
    return linked
