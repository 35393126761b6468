"""`dvcckpt evaluate`: append an evaluation to a checkpoint's card after the fact.

A card's `evaluations` may only grow (the hook refuses any other change to them),
so an evaluation on a new test set, or a re-evaluation under another protocol, is
one appended record: split, metrics (relative to the split), when, who, and
optionally the step, protocol and notes. The record is validated before anything
is written; the card is then rewritten with its other lines and comments as they
were, and staged, so the next `git commit` carries it through the hook.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dvcckpt.adapters import capture, git, yamldoc
from dvcckpt.cards import card, resolve
from dvcckpt.cards.retire import required_reference
from dvcckpt.core import fragments, layout, limits, redaction, schema
from dvcckpt.core.estimates import ci_problem
from dvcckpt.core.policy import SPLIT_NAME
from dvcckpt.errors import StateError, UsageError
from dvcckpt.project import Project

SECTION = "evaluations"
# The card schema's rule for metric names (`metricGroup.propertyNames`).
_METRIC_NAME_MAX = 200
_METRIC_HINT = "metric names are letters, digits, _, . and -, starting with a letter or digit"


class EvaluateArgumentError(UsageError, TypeError):
    """An argument of `evaluate()` has the wrong type (also a TypeError)."""


@dataclass(frozen=True)
class Evaluated:
    """An evaluation appended to a card: which card, where in its list, and the record."""

    name: str
    path: Path  # the card file
    card_file: str  # its repository path
    index: int  # position in the card's `evaluations`
    entry: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "card": self.card_file, "index": self.index,
                "evaluation": self.entry}  # fmt: skip


def evaluate(
    name: str,
    *,
    split: str,
    metrics: Mapping[str, Any],
    step: int | None = None,
    protocol: str | None = None,
    notes: str | None = None,
    repo: str | os.PathLike[str] | None = None,
) -> Evaluated:
    """Append an evaluation of checkpoint `name` (a name, checkpoint path or card path).

    `metrics` are relative to the split: `{"macro_f1": 0.81, "class_f1": {"neg": 0.7}}`,
    numbers or estimates `{"value": v, "ci": [lo, hi], "method": "bootstrap"}`. The
    record gets the time and the git user; the card is written and staged, ready for
    `git commit`. Arguments of the wrong type raise EvaluateArgumentError (a TypeError).
    """
    _check_types(name=name, split=split, metrics=metrics, step=step, protocol=protocol,
                 notes=notes)  # fmt: skip
    project = Project.discover(Path(repo) if repo is not None else None, require_dvc=False)
    entry = new_entry(project.root, split, metrics, step=step, protocol=protocol, notes=notes)
    return append(project, name, entry)


def metrics_from_options(split: str, texts: Iterable[str]) -> dict[str, Any]:
    """`-m macro_f1=0.81 -m class_f1.neg=0.7`, relative to `split`, read exactly as
    `add -m SPLIT.METRIC=VALUE` reads its values (the same parser)."""
    split = split_name(split)
    given: dict[str, str] = {}
    for text in texts:
        key, sep, _value = text.partition("=")
        if not sep or not key.strip():
            raise UsageError(
                f"-m {text!r}: expected METRIC=VALUE",
                hint="for example -m macro_f1=0.81 or -m class_f1.neg=0.7 (relative to --split)",
            )
        if key.strip() in given:
            raise UsageError(f"-m {key.strip()}: given twice", hint="give each metric once")
        given[key.strip()] = text.strip()
    if not given:
        raise UsageError("no metrics given", hint="pass at least one, e.g. -m macro_f1=0.81")
    parsed = fragments.metric_assignments(f"{split}.{text}" for text in given.values())
    found: dict[str, Any] = parsed[split]
    return found


def split_name(split: Any) -> str:
    """A split name an evaluation may record (no dot: `evaluations.SPLIT.METRIC`)."""
    if not isinstance(split, str) or not split.strip():
        raise UsageError("no split named", hint="name the split evaluated, e.g. --split test")
    if not SPLIT_NAME.fullmatch(split):
        raise UsageError(
            f"split {_shown(split)} is not a split name",
            hint="use letters, digits, _ and -, starting with a letter or digit, "
            "e.g. --split mnli_mismatched",
        )
    return split


def new_entry(
    root: Path,
    split: str,
    metrics: Mapping[str, Any],
    *,
    step: int | None = None,
    protocol: str | None = None,
    notes: str | None = None,
) -> dict[str, Any]:
    """The evaluation record, checked (names, finite numbers, limits) and redacted."""
    split = split_name(split)
    if not isinstance(metrics, Mapping) or not metrics:
        raise UsageError("no metrics given", hint="pass at least one, e.g. -m macro_f1=0.81")
    _not_wrapped(split, metrics)
    entry: dict[str, Any] = {"split": split, "metrics": _group(metrics, ("metrics",))}
    entry["at"] = capture.now_utc()
    entry["by"] = capture.user(root)
    if step is not None:
        entry["step"] = step
    for key, text in (("protocol", protocol), ("notes", notes)):
        if text is not None:
            entry[key] = redaction.redact_text(_text(text, key))
    problems = limits.problems(entry)
    if problems:
        raise UsageError(f"evaluation: {problems[0]}", hint="record a smaller, finite value")
    return entry


def append(project: Project, reference: str, entry: Mapping[str, Any]) -> Evaluated:
    """Append `entry` to the evaluations of the work-tree card `reference` names."""
    found = _resolve(project, required_reference(reference))
    assert found.path is not None
    relative = project.relative(found.path)
    with card.editing(project.root, found.path, project.config.card_max_bytes) as editable:
        _check_appendable(project, editable, relative)
        index = card.append_entry(editable.document, SECTION, entry)
        _check_schema(editable, relative, index)
    return Evaluated(editable.name, found.path, relative, index, dict(entry))


def _resolve(project: Project, reference: str) -> card.Card:
    try:
        return resolve.in_work_tree(project, reference)
    except StateError:
        if "@" not in reference:
            raise
        raise UsageError(
            f"{_shown(reference)}: an evaluation is appended to a card in the work tree, "
            "not to a revision or a stage",
            hint=f"name the checkpoint itself; `dvcckpt show {reference}` prints its name",
        ) from None


def _check_appendable(project: Project, editable: card.Card, relative: str) -> None:
    """Refuse a retired card, and a card whose work-tree text is not what git has staged:
    writing and staging it would stage edits the user has not chosen to commit."""
    if editable.document.get("tombstone") is not None:
        raise StateError(
            f"{relative}: {editable.name} is retired; its tombstone is final",
            hint="evaluate a live checkpoint (a retired one's data may already be gone)",
        )
    assert editable.path is not None
    staged = git.read_blobs(project.root, [f":{relative}"])[f":{relative}"]
    if staged is None:
        pointer = layout.pointer_for(str(editable.data["checkpoint"]["path"]))
        raise StateError(
            f"{relative} is neither committed nor staged",
            hint=f"stage it with its pointer first: git add -- {relative} {pointer}",
        )
    if staged != editable.path.read_bytes():
        raise StateError(
            f"{relative} has changes that are not staged",
            hint=f"stage them (git add -- {relative}) or undo them "
            f"(git restore -- {relative}); evaluate stages the card, and never your edits",
        )


def _check_schema(editable: card.Card, relative: str, index: int) -> None:
    """The appended record against the card schema (the rest of the card was valid)."""
    problems = schema.card_problems(yamldoc.to_plain(editable.document))
    if problems:
        raise UsageError(
            f"{relative}: {problems[0]}",
            hint=f"fix the evaluation's values (it would be {SECTION}[{index}]); "
            "`dvcckpt schema` describes an evaluation record",
            details=problems[1:],
        )


def _not_wrapped(split: str, metrics: Mapping[str, Any]) -> None:
    """`split=test, metrics={"test": {...}}` would record `test.test.f1`: refused."""
    inner = metrics.get(split)
    if list(metrics) == [split] and isinstance(inner, Mapping) and "value" not in inner:
        raise UsageError(
            f"metrics are relative to the split: {split}.{next(iter(inner), '')} "
            f"would be recorded as {split}.{split}.{next(iter(inner), '')}",
            hint=f"leave out the split: -m METRIC=VALUE with --split {split}",
        )


def _group(group: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """A plain copy of a metric group: names checked, numbers as int/float, estimates kept."""
    if len(path) >= limits.MAX_DEPTH - 3:  # evaluations[i].metrics sits 3 levels down
        raise UsageError(f"{'.'.join(path)}: nested too deeply", hint="flatten the metrics")
    if not group:
        raise UsageError(f"{'.'.join(path)}: an empty group of metrics",
                         hint="give the group a metric, or leave it out")  # fmt: skip
    result: dict[str, Any] = {}
    for key, value in group.items():
        where = (*path, str(key))
        if not isinstance(key, str) or not _metric_name(key):
            raise UsageError(f"{'.'.join(path)}: {_shown(key)} is not a metric name",
                             hint=_METRIC_HINT)  # fmt: skip
        if isinstance(value, Mapping) and "value" in value:
            result[key] = _estimate(value, where)
        elif isinstance(value, Mapping):
            result[key] = _group(value, where)
        else:
            result[key] = _number(value, where)
    return result


def _metric_name(key: str) -> bool:
    return (
        0 < len(key) <= _METRIC_NAME_MAX
        and key[0].isascii()
        and key[0].isalnum()
        and all(ch.isascii() and (ch.isalnum() or ch in "_.-") for ch in key)
    )


def _estimate(value: Mapping[str, Any], where: tuple[str, ...]) -> dict[str, Any]:
    estimate = {str(k): v for k, v in value.items()}
    estimate["value"] = _number(value["value"], (*where, "value"))
    if "ci" in estimate:
        ci = estimate["ci"]
        if isinstance(ci, list | tuple):
            estimate["ci"] = [_number(bound, (*where, "ci")) for bound in ci]
        problem = ci_problem(estimate["value"], estimate["ci"])
        if problem is not None:
            raise UsageError(f"{'.'.join(where)}.ci: {problem}",
                             hint="a CI is [low, high] around the value")  # fmt: skip
    return estimate


def _number(value: Any, where: tuple[str, ...]) -> int | float:
    """A finite number; numpy scalars (numbers.Real) become Python numbers."""
    field = ".".join(where)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UsageError(
            f"{field}: {_shown(value)} is a {type(value).__name__}, not a number",
            hint="metric values are numbers (call .item() on a tensor)",
        )
    number: int | float = int(value) if isinstance(value, numbers.Integral) else float(value)
    if isinstance(number, float) and not math.isfinite(number):
        raise UsageError(
            f"{field}: {value} is not a finite number",
            hint="NaN or infinite metrics usually mean the evaluation failed; record a real value",
        )
    return number


def _text(value: str, key: str) -> str:
    if not value.strip():
        raise UsageError(f"--{key} is empty", hint=f"leave out --{key}, or say something")
    return value


_TYPES: dict[str, tuple[tuple[type, ...], str, bool]] = {
    "name": ((str,), "a checkpoint name or path", False),
    "split": ((str,), "a split name such as 'test'", False),
    "metrics": ((Mapping,), "a mapping of metric -> value", False),
    "step": ((int,), "an integer", True),
    "protocol": ((str,), "a string", True),
    "notes": ((str,), "a string", True),
}


def _check_types(**arguments: Any) -> None:
    for key, value in arguments.items():
        types, expected, optional = _TYPES[key]
        if value is None and optional:
            continue
        if isinstance(value, bool) or not isinstance(value, types):
            raise EvaluateArgumentError(
                f"evaluate(): {key}={_shown(value)} is a {type(value).__name__}, "
                f"expected {expected}",
                hint="for example evaluate('NAME', split='test', metrics={'macro_f1': 0.81})",
            )
    if arguments["step"] is not None and arguments["step"] < 0:
        raise EvaluateArgumentError(f"evaluate(): step={arguments['step']} is negative",
                                    hint="steps count from 0")  # fmt: skip


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"
