"""`dvcckpt diff`: what differs between two checkpoints (or two revisions' cards)."""

from __future__ import annotations

from collections.abc import Sequence

from dvcckpt.adapters import git
from dvcckpt.catalog.index import Index
from dvcckpt.catalog.known import field_error
from dvcckpt.catalog.rows import Version
from dvcckpt.core import layout
from dvcckpt.core.comparison import Change, Comparison, compare_cards
from dvcckpt.core.fields import card_path
from dvcckpt.errors import StateError


def resolve(catalog: Index, reference: str) -> Version:
    """`NAME`, `NAME@REV` or a checkpoint/card path (optionally `@REV`) -> that card version."""
    name, _, rev = reference.partition("@")
    if not catalog.versions(name=name):
        name = _name_at(catalog, name, rev or None)
    return catalog.get(name, rev or None)


def _name_at(catalog: Index, path: str, rev: str | None) -> str:
    """The checkpoint a path names at `rev`: a card path's own card; for a checkpoint path,
    its live card there (a later run's card once it replaced the first run's)."""
    commits = catalog.reachable([rev or "HEAD"])
    found = [v for v in _versions_at(catalog, path) if v.sha in commits]
    last = {v.path: v for v in found}  # oldest first: each card file's version at `rev`
    live = [v for v in last.values() if v.status != "D" and not (v.card or {}).get("tombstone")]
    chosen = max(live or last.values(), key=lambda v: v.generation, default=None)
    if chosen is None or chosen.name is None:
        raise StateError(
            f"no checkpoint named {path!r}" + (f" at {rev}" if rev else ""),
            hint="use a checkpoint name, NAME@REV, or two revisions",
        )
    return chosen.name


def _versions_at(catalog: Index, path: str) -> list[Version]:
    """A card path's versions, or those of every card of a checkpoint path (`x.ckpt.yaml`,
    `x.ckpt.ckpt.yaml`, a re-run's `x.<run>.ckpt.yaml`): each card's `checkpoint.path`
    says whose it is."""
    if layout.is_card(path):
        return catalog.versions(path=path)
    folder, _, name = path.rpartition("/")
    stem = f"{folder}/{name.removesuffix('.ckpt') or name}" if folder else name
    # Card files named after the checkpoint: `stem.` up to (not including) `stem/`.
    rows = catalog.sql("SELECT path FROM paths WHERE path >= ? AND path < ?",
                       [f"{stem}.", f"{stem}/"])  # fmt: skip
    found = [
        v
        for row in rows
        if layout.could_be_card_of(row[0], path)
        for v in catalog.versions(path=row[0])
        if (v.card or {}).get("checkpoint", {}).get("path") == path
    ]
    return sorted(found, key=lambda v: v.generation)


def compare(
    catalog: Index,
    a: str,
    b: str,
    everything: bool = False,
    fields: Sequence[str] = (),
) -> list[Comparison]:
    """What differs between A and B; `fields` (in the field language: `dev.f1`, `step`,
    `params`) limits the comparison to those fields and everything inside them."""
    if not fields:
        return _compare(catalog, a, b, everything)
    results = _compare(catalog, a, b, True)  # every field, to tell "equal" from "absent"
    paths = [card_path(spec) for spec in fields]
    for spec, path in zip(fields, paths, strict=True):
        if results and not any(_within(c, path) for r in results for c in r.changes if _present(c)):
            known = sorted({_full(c) for r in results for c in r.changes if _present(c)})
            known += sorted({c.section for r in results for c in r.changes})
            raise field_error(
                "--field", path, spec, known, "neither card", "the cards have no fields"
            )
    return [
        Comparison(r.a, r.b, [c for c in r.changes if _kept(c, paths, everything)]) for r in results
    ]


def _kept(change: Change, paths: list[str], everything: bool) -> bool:
    return any(_within(change, p) for p in paths) and (everything or change.a != change.b)


def _full(change: Change) -> str:
    """`metrics.dev.f1`, `evaluations[0].split`: the change's field as one path."""
    if not change.field:
        return change.section
    joiner = "" if change.field.startswith("[") else "."
    return f"{change.section}{joiner}{change.field}"


def _within(change: Change, path: str) -> bool:
    """The change is the field `path` or lies inside it (a section, group or record)."""
    full = _full(change)
    return full == path or full.startswith((f"{path}.", f"{path}["))


def _present(change: Change) -> bool:
    return change.a is not None or change.b is not None


def _compare(catalog: Index, a: str, b: str, everything: bool) -> list[Comparison]:
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
