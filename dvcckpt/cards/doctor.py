"""`dvcckpt doctor`: which recommended fields each card is missing, and risky remotes.

The list follows practitioners' self-check: seeds, split hashes, per-class
metrics, environment, the config file, latency, code version, diagnostics.
DVC remotes are checked too: plain http to another host, no server-side
encryption, and credentials in the committed `.dvc/config`: every credential
option of DVC's remote schema (`redaction.DVC_CREDENTIAL_OPTIONS`) and any
credential inside a setting's value (`https://user:PW@...`, a token). So are
promotions that count unsigned decisions (`promotion.require_signed` off, or no
allowed signers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dvcckpt.cards import card, resolve
from dvcckpt.core import redaction
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
    settings: tuple[str, ...] = ()  # for remotes: the committed settings holding credentials

    def as_dict(self) -> dict[str, Any]:
        shown = {"card": self.card, "name": self.name, "missing": self.missing, "error": self.error}
        return {**shown, "settings": list(self.settings)} if self.settings else shown


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
    return results + _history(project) + _remotes(project) + _signing(project)


def _history(project: Project) -> list[Diagnosis]:
    """Card versions in history the catalog cannot index (committed past the hook)."""
    try:
        problems = project.catalog.index_problems()
    except DvcckptError as exc:
        return [Diagnosis("catalog", "history", [], exc.message)]
    return [
        Diagnosis(
            p.path,
            f"@{p.commit[:10]}",
            [],
            f"in commit {p.commit[:10]}: {p.message} (the catalog skips this version; "
            "see `dvcckpt catalog status`)",
        )
        for p in problems
    ]


def _remotes(project: Project) -> list[Diagnosis]:
    """One entry per remote (or other DVC section) with warnings, after the cards."""
    from dvcckpt.adapters import dvcsecrets
    from dvcckpt.storage import remotes

    if not (project.dvc_root / ".dvc").is_dir():
        return []
    try:
        warnings = remotes.remote_warnings(project.dvc_root)
        committed = dvcsecrets.committed_config(project.dvc_root)
    except DvcckptError as exc:
        return [Diagnosis(".dvc/config", "remotes", [], exc.message)]
    by_section: dict[str, list[str]] = {}
    for warning in warnings:
        if warning.key != "remote.credentials":  # checked below, over every option
            by_section.setdefault(f"remote {warning.remote}", []).append(warning.key)
    found: dict[str, tuple[str, ...]] = {}
    for section, settings in _sections(committed):
        options, embedded = committed_credentials(settings)
        keys = by_section.setdefault(section, [])
        if options:
            keys.append("remote.credentials")
        if embedded:
            keys.append("remote.url_credentials")
        found[section] = options + embedded
    return [
        Diagnosis(".dvc/config", section, keys, settings=found.get(section, ()))
        for section, keys in by_section.items()
        if keys
    ]


def _sections(config: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(`remote NAME` / `db NAME` / `studio`..., settings) for every section of the config."""
    sections: list[tuple[str, Mapping[str, Any]]] = []
    for name, section in config.items():
        if not isinstance(section, Mapping):
            continue
        named = [(f"{name} {key}", value) for key, value in section.items()
                 if isinstance(value, Mapping)]  # fmt: skip
        sections.extend(named or [(str(name), section)])
    return sections


def committed_credentials(settings: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(credential options, settings with a credential inside their value) of one section."""
    options = tuple(sorted(
        key for key, value in settings.items()
        if key in redaction.DVC_CREDENTIAL_OPTIONS and value not in (None, "")
    ))  # fmt: skip
    embedded = tuple(sorted(
        key for key, value in settings.items()
        if key not in options and isinstance(value, str) and redaction.has_secret(value)
    ))  # fmt: skip
    return options, embedded


CREDENTIAL_FIXES = {
    "remote.credentials": "move credentials out of the committed .dvc/config: "
    "dvc remote modify --local NAME OPTION VALUE for each setting listed (doctor --json; "
    "other sections: dvc config --local SECTION.OPTION VALUE), then delete them from "
    ".dvc/config and rotate them if they were ever pushed",
    "remote.url_credentials": "remove the user:password@ (or token) from the URL in "
    ".dvc/config; give it with dvc remote modify --local NAME user/password VALUE "
    "(or the remote's credential options) and rotate it if it was ever pushed",
}


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
    if field_name in CREDENTIAL_FIXES:
        return CREDENTIAL_FIXES[field_name]
    if field_name.startswith("remote."):
        from dvcckpt.storage.remotes import REMOTE_FIXES

        return REMOTE_FIXES[field_name]
    return RECOMMENDED[field_name][1]
