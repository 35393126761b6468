"""`dvcckpt check`: the pre-commit gate that keeps bad cards out of history.

Reads what is about to be committed (the index), or the named files, plus the
committed versions to compare against, through one batched `git cat-file`.
Deleted cards are found from the staged diff itself, because pre-commit never
passes deleted files to hooks.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from dvcckpt.adapters import git, yamldoc
from dvcckpt.adapters.paths import repo_relative
from dvcckpt.cards import names, overwritten, stagecheck
from dvcckpt.core import config as config_module
from dvcckpt.core import layout, policy, schema
from dvcckpt.core.config import CONFIG_FILE, ProjectConfig
from dvcckpt.core.gates import GATES_FILE
from dvcckpt.core.limits import HARD_MAX_BYTES
from dvcckpt.core.policy import Finding
from dvcckpt.errors import CardError, ConfigError, StateError
from dvcckpt.project import load_config, load_gates

HOOK_MARKER = "# installed by dvcckpt install-hook"


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    cards: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def check(
    files: list[str] | None = None,
    *,
    all_cards: bool = False,
    base: str = "HEAD",
    start: Path | None = None,
    verify_decisions: bool = False,
) -> Report:
    """Findings for the staged (or named) cards against `base`.

    `verify_decisions` (what `check --base` in a pull request does) also judges
    every decision the change adds under the base's policy.
    """
    root = git.toplevel(start or Path.cwd())
    report = Report()
    base_commit = _base_commit(root, base)
    has_base = base_commit is not None
    # A review judges the change under the base's dvcckpt.yaml: a pull request that
    # relaxes naming or required fields must not pass its own cards by doing so.
    review = verify_decisions and has_base
    config = _config_at(root, base_commit, report) if review else _config(root, report)
    base = base_commit or base  # object ids from here on: no revision can pose as an option
    changes = git.staged_changes(root, base_commit)
    from_index = files is None
    if all_cards:
        paths = [p for p in git.tracked_files(root) if layout.is_card(p)]
    elif files is not None:
        paths = _named_files(root, files, report)
    else:
        paths = [p for p, status in changes.items() if status != "D"]
    cards = _cards_to_check(paths, root, from_index)
    deleted = [p for p, status in changes.items() if status == "D" and layout.is_card(p)]
    if CONFIG_FILE in paths and not all_cards:
        report.cards.append(CONFIG_FILE)
    # dvcckpt.yaml too: removing a stage can leave gate sets that never apply.
    if GATES_FILE in paths or (
        (CONFIG_FILE in paths or all_cards) and os.path.lexists(root / GATES_FILE)
    ):
        report.findings.extend(_gates_findings(root))

    # A card's name does not say which checkpoint it is of (`x.ckpt.yaml`: `x` or `x.ckpt`):
    # every pointer it could have is read at once, and its `checkpoint.path` picks one.
    pointers = dict.fromkeys(p for c in cards for p in layout.pointers_of_card(c))
    specs = [f":{c}" for c in cards] + [f":{p}" for p in pointers]
    specs += [f"{base}:{c}" for c in cards] if has_base else []
    blobs = git.read_blobs(root, specs)
    checked: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    for card_path in cards:
        text = blobs.get(f":{card_path}") if from_index else _read(root / card_path)
        if text is None:
            if files is not None:
                report.findings.append(Finding(card_path, "", "no such card"))
            continue
        report.cards.append(card_path)

        def pointer_of(name: str) -> tuple[bytes | None, bool]:
            staged = blobs.get(f":{name}")
            return (staged if from_index else _read(root / name)), staged is not None

        findings, parsed = _check_card(
            card_path, text, blobs.get(f"{base}:{card_path}"), pointer_of, root, config
        )
        report.findings.extend(findings)
        if parsed is not None and not findings:
            checked.append(parsed)
    report.findings.extend(policy.deletion_finding(path) for path in deleted)
    report.findings.extend(overwritten.live_card_findings(root, checked, from_index))
    if has_base and checked:
        report.findings.extend(_cross_card_findings(root, base, checked, verify_decisions))
    return report


def _cross_card_findings(
    root: Path,
    base: str,
    checked: list[tuple[str, dict[str, Any], dict[str, Any] | None]],
    verify_decisions: bool,
) -> list[Finding]:
    """Rules that need history: unique names, and (for a review) the decisions added."""
    new = [(path, card) for path, card, old in checked if old is None]
    with_decisions = [c for c in checked if (c[1].get("decisions") or []) != _decisions(c[2])]
    if not new and not (verify_decisions and with_decisions):
        return []  # the common commit touches no names or decisions: no catalog needed
    from dvcckpt.project import Project

    project = Project.discover(root, require_dvc=False)
    findings = names.unique_name_findings(project, base, new, [p for p, _, _ in checked])
    if verify_decisions and with_decisions:
        from dvcckpt.promotion import review

        findings += review.decision_findings(project, base, with_decisions)
    return findings


def _decisions(card: dict[str, Any] | None) -> list[Any]:
    return list((card or {}).get("decisions") or [])


def _config(root: Path, report: Report) -> ProjectConfig:
    try:
        return load_config(root)
    except ConfigError as exc:
        report.findings.append(
            Finding(CONFIG_FILE, "", exc.message.removeprefix(f"{root / CONFIG_FILE}: "))
        )
        return config_module.ProjectConfig(project=config_module.default_project_name(root))


def _config_at(root: Path, commit: str | None, report: Report) -> ProjectConfig:
    """The settings in force at `commit` (its dvcckpt.yaml; defaults when it has none)."""
    from dvcckpt.project import config_from_text

    spec = f"{commit}:{CONFIG_FILE}"
    content = git.read_blobs(root, [spec]).get(spec)
    where = Path(f"{str(commit)[:8]}:{CONFIG_FILE}")
    try:
        text = None if content is None else content.decode("utf-8")
        return config_from_text(text, where, config_module.default_project_name(root))
    except UnicodeDecodeError:
        message = "is not UTF-8 text"
    except ConfigError as exc:
        message = exc.message.removeprefix(f"{where}: ")
    report.findings.append(Finding(f"{where}", "", f"the base's settings: {message}"))
    return config_module.ProjectConfig(project=config_module.default_project_name(root))


def _gates_findings(root: Path) -> list[Finding]:
    """A broken gates.yaml would only surface at promotion time; catch it at commit time."""

    try:
        load_gates(root)
    except ConfigError as exc:
        return [Finding(GATES_FILE, "", exc.message.removeprefix(f"{root / GATES_FILE}: "))]
    return []


def _base_commit(root: Path, rev: str) -> str | None:
    """The commit to compare with (None: a new repository has no HEAD yet)."""
    if rev == "HEAD":
        return git.head_commit(root)
    commit = git.commit_of(root, rev) if rev.strip() else None
    if commit is None:
        raise StateError(
            f"--base: unknown revision {rev[:100]!r}",
            hint="fetch it first, e.g. `git fetch origin main`",
        )
    return commit


def _named_files(root: Path, files: list[str], report: Report) -> list[str]:
    """The repository paths of the files named on the command line.

    What cannot be checked (missing, outside the repository, a folder, not a card)
    is a finding: `check FILE` never says ok about a file it did not read.
    """
    paths = []
    for name in files:
        shown = name or "''"
        try:
            relative = repo_relative(Path(name), root) if name.strip() else None
        except (OSError, RuntimeError) as exc:  # too long, a symlink loop
            relative, shown = None, f"{shown[:200]} ({exc.__class__.__name__})"
        path = root / relative if relative is not None else None
        if path is None:
            problem = "is outside the repository" if name.strip() else "is an empty file name"
        elif not os.path.lexists(path):
            problem = "no such file"
        elif os.path.isdir(path):
            problem = "is a folder; name its cards, or use --all"
        elif not _checked_kind(relative or ""):
            problem = "is not a card (*.ckpt.yaml), a .dvc file, dvcckpt.yaml or gates.yaml"
        else:
            paths.append(relative or "")
            continue
        report.findings.append(Finding(_shortened(relative or shown), "", problem))
    return paths


def _shortened(name: str, limit: int = 200) -> str:
    return name if len(name) <= limit else f"{name[: limit // 2]}...{name[-limit // 2 :]}"


def _checked_kind(path: str) -> bool:
    return (
        layout.is_card(path)
        or layout.is_pointer(path)
        or PurePosixPath(path).name in (CONFIG_FILE, GATES_FILE)
    )


def _cards_to_check(paths: list[str], root: Path, from_index: bool) -> list[str]:
    """Cards among `paths`, plus the cards of each `.dvc` file's checkpoint among them
    (a path written again by another run has several; the live one checks the pointer)."""
    cards: dict[str, None] = {}
    pointed = overwritten.cards_of_pointers(root, paths, from_index)
    for path in paths:
        if layout.is_card(path):
            cards[path] = None
        elif layout.is_pointer(path):
            cards.update(dict.fromkeys(pointed[path]))
        elif from_index:  # a staged dvc.lock: the cards of the outputs it records
            cards.update(dict.fromkeys(stagecheck.cards_of_lock(root, path)))
    return list(cards)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _check_card(
    path: str,
    text: bytes,
    committed: bytes | None,
    pointer_of: Callable[[str], tuple[bytes | None, bool]],
    root: Path,
    config: ProjectConfig,
) -> tuple[list[Finding], tuple[str, dict[str, Any], dict[str, Any] | None] | None]:
    """Findings for one card, and (path, card, committed card) when it could be read.

    `pointer_of(name)`: the `.dvc` file's content (None if missing) and whether it is staged."""
    try:
        card = _parse(text, path, config.card_max_bytes)
    except CardError as exc:
        return [Finding(path, "", exc.message.removeprefix(f"{path}: "))], None
    findings = policy.schema_findings(path, card)
    if findings:
        return findings, None  # later rules assume a schema-valid card
    findings += policy.location_findings(path, card) + _symlink_findings(path, card, root)
    previous, unreadable = _committed_version(committed, path)
    if previous is None:
        # Name and required fields are judged when a card enters history; once committed
        # they are immutable, so a later policy (a new naming pattern, a newly required
        # field) must not refuse the growth a committed card may take (an evaluation).
        findings += policy.naming_findings(path, card, config)
        findings += policy.required_findings(path, card, config)
    findings += policy.tombstone_findings(path, card)
    if card.get("tombstone") is None and stagecheck.is_stage_output(card):
        findings += stagecheck.findings(root, path, card)
    elif card.get("tombstone") is None:
        checkpoint, run_id = str(card["checkpoint"]["path"]), overwritten.run_id_of(card)
        pointer_file = layout.pointer_of_card(path, checkpoint, run_id)
        pointer, pointer_staged = pointer_of(pointer_file)
        on_disk = os.path.lexists(root / pointer_file)
        document = stagecheck.parsed(pointer, pointer_file)
        findings += policy.pointer_findings(path, card, document, pointer_staged, on_disk)
    if unreadable is not None:
        findings.append(unreadable)
    elif previous is not None:
        findings += policy.immutability_findings(path, previous, card)
    if unreadable is None:
        findings += policy.evaluation_findings(path, previous, card)
        findings += policy.interval_findings(path, previous, card)
    return findings, (path, card, previous)


