"""Rules a card must satisfy before it enters history: pure functions over plain data.

Each rule returns findings (file, field, message); `dvcckpt check` gathers
cards from git and reports every finding at once.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from dvcckpt.core import finalname, layout, manifest, migrations, naming, schema
from dvcckpt.core.config import ProjectConfig
from dvcckpt.core.estimates import interval_problems
from dvcckpt.core.fields import field as field_of
from dvcckpt.core.fields import is_empty

# Once committed, these may only grow: existing entries stay exactly as they were.
APPEND_ONLY = ("evaluations", "decisions", "tags", "artifacts")
GROWING_TEXT = ("notes",)
SET_ONCE = ("tombstone",)
# A split named by an evaluation: `evaluations.test.macro_f1` reads split, then metric, so
# a split name holds no dot (the metric-name characters otherwise, at most 200 of them).
SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,199}")


@dataclass(frozen=True)
class Finding:
    file: str
    field: str
    message: str
    history: bool = False  # a committed field was changed: the fix is to restore it

    def __str__(self) -> str:
        # One finding, one line: a file name holding a newline cannot forge another.
        file = self.file if self.file.isprintable() else ascii(self.file)[1:-1]
        message = self.message if len(self.message) <= 1000 else self.message[:995] + " ..."
        return f"{file}: {self.field}: {message}" if self.field else f"{file}: {message}"

    def as_dict(self) -> dict[str, str]:
        return {"file": self.file, "field": self.field, "message": self.message}


def schema_findings(file: str, card: Mapping[str, Any]) -> list[Finding]:
    findings = []
    for problem in schema.card_problems(card):
        field, _, message = problem.partition(": ")
        findings.append(Finding(file, field, message))
    return findings


def location_findings(file: str, card: Mapping[str, Any]) -> list[Finding]:
    """The card sits beside its checkpoint, at a relative path without `..`."""
    path = str(card["checkpoint"]["path"])
    if PurePosixPath(path).is_absolute() or ".." in PurePosixPath(path).parts or "\\" in path:
        return [Finding(file, "checkpoint.path", f"{path!r} must be relative, without `..`")]
    # A card of `x.ckpt` may be `x.ckpt.yaml` or (older cards) `x.ckpt.ckpt.yaml`; a run
    # that wrote a path again names its card with its run id (`layout.card_names`).
    if not layout.is_card_name_of(file, path, _run_id(card)):
        expected = " or ".join(repr(c) for c in layout.checkpoints_of_card(file)[:2])
        return [
            Finding(
                file,
                "checkpoint.path",
                f"{path!r} does not match the card's location (expected {expected or 'a card'})",
            )
        ]
    return []


def _run_id(card: Mapping[str, Any]) -> str | None:
    run = card.get("run")
    run_id = run.get("id") if isinstance(run, Mapping) else None
    return run_id if isinstance(run_id, str) else None


def pointer_findings(
    file: str, card: Mapping[str, Any], pointer: Any, staged: bool, on_disk: bool = True
) -> list[Finding]:
    """The card's hashes agree with its `.dvc` file, which is staged or committed.

    `pointer` is the parsed `.dvc` document (None when the file is missing; a string
    saying why when it could not be parsed); `on_disk`: whether the work tree has it.
    """
    meta = card["checkpoint"]
    expected = layout.pointer_for(meta["path"])
    if meta["dvc"]["file"] != expected:
        return [
            Finding(
                file, "checkpoint.dvc.file", f"is {meta['dvc']['file']!r}, expected {expected!r}"
            )
        ]
    if pointer is None and not on_disk:
        command = f"dvcckpt add {shlex.quote(str(meta['path']))}"
        message = f"{expected} does not exist: register the checkpoint again with `{command}`"
        return [Finding(file, "checkpoint.dvc", message)]
    if pointer is None or not staged:
        state = "not staged" if pointer is not None else "missing"
        command = f"git add -- {shlex.quote(expected)}"
        return [Finding(file, "checkpoint.dvc", f"{expected} is {state}: run `{command}`")]
    if isinstance(pointer, str):
        return [Finding(file, "checkpoint.dvc", f"{expected} cannot be read: {pointer}")]
    out = _single_output(pointer, PurePosixPath(str(meta["path"])).name)
    if isinstance(out, str):
        return [Finding(file, "checkpoint.dvc", f"{expected} {out}")]
    md5 = out.get("md5")
    if md5 is None and "files" in out:
        # A directory pushed to a version-aware remote: DVC lists its files instead of
        # the `.dir` md5; the md5 is computed from that list, never skipped.
        md5 = directory_md5(out["files"])
        if md5 is None:
            message = f"{expected} lists files without md5s or at unsafe paths"
            return [Finding(file, "checkpoint.dvc", message)]
    if md5 is None:
        return [Finding(file, "checkpoint.dvc", f"{expected} has no output with an md5")]
    if not manifest.is_md5(md5, directory=True):
        shown = str(md5)[:80]
        return [Finding(file, "checkpoint.dvc.md5", f"{expected} says {shown!r}: not an md5")]
    findings = []
    if md5 != meta["dvc"]["md5"]:
        findings.append(
            Finding(
                file, "checkpoint.dvc.md5", f"card says {meta['dvc']['md5']}, {expected} says {md5}"
            )
        )
    size = out.get("size")
    if "files" in out and "md5" not in out:
        size = sum(f.get("size") or 0 for f in out["files"])
        if meta["dvc"].get("nfiles") not in (None, len(out["files"])):
            message = f"card says {meta['dvc']['nfiles']}, {expected} lists {len(out['files'])}"
            findings.append(Finding(file, "checkpoint.dvc.nfiles", message))
    if size is not None and size != meta["dvc"]["size"]:
        findings.append(
            Finding(
                file,
                "checkpoint.dvc.size",
                f"card says {meta['dvc']['size']}, {expected} says {size}",
            )
        )
    return findings


def _single_output(pointer: Any, name: str) -> Mapping[str, Any] | str:
    """The one output of a `.dvc` file, or what is wrong with it."""
    outs = pointer.get("outs") if isinstance(pointer, Mapping) else None
    if not isinstance(outs, list) or not outs:
        return "has no output with an md5"
    if len(outs) != 1 or not isinstance(outs[0], Mapping):
        return f"has {len(outs)} outputs; a checkpoint's .dvc file tracks exactly one"
    if outs[0].get("path") != name:
        return f"tracks {str(outs[0].get('path'))[:80]!r}, not the checkpoint {name!r}"
    return outs[0]


def directory_md5(files: Any) -> str | None:
    """DVC's `.dir` md5 of a directory listed file by file, or None when an entry lacks an
    md5 or a usable size, or the listing could not be checked out safely (storage's rule)."""
    if not isinstance(files, list):
        return None
    entries = []
    for entry in files:
        if not isinstance(entry, Mapping):
            return None
        md5, relpath, size = entry.get("md5"), entry.get("relpath"), entry.get("size", 0)
        if not isinstance(md5, str) or not isinstance(relpath, str):
            return None
        if isinstance(size, bool) or not isinstance(size, int | None):
            return None
        entries.append((relpath, md5))
    if manifest.listing_problem(entries) is not None:
        return None
    return manifest.dvc_tree_md5(entries)


def naming_findings(file: str, card: Mapping[str, Any], config: ProjectConfig) -> list[Finding]:
    if not config.enforce_naming:
        return []
    findings = []
    fields = naming.parse(config.checkpoint_pattern, str(card["name"]))
    checkpoint = card.get("checkpoint")
    if fields is None and isinstance(checkpoint, dict) and checkpoint.get("step") is None:
        fields = finalname.parse(
            config.checkpoint_pattern, str(card["name"])
        )  # a run's final model
    if fields is None:
        findings.append(
            Finding(
                file,
                "name",
                f"{_shown(card['name'])} does not follow the naming pattern "
                f"{config.checkpoint_pattern!r}",
            )
        )
    else:
        actual = {"model": card["model"], **card["checkpoint"]}
        for key, value in fields.items():
            if key in actual and _comparable(actual[key]) != value:
                findings.append(
                    Finding(
                        file,
                        "name",
                        f"encodes {key} {_shown(value)} but the card says {_shown(actual[key])}",
                    )
                )
        findings += _run_id_findings(file, card, fields)
    run_name = card.get("run", {}).get("name")
    if run_name and naming.parse(config.run_pattern, str(run_name)) is None:
        problem = (
            f"is longer than {naming.NAME_MAX} characters"
            if len(str(run_name)) > naming.NAME_MAX
            else f"does not follow the run naming pattern {config.run_pattern!r}"
        )
        findings.append(Finding(file, "run.name", f"{_shown(run_name)} {problem}"))
    return findings


def _run_id_findings(
    file: str, card: Mapping[str, Any], fields: Mapping[str, Any]
) -> list[Finding]:
    """A name's `{run_id}` must be the card's own run: otherwise a name could claim a
    checkpoint for another run than the one it records."""
    if "run_id" not in fields:
        return []
    run = card.get("run")
    recorded = run.get("id") if isinstance(run, Mapping) else None
    if isinstance(recorded, str) and naming.short_run_id(recorded) == fields["run_id"]:
        return []
    said = f"run.id is {_shown(recorded)}" if recorded is not None else "has no run.id"
    message = f"encodes run id {_shown(fields['run_id'])} but the card {said}"
    return [Finding(file, "name", message)]


def _shown(value: Any, limit: int = 100) -> str:
    """A value quoted for a message, elided past `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"


def _comparable(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def required_findings(file: str, card: Mapping[str, Any], config: ProjectConfig) -> list[Finding]:
    phase = card["checkpoint"].get("phase", "")
    wanted = [*config.required_all, *config.required_phases.get(phase, ())]
    reason = {field: "required for every card" for field in config.required_all}
    for field in config.required_phases.get(phase, ()):
        reason.setdefault(field, f"required for phase {phase!r}")
    missing = [field for field in dict.fromkeys(wanted) if is_empty(field_of(card, field))]
    return [
        Finding(file, field, f"is missing ({reason[field]} by dvcckpt.yaml)") for field in missing
    ]


def tombstone_findings(file: str, card: Mapping[str, Any]) -> list[Finding]:
    stone = card.get("tombstone")
    if stone is None:
        return []
    return [
        Finding(file, f"tombstone.{key}", "is required on a tombstone")
        for key in ("reason", "archived_at")
        if is_empty(stone.get(key))
    ]


def immutability_findings(
    file: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> list[Finding]:
    """What changed in a committed card that may not change."""
    # Compare both at the current schema version: upgrades are not tampering.
    before, new = _current(old), _current(new)
    findings = []
    for key in dict.fromkeys([*before, *new]):
        if str(key).startswith("x-"):
            continue
        was, now = before.get(key), new.get(key)
        if key in APPEND_ONLY:
            findings.extend(_append_only(file, key, was or [], now or []))
        elif key in GROWING_TEXT:
            if was and not str(now or "").startswith(str(was)):
                findings.append(Finding(file, key, "may only be extended, not rewritten"))
        elif key in SET_ONCE:
            if was is not None and now != was:
                findings.append(Finding(file, key, "cannot change once set"))
        else:
            findings.extend(
                Finding(
                    file, path, f"is immutable once committed (was {_short(a)}, now {_short(b)})"
                )
                for path, a, b in _differences(was, now, key)
            )
    return [dataclasses.replace(finding, history=True) for finding in findings]


def evaluation_findings(
    file: str, old: Mapping[str, Any] | None, new: Mapping[str, Any]
) -> list[Finding]:
    """Rules for the evaluations a change appends (`old`: the committed card, if any).

    Entries already committed are judged only by the append-only rule, so cards
    written before these rules stay valid.
    """
    was, now = _entries(old), _entries(new)  # no migration changes evaluation records
    if now[: len(was)] != was:
        return []  # an earlier entry changed: immutability_findings reports it
    findings = []
    retired = old is not None and old.get("tombstone") is not None
    for index in range(len(was), len(now)):
        entry = now[index]
        split = entry.get("split") if isinstance(entry, Mapping) else None
        if retired:
            message = "is appended to a retired checkpoint; its tombstone is final"
            findings.append(Finding(file, f"evaluations[{index}]", message))
        elif isinstance(split, str) and not SPLIT_NAME.fullmatch(split):
            message = (
                f"{_shown(split)} is not a split name: letters, digits, _ and -, "
                "starting with a letter or digit (a dot would read as a metric path)"
            )
            findings.append(Finding(file, f"evaluations[{index}].split", message))
    return findings


_EVALUATION_INDEX = re.compile(r"evaluations\[(\d+)\]")


def interval_findings(
    file: str, old: Mapping[str, Any] | None, new: Mapping[str, Any]
) -> list[Finding]:
    """Confidence intervals that are none (low above high, the value outside them).

    Every one of a new card; of a committed card only those in the evaluations the
    change appends: the rest is immutable, and was judged when it entered history.
    """
    first_new = len(_entries(old)) if old is not None else 0
    findings = []
    for problem in interval_problems(new):
        field, _, message = problem.partition(": ")
        appended = _EVALUATION_INDEX.match(field)
        if old is None or (appended is not None and int(appended.group(1)) >= first_new):
            findings.append(Finding(file, field, message))
    return findings


def _entries(card: Mapping[str, Any] | None) -> list[Any]:
    entries = (card or {}).get("evaluations")
    return list(entries) if isinstance(entries, list) else []


def _current(card: Mapping[str, Any]) -> dict[str, Any]:
    upgraded = copy.deepcopy(dict(card))
    if upgraded.get("schema", {}).get("version") in migrations.MIGRATIONS:
        migrations.migrate(upgraded)
    return upgraded


def _append_only(file: str, key: str, was: list[Any], now: list[Any]) -> list[Finding]:
    for index, entry in enumerate(was):
        if index >= len(now):
            return [Finding(file, f"{key}[{index}]", "was removed; entries may only be appended")]
        if now[index] != entry:
            return [Finding(file, f"{key}[{index}]", "was changed; entries may only be appended")]
    return []


def _differences(was: Any, now: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    if isinstance(was, Mapping) and isinstance(now, Mapping):
        for key in dict.fromkeys([*was, *now]):
            yield from _differences(was.get(key), now.get(key), f"{path}.{key}")
    elif was != now:
        yield path, was, now


def _short(value: Any) -> str:
    text = "absent" if value is None else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def deletion_finding(file: str) -> Finding:
    return Finding(
        file,
        "",
        "deleting a committed card is refused; keep it and record why with "
        "`dvcckpt retire NAME --reason TEXT` (a tombstone)",
    )
