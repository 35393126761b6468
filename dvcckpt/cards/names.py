"""Checkpoint names are unique for ever: one name, one card path, in all of history.

A name reused at another path could otherwise take over what `NAME`,
`MODEL@STAGE` or a stage holder resolves to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dvcckpt.core.policy import Finding
from dvcckpt.project import Project


def unique_name_findings(
    project: Project, base: str, new: Sequence[tuple[str, Mapping[str, Any]]], changed: list[str]
) -> list[Finding]:
    """New cards whose name another card path already uses, in `base`'s history or the change."""
    findings = []
    catalog = project.catalog
    in_base = catalog.reachable([base])
    seen: dict[str, str] = {}
    for path, card in new:
        name = str(card.get("name"))
        others = sorted(
            {v.path for v in catalog.versions(name=name, commits=in_base) if v.path != path}
        )
        if name in seen and seen[name] != path:
            others.append(seen[name])
        seen.setdefault(name, path)
        if others:
            message = f"{name!r} is already used by {', '.join(others)}; names are unique for ever"
            findings.append(Finding(path, "name", message + " (choose another --name)"))
    return findings