def _committed_version(
    committed: bytes | None, path: str
) -> tuple[dict[str, Any] | None, Finding | None]:
    """The committed card to compare with, or the finding saying it cannot be read.

    Read with a fixed limit, never the change's own `card_max_bytes`; a committed
    version that cannot be read is a finding, never a reason to skip the comparison.
    """
    if committed is None:
        return None, None
    try:
        return _parse(committed, path, HARD_MAX_BYTES, validate=False), None
    except CardError as exc:
        message = exc.message.removeprefix(f"{path}: ")
        return None, Finding(path, "", f"the committed version is unreadable: {message}")


def _symlink_findings(file: str, card: dict[str, Any], root: Path) -> list[Finding]:
    path = str(card["checkpoint"]["path"])
    if Path(path).is_absolute() or ".." in Path(path).parts:
        return []  # policy.location_findings reports it
    target = root / path
    try:
        outside = target.is_symlink() and not target.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError) as exc:  # a name too long for the file system, a loop
        return [
            Finding(
                file,
                "checkpoint.path",
                f"cannot be examined: {getattr(exc, 'strerror', None) or exc}",
            )
        ]
    if outside:
        return [
            Finding(
                file, "checkpoint.path", f"{path!r} is a symlink leading outside the repository"
            )
        ]
    return []


