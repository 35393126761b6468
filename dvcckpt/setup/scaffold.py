"""`dvcckpt init`: set up a new or existing repository; safe to run again.

Existing files are kept; `.pre-commit-config.yaml` is merged (other hooks are
kept) and only gains the dvcckpt hook if it lacks one, and an existing
CODEOWNERS only gains the policy paths it does not list yet.

With an SSH signing key configured in git (`gpg.format ssh`, `user.signingkey`
naming a key file, `user.email` as the principal), the new `dvcckpt.yaml`
requires signed decisions, names `.dvcckpt/allowed_signers` (created with that
key) and makes `user.email` the owner of every model and stage. Without one it
leaves `require_signed: false` and explains in a comment how to turn it on.
"""

from __future__ import annotations

import json
import posixpath
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dvcckpt.adapters import atomic, git, signing, yamldoc
from dvcckpt.adapters import dvcrepo as store
from dvcckpt.core import config, resources
from dvcckpt.core.decision import NAMESPACE
from dvcckpt.errors import ConfigError, DvcckptError, StateError
from dvcckpt.project import load_config

HOOK_ID = "dvcckpt-check"
PRE_COMMIT_CONFIG = ".pre-commit-config.yaml"
# (template, destination) pairs written when missing.
FILES = (
    ("dvcckpt.yaml", "dvcckpt.yaml"),
    ("gates.yaml", "gates.yaml"),
    ("github/workflows/dvcckpt.yml", ".github/workflows/dvcckpt.yml"),
    ("github/pull_request_template.md", ".github/pull_request_template.md"),
)
ALLOWED_SIGNERS = ".dvcckpt/allowed_signers"
# Where GitHub looks for CODEOWNERS, in its order: the first one found is the one used.
CODEOWNERS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")
# A principal init writes into allowed-signers and YAML as is: no spaces, quotes, commas
# (principal lists) or wildcards (patterns).
_PRINCIPAL = re.compile(r"^[^\s,\"'#*?!\\]+$")
_GITHUB_HANDLE = re.compile(r"^@?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:/[A-Za-z0-9._-]+)?$")

# Appended to the dvcckpt.yaml template, which ends inside its `promotion:` section (the
# template stays valid YAML on its own: quickstart renders it too).
SIGNED = """\
  # Decisions (promote, reject, archive) count only when signed with an SSH key listed in
  # the allowed-signers file as it is on the base of the change (README, "Trust model").
  # Add a key with a line: PRINCIPAL namespaces="dvcckpt" KEYTYPE BASE64
  require_signed: true
  allowed_signers: $signers

# Who may decide which model at which stage (principals from the allowed-signers file).
owners:
  - model: "*"
    stage: "*"
    principals: [$principal]
"""
UNSIGNED = """\
  # Unsigned decisions count while require_signed is false (git had no SSH signing key
  # when `dvcckpt init` ran). To require signed decisions (README, "Trust model"):
  #   ssh-keygen -t ed25519 -C $email -f ~/.ssh/dvcckpt
  #   git config gpg.format ssh && git config user.signingkey ~/.ssh/dvcckpt
  #   add `$email namespaces="dvcckpt" KEYTYPE BASE64` (KEYTYPE BASE64: the first
  #   two fields of ~/.ssh/dvcckpt.pub) to $signers,
  # then uncomment allowed_signers and owners, set require_signed: true and commit.
  require_signed: false
  # allowed_signers: $signers

# Who may decide which model at which stage (principals from the allowed-signers file).
# owners:
#   - model: "*"
#     stage: "*"
#     principals: [$principal]
"""


@dataclass(frozen=True)
class Signer:
    """Who signs on this machine: git's `user.email` and the public half of its SSH key."""

    principal: str
    public_key: str  # KEYTYPE BASE64

    @property
    def line(self) -> str:
        return f'{self.principal} namespaces="{NAMESPACE}" {self.public_key}'


@dataclass(frozen=True)
class Action:
    path: str
    what: str  # created, kept, merged, initialised

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "action": self.what}


def init(directory: Path, project_name: str | None = None) -> list[Action]:
    root = directory.resolve()
    root.mkdir(parents=True, exist_ok=True)
    actions = []
    if not (root / ".git").exists():
        git.run_git(root, "init", "--quiet")
        actions.append(Action(".git", "initialised"))
    elif git.toplevel(root) != root:
        raise StateError(
            f"{root} is inside the git repository {git.toplevel(root)}",
            hint="run `dvcckpt init` at the repository root",
        )
    if not (root / ".dvc").is_dir():
        store.init(root)
        actions.append(Action(".dvc", "initialised"))
    signer = configured_signer(root)
    email = _principal(root)
    fill = {"project": project_name or config.default_project_name(root)}
    signing_settings = string.Template(SIGNED if signer else UNSIGNED).substitute(
        signers=ALLOWED_SIGNERS,
        principal=json.dumps(email or "YOU@EXAMPLE.COM"),
        email=email or "YOU@EXAMPLE.COM",
    )
    for template, destination in FILES:
        extra = signing_settings if destination == config.CONFIG_FILE else ""
        actions.append(_write_missing(root, template, destination, fill, extra))
    signers = _signers_path(root)
    if signers is not None and (signer is not None or (root / signers).exists()):
        line = signer.line if signer else ""
        actions.append(_write_missing(root, "allowed_signers", signers, {"line": line}))
    actions.append(_merge_codeowners(root, signers or ALLOWED_SIGNERS, email))
    actions.append(_merge_pre_commit(root))
    return actions


