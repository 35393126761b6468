"""The catalog: an index of every card version in Git history, and its queries.

`Catalog(repo)` is the public face: the index (`catalog.index`) plus `find`
(`catalog.find`, over the query language in `catalog.where`) and `log`
(`catalog.log`). It is a derived cache: deleting it loses nothing.
"""

from __future__ import annotations

from typing import Any

from dvcckpt.catalog.index import Index
from dvcckpt.catalog.rows import Stats, Version

__all__ = ["Catalog", "Stats", "Version"]


class Catalog(Index):
    """Query card versions across history; `Catalog(repo).find(...)`, `.log(...)`, `.get(...)`."""

    def find(self, **options: Any) -> list[Version]:
        from dvcckpt.catalog import find

        return find.run(self, **options)

    def log(self, target: str | None = None, **options: Any) -> Any:
        from dvcckpt.catalog import log

        return log.history(self, target, **options)