def _parse(text: bytes, path: str, max_bytes: int, validate: bool = True) -> dict[str, Any]:
    # Value limits (NaN, int64 range, string length) are left to the schema check that
    # follows, so every problem of the card is listed at once.
    document = yamldoc.load_fast(text, path, max_bytes, values=not validate)
    if not isinstance(document, dict):
        raise CardError(f"{path}: a card must be a YAML mapping", hint="see `dvcckpt schema`")
    if validate:
        schema.check_card_version(document, path)
    return document


def install(root: Path, force: bool = False) -> Path:
    """Write a native `pre-commit` git hook that runs `dvcckpt check`."""
    hook = git.hooks_path(root) / "pre-commit"
    existing = _hook_text(hook)
    if existing is not None and HOOK_MARKER not in existing and not force:
        raise StateError(
            f"{hook} already exists and was not written by dvcckpt",
            hint="add the dvcckpt-check hook to .pre-commit-config.yaml (see `dvcckpt init`)"
            if "pre-commit" in existing
            else f"add `{_command()} check` to {hook}, or pass --force to replace it",
        )
    hook.parent.mkdir(parents=True, exist_ok=True)
    if hook.is_symlink():
        hook.unlink()  # replace the link itself, never write through it to its target
    from dvcckpt.adapters import atomic  # writers only: the hook's start-up stays lean

    atomic.write_text(hook, hook_script())
    hook.chmod(0o755)
    return hook


