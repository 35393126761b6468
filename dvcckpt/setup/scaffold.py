"""`dvcckpt init`: set up a new or existing repository; safe to run again.

Existing files are kept; `.pre-commit-config.yaml` is merged (other hooks are
kept) and only gains the dvcckpt hook if it lacks one, and an existing
CODEOWNERS only gains the policy paths it does not list yet.

With an SSH signing key configured in git (`gpg.format ssh`, `user.signingkey`
naming a key file, `user.email` as the principal), the new `dvcckpt.yaml`
requires signed decisions, names `.dvcckpt/allowed_signers` (created with that
key) and makes `user.email` the owner of every model and stage. Without one it
leaves `require_signed: false` and explains in a comment how to turn it on.

The workflows install exactly the dvcckpt that ran `init`, pinned (`setup.pinning`).
`init` refuses, before writing anything, a target that is a file, a folder inside
another git repository (pre-commit, GitHub and DVC read this set-up only at the
repository root, and a nested repository would hide the checkpoints from the outer
one's history) and a place it cannot write to.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dvcckpt.adapters import atomic, git, signing, yamldoc
from dvcckpt.adapters import dvcrepo as store
from dvcckpt.adapters.paths import repo_relative
from dvcckpt.core import config, resources
from dvcckpt.core.decision import NAMESPACE
from dvcckpt.errors import ConfigError, DvcckptError, StateError, UsageError
from dvcckpt.project import load_config
from dvcckpt.setup import pinning

HOOK_ID = "dvcckpt-check"
PRE_COMMIT_CONFIG = ".pre-commit-config.yaml"
# (template, destination) pairs written when missing.
FILES = (
    ("dvcckpt.yaml", "dvcckpt.yaml"),
    ("gates.yaml", "gates.yaml"),
    ("github/workflows/dvcckpt.yml", ".github/workflows/dvcckpt.yml"),
    ("github/workflows/dvcckpt-comment.yml", ".github/workflows/dvcckpt-comment.yml"),
    ("github/workflows/dvcckpt-publish.yml", ".github/workflows/dvcckpt-publish.yml"),
    ("github/pull_request_template.md", ".github/pull_request_template.md"),
)
# Copied as they are: their scripts use `${...}` of their own.
VERBATIM = {"github/workflows/dvcckpt-comment.yml"}
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


def init(
    directory: Path, project_name: str | None = None, install_source: str | None = None
) -> list[Action]:
    """Set up `directory`; `install_source` pins the dvcckpt the workflows install
    (`dvcckpt==X.Y.Z` or `git+https://HOST/PATH@COMMIT`; default: the running one)."""
    source = pinning.resolve(install_source)
    root = _target(directory)
    _preflight(root)
    root.mkdir(parents=True, exist_ok=True)
    actions = []
    if not (root / ".git").exists():
        git.run_git(root, "init", "--quiet")
        actions.append(Action(".git", "initialised"))
    if not (root / ".dvc").is_dir():
        store.init(root)
        actions.append(Action(".dvc", "initialised"))
    signer = configured_signer(root)
    email = _principal(root)
    fill = {
        "project": project_name or config.default_project_name(root),
        "dvcckpt_requirement": json.dumps(source.requirement),
        "dvcckpt_org_requirement": json.dumps(_with_extra(source.requirement, "org")),
        "dvcckpt_source": source.describes,
        "default_branch": json.dumps(_current_branch(root)),
    }
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
        named = load_config(root).allowed_signers
    except DvcckptError:
        return None
    # Only a file inside the repository: init never writes where a config points outside.
    return named if named and repo_relative(root / named, root) is not None else None


def _target(directory: Path) -> Path:
    """The folder to set up, refused if it is (or lies under) a file or a git directory."""
    try:
        root = Path(directory).expanduser().resolve()
    except (OSError, RuntimeError) as exc:
        raise UsageError(
            f"{directory}: cannot resolve the path ({exc})", hint="check the path"
        ) from None
    existing = _nearest_existing(root)
    if not existing.is_dir():
        raise UsageError(
            f"{existing} is a file, not a folder",
            hint="give `dvcckpt init` a folder to set up (a new one is created)",
        )
    inside = git.run_git(existing, "rev-parse", "--is-inside-git-dir", check=False).strip()
    if inside == "true":
        raise UsageError(f"{root} is inside a .git folder", hint="run it in the work tree")
    top = git.run_git(existing, "rev-parse", "--show-toplevel", check=False).strip()
    if top and Path(top).resolve() != root:
        # A nested repository would hide these checkpoints from the outer one; pre-commit
        # and GitHub read the hook config and workflows at the repository root only.
        raise StateError(
            f"{root} is inside the git repository {top}: `init` sets up a repository root",
            hint=f"run `dvcckpt init {shlex.quote(top)}` to set up that repository",
        )
    return root


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _preflight(root: Path) -> None:
    """Refuse before writing anything if some file `init` creates cannot be written."""
    destinations = [".git", ".dvc", *(d for _, d in FILES), ALLOWED_SIGNERS, CODEOWNERS[0],
                    PRE_COMMIT_CONFIG]  # fmt: skip
    for destination in destinations:
        target = root / destination
        if target.exists():
            continue
        folder = _nearest_existing(target.parent)
        if not folder.is_dir():
            raise StateError(
                f"cannot create {target}: {folder} is a file",
                hint=f"move {folder} aside, then re-run `dvcckpt init`",
            )
        if not os.access(folder, os.W_OK | os.X_OK):
            raise StateError(
                f"cannot create {target}: {folder} is not writable",
                hint=f"make {folder} writable (chmod u+w), then re-run `dvcckpt init`",
            )


def _with_extra(requirement: str, extra: str) -> str:
    """`dvcckpt==X` -> `dvcckpt[extra]==X` (the same pin, with an optional extra)."""
    name = "dvcckpt"
    return f"{name}[{extra}]{requirement.removeprefix(name)}"


def _current_branch(root: Path) -> str:
    """The branch the repository is on (the one publishing follows), else `main`."""
    branch = git.run_git(root, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    return branch.strip() or "main"


def _write_missing(
    root: Path, template: str, destination: str, fill: dict[str, str], extra: str = ""
) -> Action:
    target = root / destination
    if target.exists():
        return Action(destination, "kept")
    text = resources.template_path(template).read_text(encoding="utf-8")
    if template not in VERBATIM:
        text = string.Template(text).safe_substitute(fill)
    _write_new(target, text + extra)
    return Action(destination, "created")


def _write_new(target: Path, text: str) -> None:
    """A whole new file or none (atomic), its folders created."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(
            f"cannot create {target.parent}: {exc.strerror or exc}",
            hint="check the folder's permissions, then re-run `dvcckpt init`",
        ) from exc
    atomic.write_text(target, text)


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
        _write_new(target, body)
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
        _write_new(target, yamldoc.dump(ours))
        return Action(PRE_COMMIT_CONFIG, "created")
    existing: Any = yamldoc.read_file(target)  # refuses FIFOs, huge and non-UTF-8 files
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
