"""`dvcckpt diff`: what differs between two checkpoints (or two revisions' cards)."""

from __future__ import annotations

from dvcckpt.adapters import git
from dvcckpt.catalog.index import Index
from dvcckpt.catalog.rows import Version
from dvcckpt.core import layout
from dvcckpt.core.comparison import Comparison, compare_cards
from dvcckpt.errors import StateError


def resolve(catalog: Index, reference: str) -> Version:
    """`NAME`, `NAME@REV` or a checkpoint/card path (optionally `@REV`) -> that card version."""
    name, _, rev = reference.partition("@")
    if not catalog.versions(name=name):
        by_path = catalog.versions(path=layout.card_for(layout.checkpoint_of_card(name)))
        if not by_path or by_path[-1].name is None:
            raise StateError(
                f"no checkpoint named {reference!r}",
                hint="use a checkpoint name, NAME@REV, or two revisions",
            )
        name = by_path[-1].name
    return catalog.get(name, rev or None)


def compare(catalog: Index, a: str, b: str, everything: bool = False) -> list[Comparison]:
    revisions = (_is_revision(catalog, a), _is_revision(catalog, b))
    if all(revisions) and not _is_checkpoint(catalog, a):
        return _compare_revisions(catalog, a, b, everything)
    if any(revisions) and not all(revisions):  # name the side that is neither
        other = b if revisions[0] else a
        if not _is_checkpoint(catalog, other.partition("@")[0]):
            try:
                resolve(catalog, other)  # a card path
            except StateError:
                raise StateError(
                    f"no checkpoint or revision named {other!r}",
                    hint="compare two checkpoints (NAME, NAME@REV, a card path) or two revisions",
                ) from None
    left, right = resolve(catalog, a), resolve(catalog, b)
    return [
        Comparison(
            _label(left),
            _label(right),
            compare_cards(left.card or {}, right.card or {}, everything),
        )
    ]


def _compare_revisions(catalog: Index, a: str, b: str, everything: bool) -> list[Comparison]:
    changed = git.run_git(
        catalog.root, "diff", "--name-only", "-z", a, b, "--", f"*{layout.CARD_SUFFIX}"
    )
    in_a, in_b = catalog.reachable([a]), catalog.reachable([b])
    results = []
    for path in filter(None, changed.split("\0")):
        before = _at(catalog, path, in_a)
        after = _at(catalog, path, in_b)
        label_a = f"{path}@{a}" if before is None else _label(before)
        label_b = f"{path}@{b}" if after is None else _label(after)
        card_a = before.card if before and before.status != "D" else None
        card_b = after.card if after and after.status != "D" else None
        sections: tuple[str, ...] | None = None  # every section
        if card_a is None or card_b is None:
            # A new or removed card: its metrics say what changed; all else would be noise.
            sections = ("metrics",)
            label_a = f"(new) {label_a}" if card_a is None else label_a
            label_b = f"(gone) {label_b}" if card_b is None else label_b
        changes = compare_cards(card_a or {}, card_b or {}, everything, sections)
        results.append(Comparison(label_a, label_b, changes))
    return results


def _at(catalog: Index, path: str, commits: set[str]) -> Version | None:
    versions = [v for v in catalog.versions(path=path) if v.sha in commits]
    return versions[-1] if versions else None


def _is_revision(catalog: Index, text: str) -> bool:
    return git.commit_of(catalog.root, text) is not None


def _is_checkpoint(catalog: Index, text: str) -> bool:
    return bool(catalog.versions(name=text.partition("@")[0]))


def _label(version: Version) -> str:
    return f"{version.name}@{version.sha[:8]}"
