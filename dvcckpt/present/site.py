"""The static catalog site: `pages(site)` yields (relative path, HTML) for every page.

- `index.html`: the models, who holds each stage, counts and last activity;
- `models/<slug>.html`: a model's checkpoints (sortable, filterable), its
  performance history as SVG plots with CI bands, its stage history (`sitemodel`);
- `checkpoints/<slug>.html`: one card rendered readably, its gate results per
  stage, lineage and model card (`sitecard`).

File names and links: `sitepage`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from dvcckpt.present import sitecard, sitemodel
from dvcckpt.present.html import Markup, element, link, page, table
from dvcckpt.present.sitepage import SCRIPT, Links, date, footer, holder_link, holder_of

if TYPE_CHECKING:
    from dvcckpt.publish.site import Model, Site

MAX_LISTED_PROBLEMS = 50


def pages(site: Site) -> Iterator[tuple[str, str]]:
    """Every page of the site, the index first."""
    links = Links.of(site)
    yield "index.html", index_page(site, links)
    for model in site.models:
        yield links.models[model.name], sitemodel.model_page(site, model, links)
        for checkpoint in model.checkpoints:
            yield (
                links.paths[checkpoint.version.path],
                sitecard.checkpoint_page(site, model, checkpoint, links),
            )


def index_page(site: Site, links: Links) -> str:
    body: list[object] = [element("h1", f"{site.title}: checkpoint catalog")]
    body += _problems(site)
    if not site.models:
        body.append(
            element(
                "p",
                "No checkpoint cards in this repository yet. Register one with ",
                element("code", "dvcckpt add PATH"),
                ", commit it, and build the site again.",
                class_="empty",
            )
        )
        return page(f"{site.title}: catalog", [*body, footer(site)])
    held = [s for s in site.stages if any(s in m.holders for m in site.models)]
    header = ["model", "checkpoints", *held, "last activity"]
    rows = []
    for model in site.models:
        cells: list[object] = [
            link(model.name, links.models[model.name]),
            str(len(model.checkpoints)),
        ]
        for stage in held:
            decision = model.holders.get(stage)
            cells.append(_holder_cell(model, stage, decision.name if decision else None, links))
        cells.append(date(model.last_activity))
        rows.append(cells)
    body.append(table(header, rows, sortable=True, id="models", numeric=[1]))
    if not held:
        body.append(
            element(
                "p",
                "No checkpoint holds a stage yet: ",
                element("code", "dvcckpt promote NAME --to STAGE"),
                " records one.",
                class_="empty",
            )
        )
    body.append(footer(site))
    return page(f"{site.title}: catalog", body, scripts=[SCRIPT])


def _holder_cell(model: Model, stage: str, name: str | None, links: Links) -> Markup:
    if name is None:
        return element("span", "—", class_="muted")
    return holder_link(holder_of(model, stage), name, links, "")


def _problems(site: Site) -> list[Markup]:
    out = []
    if site.gates_problem:
        out.append(element("p", f"gates.yaml cannot be read: {site.gates_problem}", class_="fail"))
    if site.stage_problem:
        out.append(element("p", f"stage history unavailable: {site.stage_problem}", class_="fail"))
    if site.unreadable:
        shown = site.unreadable[:MAX_LISTED_PROBLEMS]
        items = [element("li", element("code", path), f": {why}") for path, why in shown]
        if len(site.unreadable) > len(shown):
            items.append(element("li", f"… and {len(site.unreadable) - len(shown)} more"))
        out.append(
            element(
                "details",
                element("summary", f"{len(site.unreadable)} card version(s) cannot be read"),
                element("ul", items),
                class_="fail",
            )
        )
    return out
