"""The summary `retire --missing` prints: one line per outcome, no progress."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dvcckpt.present.text import human_size

if TYPE_CHECKING:
    from dvcckpt.cards.retire import Pruned

_SHOWN = 10  # names listed before "and N more"


def summary(result: Pruned, dry_run: bool) -> list[str]:
    """`pruned 3 cards: a, b, c`, what the cache gave back, what was kept and skipped."""
    verb = "would prune" if dry_run else "pruned"
    names = [card.name for card in result.cards]
    count = f"{len(names)} card{'s' if len(names) != 1 else ''}"
    lines = [f"{verb} {count}" + (f": {_listed(names)}" if names else "")]
    cache = result.cache
    if cache.removed:
        released = "would release" if dry_run else "released"
        objects = f"{len(cache.removed)} DVC cache object{'s' if len(cache.removed) != 1 else ''}"
        lines.append(f"{released} {objects} ({human_size(cache.freed)})")
    lines += _kept(cache.kept)
    lines += [f"skipped {path}: {why}" for path, why in result.skipped]
    if names and not dry_run:
        lines.append("commit the change to record it")
    return lines


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _kept(kept: list[tuple[str, str]]) -> list[str]:
    """One line per reason: a foreign cache keeps every object for the same reason."""
    by_reason: dict[str, list[str]] = {}
    for md5, why in kept:
        by_reason.setdefault(why, []).append(md5)
    return [
        f"kept cache object {md5s[0]}: {why}"
        if len(md5s) == 1
        else f"kept {len(md5s)} cache objects ({md5s[0]}, ...): {why}"
        for why, md5s in by_reason.items()
    ]
