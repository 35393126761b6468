"""Names of new cards, and names are unique for ever: one name, one card path, in all
of history.

A name reused at another path could otherwise take over what `NAME`,
`MODEL@STAGE` or a stage holder resolves to; `add` refuses it as the hook does.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from dvcckpt.core import finalname, naming
from dvcckpt.core.config import ProjectConfig
from dvcckpt.core.policy import Finding
from dvcckpt.errors import UsageError
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
            findings.append(_taken(path, name, ", ".join(others)))
    return findings


def taken_name_findings(project: Project, file: str, name: str) -> list[Finding]:
    """At `add` time: another card path that has used `name` anywhere in history (every
    branch and tag the catalog indexes, deletions included) or is staged with it now."""
    used = {v.path for v in project.catalog.versions(name=name) if v.path != file}
    used.update(path for path in _staged_names(project).get(name, ()) if path != file)
    if not used:
        return []
    shown = ", ".join(sorted(used)[:3]) + (" ..." if len(used) > 3 else "")
    return [_taken(file, name, shown)]


def _taken(file: str, name: str, users: str) -> Finding:
    message = f"{name!r} is already used by {users}; names are unique for ever"
    return Finding(file, "name", message + " (choose another --name)")


def _staged_names(project: Project) -> dict[str, list[str]]:
    """Name -> paths of the cards staged as new (not yet in any commit)."""
    from dvcckpt.adapters import git, yamldoc
    from dvcckpt.core import layout
    from dvcckpt.errors import CardError

    head = git.head_commit(project.root)
    added = [p for p, s in git.staged_changes(project.root, head).items() if s == "A"]
    cards = [path for path in added if layout.is_card(path)]
    found: dict[str, list[str]] = {}
    for spec, text in git.read_blobs(project.root, [f":{path}" for path in cards]).items():
        try:
            document = yamldoc.load_fast(text or b"", spec[1:])
        except CardError:
            continue  # an unreadable staged card: the hook reports it
        if isinstance(document, dict) and isinstance(document.get("name"), str):
            found.setdefault(document["name"], []).append(spec[1:])
    return found


def assign(
    config: ProjectConfig, card: dict[str, Any], run_fields: dict[str, Any], running_program: bool
) -> None:
    """Name a new card (unless named) and its run (unless named) by the patterns.

    Every placeholder can be filled: the run's fields (`run_fields`), the card's
    checkpoint fields, its model and `{run_id}`. A name the hook could not read back is
    refused here, naming the placeholder (`naming.name_for`).
    """
    run = card.setdefault("run", {})
    values = {
        **run_fields,
        **card["checkpoint"],
        "model": card["model"],
        "run_id": _run_id(config, run, running_program, card["checkpoint"].get("step") is not None),
    }
    if card.get("name") is None:
        card["name"] = _checkpoint_name(config, values, run)
    if not run.get("name"):
        # Left unset when the pattern's fields (task, key param...) are unknown. The hook
        # reads a run name only for its shape, so it need only parse (not exactly).
        run["name"] = naming.name_for(
            config.run_pattern, values, "run", exact=False, fix="give the run name with --run"
        )


def _needs_run_id(config: ProjectConfig, step_known: bool) -> bool:
    """Whether a name of this card has `{run_id}` (a final model's always has)."""
    patterns = [config.checkpoint_pattern, config.run_pattern]
    if not step_known:
        patterns.append(finalname.final_pattern(config.checkpoint_pattern) or "")
    return any("run_id" in naming.placeholders(pattern) for pattern in patterns)


def _run_id(
    config: ProjectConfig, run: dict[str, Any], running_program: bool, step_known: bool
) -> str | None:
    """`{run_id}`: short and stable per run, recorded in run.id so a run's cards share it.

    The card's run.id when given (`--run-id`, a run record's `run_id`), shortened when
    long or not name-safe; else derived: in a training program (`save()`) from the run
    name and this process, so every save of one run shares it and another run never
    does; on the command line from the run name given (one name, one run); without a
    run name, random. Only when a name of the card uses `{run_id}`.
    """
    if not _needs_run_id(config, step_known):
        return None
    if run.get("id"):
        return naming.short_run_id(str(run["id"]))
    name = str(run.get("name") or "")
    if running_program:
        derived = naming.derived_run_id(name, process_token())
    else:
        derived = naming.derived_run_id(name) if name else secrets.token_hex(3)
    run["id"] = derived
    return derived


_PROCESS_TOKEN: list[str] = []


def process_token() -> str:
    """Random once per process: what tells one training process's run from another's."""
    if not _PROCESS_TOKEN:
        _PROCESS_TOKEN.append(secrets.token_hex(8))
    return _PROCESS_TOKEN[0]


def adopt_process_token(token: str) -> None:
    """Name runs as the process whose `process_token` this is (the background
    registration process registers for the training program)."""
    _PROCESS_TOKEN[:] = [token]


def _checkpoint_name(config: ProjectConfig, values: dict[str, Any], run: dict[str, Any]) -> str:
    """The pattern's name; a named run's checkpoint without a step is its final model."""
    pattern = config.checkpoint_pattern
    fix = "give the name with --name NAME"
    name = naming.name_for(pattern, values, "checkpoint", fix=fix)
    missing = naming.missing_fields(pattern, values)
    if name is None and missing == ["step"] and run.get("name"):
        final = finalname.final_pattern(pattern) or pattern
        name = naming.name_for(final, values, "final model", fix=fix)
    if name is None:
        raise UsageError(
            f"cannot name the checkpoint: the pattern {pattern!r} needs {', '.join(missing)}",
            hint=f"pass --{missing[0].replace('_', '-')} (or --name NAME)"
            + ("; a run's final model has no step: give --run NAME" if "step" in missing else ""),
        )
    return name
