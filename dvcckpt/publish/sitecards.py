"""Model cards for the site: cached in the catalog by card blob, new ones rendered in
parallel.

A model card costs a few milliseconds (its YAML front matter is written and read
back), the bulk of a first site build of a large repository. The text depends only
on the card's content and on the renderer, so it is cached in the catalog, keyed by
the card's blob and the renderer's version, like the stage replay: a rebuild renders
only the cards that are new. When many are new, worker processes (one per core)
render them.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from dvcckpt.errors import DvcckptError
from dvcckpt.project import Project

ModelCard = Callable[[Mapping[str, Any]], str]  # card -> model card text (`present.modelcard`)
Result = tuple[str | None, str | None]  # (text, why there is none)
CACHE_PREFIX = "site-modelcards-"
PARALLEL_FROM = 64  # fewer new cards than this are rendered in this process
CHUNK = 32


def render_one(render: ModelCard, card: Mapping[str, Any]) -> Result:
    """One model card, or why a card this malformed (the catalog keeps every card that
    parses, valid or not) has none."""
    try:
        return render(card), None
    except DvcckptError as exc:
        return None, f"the model card cannot be rendered: {exc.message}"
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return None, f"the model card cannot be rendered from this card ({exc!r})"


def _render_batch(render: ModelCard, cards: list[Mapping[str, Any]]) -> list[Result]:
    return [render_one(render, card) for card in cards]


class ModelCards:
    def __init__(self, project: Project, render: ModelCard, version: str) -> None:
        self.catalog = project.catalog
        self.render = render
        self.key = f"{CACHE_PREFIX}{version}"
        cached = self.catalog.meta(self.key)
        try:
            loaded = json.loads(cached) if cached else {}
        except ValueError:
            loaded = {}
        self.cached: dict[str, str] = loaded if isinstance(loaded, dict) else {}
        self.results: dict[str, Result] = {}

    def prepare(
        self,
        cards: Iterable[tuple[str, Mapping[str, Any]]],
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        """Render every card not cached yet (in parallel when there are many)."""
        missing: dict[str, Mapping[str, Any]] = {}
        for blob, card in cards:
            text = self.cached.get(blob)
            if isinstance(text, str):
                self.results[blob] = (text, None)
            else:
                missing[blob] = card
        workers = min(os.cpu_count() or 1, 8)
        if len(missing) < PARALLEL_FROM or workers < 2:
            self.results.update((b, render_one(self.render, c)) for b, c in missing.items())
            return
        blobs = list(missing)
        batches = [[missing[b] for b in blobs[i : i + CHUNK]] for i in range(0, len(blobs), CHUNK)]
        # fork: the workers inherit the loaded modules instead of importing them again
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            rendered: list[Result] = []
            for batch in pool.map(_render_batch, [self.render] * len(batches), batches):
                rendered += batch
                if progress is not None:
                    progress("model cards", len(rendered), len(blobs))
        self.results.update(zip(blobs, rendered, strict=True))

    def get(self, blob: str, card: Mapping[str, Any]) -> Result:
        if blob not in self.results:
            self.results[blob] = render_one(self.render, card)
        return self.results[blob]

    def save(self) -> None:
        """Cache the texts of this build's cards only, so the cache follows the repository."""
        used = {blob: text for blob, (text, _) in self.results.items() if text is not None}
        if used != self.cached:
            text = json.dumps(used, separators=(",", ":"))
            self.catalog.set_meta(self.key, text, prefix=CACHE_PREFIX)
