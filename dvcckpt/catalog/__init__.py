"""The catalog: an index of every card version in Git history, and its queries.

`Catalog(repo)` is the public face: the index (`catalog.index`, with HEAD's
commits and each card's latest version kept ready by `catalog.latest`) plus
`find` (`catalog.find`, over the query language in `catalog.where`) and `log`
(`catalog.log`; `evaluations=True`: `catalog.evaluations`). It is a derived
cache: deleting it loses nothing.
"""

from __future__ import annotations

import os
from typing import Any

from dvcckpt.catalog.index import Index
from dvcckpt.catalog.rows import Problem, Stats, Version
from dvcckpt.catalog.store import heals

__all__ = ["Catalog", "Problem", "Stats", "Version", "index_problems"]


class Catalog(Index):
    """Query card versions across history; `Catalog(repo).find(...)`, `.log(...)`, `.get(...)`."""

    @heals
    def find(self, **options: Any) -> list[Version]:
        from dvcckpt.catalog import find

        return find.run(self, **options)

    @heals
    def groups(self, group_by: str, metric: str, **options: Any) -> Any:
        """`groups.summarise`: the checkpoints `find` matches, per run or per group."""
        from dvcckpt.catalog import groups

        return groups.summarise(self, group_by, metric, **options)

    @heals
    def log(self, target: str | None = None, **options: Any) -> Any:
        """`log.history`: rows newest first; `evaluations=True` for one row per evaluation."""
        from dvcckpt.catalog import log

        return log.history(self, target, **options)


def index_problems(repo: str | os.PathLike[str] | None = None) -> list[Problem]:
    """Card versions in the history of `repo` that the catalog could not index, and why.

    Each `Problem` has `commit`, `path`, `blob` and `message`; the catalog skips
    these versions (for `doctor` and `catalog status`).
    """
    return Catalog(repo).index_problems()
