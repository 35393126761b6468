"""`find --top N --by METRIC`: the best N read from the top of the metric's index.

The numbers of a metric are indexed in order (`catalog.numbers`), so instead of
ranking every match, the query walks the best numbers first and checks each card
against the filters, stopping after N matches: a selective query at the top of a
long history reads a few hundred index entries, not every card of the model.

Exact, not a heuristic: a walk of the best K numbers proves its answer when its N-th
match is strictly better than the K-th number (every card not walked ranks below
it, ties included), or when K covers every number. Otherwise the walk is tried
again eight times longer, and after that `find` ranks every match as before
(a walk costs about 10 µs an entry, so a query the walk cannot answer pays at most
~50 ms more).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dvcckpt.catalog import numbers
from dvcckpt.catalog.index import Index

if TYPE_CHECKING:
    from dvcckpt.catalog.find import Plan

FIRST_WALK = 512  # index entries first read, at least
PER_MATCH = 64  # index entries first read per match asked for
WALKS = 2  # walks tried (the second 8x longer) before ranking every match


def best(catalog: Index, query: Plan, count: int) -> list[tuple[int, int]] | None:
    """(commit id, path id) of the best `count` matches in order, or None when the walk
    cannot prove them (rank every match instead)."""
    if not query.keys or not numbers.indexes(field := query.keys[0].field.resolved()):
        return None
    order = "DESC" if query.keys[0].descending else "ASC"
    walk = f"SELECT card_id FROM metric_values WHERE field = ? ORDER BY value {order}"
    statement, params = query.statement("v.commit_id, v.path_id", driver="w")
    statement = numbers.per_card(statement)  # the walk reads few cards: no list of them
    size = max(FIRST_WALK, PER_MATCH * count)
    for _ in range(WALKS):
        edge = catalog.sql(f"{walk.replace('card_id', 'value', 1)} LIMIT 1 OFFSET ?",
                           [field, size - 1])  # fmt: skip
        found = catalog.sql(
            f"WITH w AS ({walk} LIMIT ?) {statement} LIMIT ?", [field, size, *params, count]
        )
        # Column 2 is the first sort key (`s_0`): the ranked number of each match.
        if not edge or (len(found) == count and _beyond(found[-1][2], edge[0][0], order)):
            return [(row[0], row[1]) for row in found]
        size *= 8
    return None


def _beyond(value: float, edge: float, order: str) -> bool:
    """Whether `value` ranks strictly before the number at the walk's edge."""
    return value > edge if order == "DESC" else value < edge