def hook_script() -> str:
    """The hook runs the `dvcckpt` console script of the installing environment.

    Never `python -m dvcckpt`: git runs hooks from the repository root, and `-m` puts
    the current folder first on the import path, so a committed `click/__init__.py`
    would run at every `git commit`. The script's own folder comes first instead.
    Without that script (the environment was removed) `dvcckpt` on PATH is used.
    """
    script = _command()
    lines = ["#!/bin/sh", HOOK_MARKER]
    if script != "dvcckpt":
        lines.append(f'if [ -x {script} ]; then exec {script} check "$@"; fi')
    lines.append('exec dvcckpt check "$@"')
    return "\n".join(lines) + "\n"


def _hook_text(hook: Path) -> str | None:
    """The current hook's text (None if there is none); a folder or unreadable file is refused."""
    if not os.path.lexists(hook):
        return None
    if hook.is_dir():
        raise StateError(f"{hook} is a folder", hint="remove it, then run install-hook again")
    try:
        return hook.read_bytes().decode("utf-8", "replace")
    except OSError:
        return ""  # a dangling link or an unreadable file: not ours, so --force is needed


def _command() -> str:
    """The absolute path of the `dvcckpt` console script beside this interpreter, quoted for sh."""
    if os.sep != "/":
        return "dvcckpt"
    for folder in (Path(sys.argv[0]).parent, Path(sys.executable).parent):
        script = folder / "dvcckpt"
        if folder.is_absolute() and script.is_file() and os.access(script, os.X_OK):
            return shlex.quote(str(script))
    return "dvcckpt"
