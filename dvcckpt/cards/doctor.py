"""`dvcckpt doctor`: which recommended fields each card is missing, and risky remotes.

The list follows practitioners' self-check: seeds, split hashes, per-class
metrics, environment, the config file, latency, code version, diagnostics.
DVC remotes are checked too: plain http to another host, no server-side
encryption, credentials in the committed `.dvc/config`. So are promotions that
count unsigned decisions (`promotion.require_signed` off, or no allowed signers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dvcckpt.cards import card, resolve
from dvcckpt.core.fields import field, is_empty
from dvcckpt.errors import CardError, DvcckptError
from dvcckpt.project import Project


def _has(dotted: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda data: not is_empty(field(data, dotted))


def _per_class(data: Mapping[str, Any]) -> bool:
    return any(
        isinstance(value, Mapping) and "value" not in value
        for split in (data.get("metrics") or {}).values()
        for value in split.values()
    )


def _libraries(data: Mapping[str, Any]) -> bool:
    return bool(field(data, "env.libraries"))


RECOMMENDED: dict[str, tuple[Callable[[Mapping[str, Any]], bool], str]] = {
    "seeds.seed": (_has("seeds.seed"), "log the seed: --seed 42"),
    "data.splits": (_has("data.splits"), "log split hashes: --split train=data/train.csv"),
    "metrics.<split>.<per-class>": (_per_class, "log per-class metrics: -m dev.class_f1.neg=0.8"),
    "env.libraries": (_libraries, "register from the training environment"),
    "code.commit": (_has("code.commit"), "commit the code before training"),
    "code.config_file": (_has("code.config_file"), "record the config: --config params.yaml"),
    "resources.latency_ms_p95": (_has("resources.latency_ms_p95"), "measure p95 latency"),
    "artifacts": (_has("artifacts"), "attach diagnostics: --artifact confusion_matrix.png"),
}


@dataclass(frozen=True)
class Diagnosis:
    card: str
    name: str
    missing: list[str]
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"card": self.card, "name": self.name, "missing": self.missing, "error": self.error}


def diagnose(project: Project) -> list[Diagnosis]:
    results = []
    for path in resolve.card_files(project):
        relative = project.relative(path)
        try:
            data = card.read(path, project.config.card_max_bytes).data
        except CardError as exc:
            results.append(Diagnosis(relative, "?", [], exc.message))
            continue
        if data.get("tombstone"):
            continue
        missing = [name for name, (present, _) in RECOMMENDED.items() if not present(data)]
        results.append(Diagnosis(relative, data["name"], missing))
    return results + _remotes(project) + _signing(project)


def _remotes(project: Project) -> list[Diagnosis]:
    """One entry per remote with warnings, after the cards (keys in remotes.REMOTE_FIXES)."""
    from dvcckpt.storage import remotes

    try:
        warnings = remotes.remote_warnings(project.dvc_root)
    except DvcckptError as exc:
        return [Diagnosis(".dvc/config", "remotes", [], exc.message)]
    by_remote: dict[str, list[str]] = {}
    for warning in warnings:
        by_remote.setdefault(warning.remote, []).append(warning.key)
    return [Diagnosis(".dvc/config", f"remote {name}", keys) for name, keys in by_remote.items()]


SIGNING_FIXES = {
    "promotion.require_signed": "count only SSH-signed decisions: git config gpg.format ssh, "
    "git config user.signingkey KEY, list the key in promotion.allowed_signers and set "
    "promotion.require_signed: true (README, Trust model)",
    "promotion.allowed_signers": "commit an allowed-signers file, e.g. promotion.allowed_signers: "
    '.dvcckpt/allowed_signers with lines PRINCIPAL namespaces="dvcckpt" KEYTYPE BASE64',
}


def _signing(project: Project) -> list[Diagnosis]:
    """A warning when decisions may count unsigned, or signed ones cannot verify."""
    config = project.config
    if not config.require_signed:
        return [Diagnosis("dvcckpt.yaml", "promotion signing", ["promotion.require_signed"])]
    signers = project.root / config.allowed_signers if config.allowed_signers else None
    text = (
        signers.read_text(encoding="utf-8", errors="replace")
        if signers and signers.is_file()
        else ""
    )
    if not any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
        return [Diagnosis("dvcckpt.yaml", "promotion signing", ["promotion.allowed_signers"])]
    return []


def fix_for(field_name: str) -> str:
    if field_name.startswith("promotion."):
        return SIGNING_FIXES[field_name]
    if field_name.startswith("remote."):
        from dvcckpt.storage.remotes import REMOTE_FIXES

        return REMOTE_FIXES[field_name]
    return RECOMMENDED[field_name][1]
