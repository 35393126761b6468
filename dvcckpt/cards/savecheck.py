"""Save-time validation: `add` and `save()` refuse what the pre-commit hook would refuse.

Before anything is cached, written or staged, the card as it will be (content hashes
still placeholders) goes through the hook's own card rules (`core.policy`, in the
order `cards/check.py` applies them) and the unique-name rule, so a registration
never ends with a card that `git commit` then rejects. A refusal is a CardError
(exit 3) listing each finding as the hook prints it, with a hint saying how to give
each missing field. `--draft` writes a card that only lacks required fields on
purpose; the caller is told which fields the commit still needs.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from typing import Any

from dvcckpt.cards import names
from dvcckpt.core import naming, policy
from dvcckpt.core.config import ProjectConfig
from dvcckpt.core.policy import Finding
from dvcckpt.errors import CardError
from dvcckpt.project import Project

# How a missing field is given: (`dvcckpt add` option, `dvcckpt.save` argument), by the
# longest matching dotted prefix of the field.
_SUPPLY: dict[str, tuple[str, str]] = {
    "seeds": ("--seed 42", "seeds=42"),
    "data.splits": ("--split test=PATH", 'data={"splits": {"test": PATH}}'),
    "data": ("--data NAME=VERSION", 'data={"dataset": NAME, "version": VERSION}'),
    "code.commit": ("commit the training code first (git commit)", "the same"),
    "code.config_file": ("--config FILE", "config_file=FILE"),
    "code": ("--script FILE / --command TEXT", "run from the training script"),
    "run.name": ("--run NAME", "run=NAME"),
    "run.id": ("--run-id ID", 'run={"id": ID}'),
    "run": ("--task / --group / --owner / --hypothesis", 'run={"task": ...}'),
    "metrics": ("-m SPLIT.METRIC=VALUE", 'metrics={"dev": {"f1": 0.8}}'),
    "params": ("-p KEY=VALUE", 'params={"lr": 1e-4}'),
    "resources": ("-r KEY=VALUE", 'resources={"gpu_hours": 2}'),
    "checkpoint.step": ("--step N", "step=N"),
    "checkpoint.epoch": ("--epoch N", "epoch=N"),
    "tags": ("--tag TAG", 'tags=["baseline"]'),
    "notes": ("--notes TEXT", "notes=TEXT"),
    "parents": ("--parent RELATION=NAME", 'parents=["finetuned_from=NAME"]'),
    "artifacts": ("--artifact PATH", "artifacts=[PATH]"),
    "env": ("register from the training environment, or --from RUN.json with env", "the same"),
    "training": ("--from RUN.json with a training section", "training={...}"),
}
DRAFT_HINT = "or pass --draft (save(..., draft=True)) to write the incomplete card anyway"


def check(project: Project, file: str, card: Mapping[str, Any], *, draft: bool) -> list[Finding]:
    """Refuse (CardError) a card the hook would refuse; returns the required fields a
    `draft` lacks (empty otherwise). `file` is the card's repository path."""
    config = project.config
    found = policy.schema_findings(file, card)
    if found:
        raise refusal(file, found)  # later rules assume a schema-valid card
    found = policy.location_findings(file, card) + policy.naming_findings(file, card, config)
    found += policy.interval_findings(file, None, card)  # from -m, --metrics files, save()
    found += names.taken_name_findings(project, file, str(card["name"]))
    missing = policy.required_findings(file, card, config)
    if found or (missing and not draft):
        run_ids = "run_id" in naming.placeholders(config.checkpoint_pattern)
        raise refusal(file, found + missing, run_ids=run_ids)
    return missing


def still_missing(project: Project, file: str, card: Mapping[str, Any]) -> list[Finding]:
    """Required fields the finished card lacks (what was captured after `check`)."""
    return policy.required_findings(file, card, project.config)


def refusal(file: str, findings: list[Finding], *, run_ids: bool = True) -> CardError:
    """The hook's findings as one error: a summary, each finding on its own line, a hint
    (`run_ids`: whether the checkpoint pattern has `{run_id}`, which tells runs apart)."""
    lines = [str(finding) for finding in findings]
    error = CardError(
        f"{file}: the pre-commit check would refuse this card ({len(lines)} problem(s)); "
        "nothing was written",
        hint=_hint(findings, run_ids),
        problems=lines,
    )
    error.details = lines  # every finding, the first included, on its own line
    return error


def _hint(findings: list[Finding], run_ids: bool) -> str:
    missing = [f.field for f in findings if _is_missing(f)]
    others = [f for f in findings if not _is_missing(f)]
    taken = any("already used by" in f.message for f in others)
    misnamed = any(f.field in ("name", "run.name") for f in others) and not taken
    parts = []
    if missing:
        parts.append("give " + "; ".join(f"{field} with {supply(field)}" for field in missing))
    if taken and run_ids:
        parts.append("choose another --name, or a new --run-id for a new run")
    elif taken:  # the pattern cannot tell two runs apart
        parts.append(
            "choose another --name, or put {run_id} in naming.checkpoint of dvcckpt.yaml "
            "so that two runs never collide"
        )
    if misnamed:
        parts.append("leave --name/--run out to follow the naming pattern in dvcckpt.yaml")
    if any(f.field not in ("name", "run.name") for f in others):
        parts.append("fix the fields listed; `dvcckpt schema` prints the card schema")
    if missing and not others:
        parts.append(DRAFT_HINT)
    return "; ".join(parts)


def _is_missing(finding: Finding) -> bool:
    return finding.message.startswith("is missing (")


def supply(field: str) -> str:
    """How to give `field`: `--split test=PATH` for data.splits.test, and so on."""
    head, _, rest = field.partition(".")
    if field.startswith("data.splits.") and field.count(".") == 2:
        split = field.split(".")[2]
        return f"--split {split}=PATH (save: data={{'splits': {{'{split}': PATH}}}})"
    if head == "seeds" and rest and rest != "seed":
        return f"--seed {rest}=N (save: seeds={{'{rest}': N}})"
    if head in ("metrics", "params", "resources") and rest:
        option = {"metrics": "-m", "params": "-p", "resources": "-r"}[head]
        return f"{option} {rest}=VALUE (save: {head}={{...}})"
    key = max((k for k in _SUPPLY if field == k or field.startswith(k + ".")), key=len, default="")
    if not key:
        return "the matching option of `dvcckpt add --help`"
    option, argument = _SUPPLY[key]
    return option if argument == "the same" else f"{option} (save: {argument})"


def draft_warning(file: str, missing: list[Finding]) -> str:
    """The one `warning:` line of a draft: what the commit will still need."""
    fields = [f.field for f in missing]
    verb = "is" if len(fields) == 1 else "are"
    how = "; ".join(f"{field}: {supply(field)}" for field in fields)
    return (
        f"warning: {file} is a draft: `git commit` will refuse it until "
        f"{', '.join(fields)} {verb} given ({how})"
    )


def needs_environment(config: ProjectConfig, phase: str) -> bool:
    """Whether a required field is one of `env`'s that only the full capture knows."""
    wanted = [*config.required_all, *config.required_phases.get(phase, ())]
    return any(f == "env" or (f.startswith("env.") and f != "env.python") for f in wanted)


def environment_placeholder() -> dict[str, Any]:
    """What the environment capture always records, known without running it."""
    return {"python": platform.python_version()}