def configured_signer(root: Path) -> Signer | None:
    """The SSH key git signs with here, and its principal; None if either is missing."""
    principal = _principal(root)
    try:
        key = signing.signing_key(root)
        return Signer(principal, signing.public_key(key)) if key and principal else None
    except DvcckptError:  # a configured key that is missing or unreadable: sign nothing
        return None


def _principal(root: Path) -> str | None:
    email = git.config_value(root, "user.email")
    return email if email and _PRINCIPAL.match(email) else None


def _signers_path(root: Path) -> str | None:
    """The allowed-signers file `dvcckpt.yaml` names (None: none, or the file is invalid)."""
    try:
        return load_config(root).allowed_signers
    except DvcckptError:
        return None


def _write_missing(
    root: Path, template: str, destination: str, fill: dict[str, str], extra: str = ""
) -> Action:
    target = root / destination
    if target.exists():
        return Action(destination, "kept")
    text = resources.template_path(template).read_text(encoding="utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(string.Template(text).safe_substitute(fill) + extra, encoding="utf-8")
    return Action(destination, "created")


def _merge_codeowners(root: Path, signers: str, email: str | None) -> Action:
    """CODEOWNERS lines for the policy paths; an existing file gains only the missing ones."""
    existing = next((name for name in CODEOWNERS if (root / name).is_file()), None)
    destination = existing or CODEOWNERS[0]
    handle = git.config_value(root, "github.user")
    if handle and _GITHUB_HANDLE.match(handle):
        owner, note = "@" + handle.removeprefix("@"), ""
    else:
        owner = "@OWNER"
        who = f", e.g. the account of {email}" if email else ""
        note = (
            "# Replace @OWNER with the GitHub user or team (@org/team) that decides promotions"
            f"{who}\n# (`git config github.user NAME` before `dvcckpt init` fills it in).\n"
        )
    paths = ["dvcckpt.yaml", "gates.yaml", signers, ".dvc/config", ".github/workflows/",
             destination]  # fmt: skip
    rules = {_pattern(path): f"{_pattern(path)} {owner}" for path in paths}
    target = root / destination
    if existing is None:
        text = resources.template_path("CODEOWNERS").read_text(encoding="utf-8")
        body = string.Template(text).substitute(note=note, rules="\n".join(rules.values()))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
        return Action(destination, "created")
    current = target.read_text(encoding="utf-8", errors="replace")
    listed = {_anchored(line.split()[0]) for line in current.splitlines()
              if line.strip() and not line.lstrip().startswith("#")}  # fmt: skip
    missing = [rule for pattern, rule in rules.items() if pattern not in listed]
    if not missing:
        return Action(destination, "kept")
    lines = ["", "# dvcckpt promotion policy (written by `dvcckpt init`)", *note.splitlines()]
    atomic.write_text(target, current.rstrip("\n") + "\n" + "\n".join(lines + missing) + "\n")
    return Action(destination, "merged")


def _pattern(path: str) -> str:
    """A CODEOWNERS pattern for one repository path: anchored at the root, spaces escaped."""
    escaped = re.sub(r"([ #\\])", r"\\\1", posixpath.normpath(path).strip("/"))
    return "/" + escaped + ("/" if path.endswith("/") else "")


def _anchored(pattern: str) -> str:
    """`gates.yaml` and `/gates.yaml` both cover the root file: compare them anchored."""
    return pattern if pattern.startswith("/") else "/" + pattern


def _merge_pre_commit(root: Path) -> Action:
    target = root / PRE_COMMIT_CONFIG
    ours = yamldoc.load_untrusted(
        resources.template_path("pre-commit-config.yaml").read_text(encoding="utf-8"), "template"
    )
    if not target.exists():
        target.write_text(yamldoc.dump(ours), encoding="utf-8")
        return Action(PRE_COMMIT_CONFIG, "created")
    existing: Any = yamldoc.load_untrusted(target.read_text(encoding="utf-8"), str(target))
    if existing is None:
        existing = {}
    if not isinstance(existing, dict) or not isinstance(existing.setdefault("repos", []), list):
        raise ConfigError(
            f"{target}: expected a mapping with a `repos` list",
            hint="fix the file, or move it aside and re-run `dvcckpt init`",
        )
    hooks = [
        h.get("id") for r in existing["repos"] if isinstance(r, dict) for h in r.get("hooks", [])
    ]
    if HOOK_ID in hooks:
        return Action(PRE_COMMIT_CONFIG, "kept")
    existing["repos"].extend(ours["repos"])
    atomic.write_text(target, yamldoc.dump(existing))
    return Action(PRE_COMMIT_CONFIG, "merged")
