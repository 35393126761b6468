"""Which dvcckpt the generated workflow installs: exactly the one that wrote it, pinned.

A workflow that runs `pip install dvcckpt` installs whatever the index serves under
that name at the time, so anyone who registers the name runs code in every
repository. `dvcckpt init` therefore writes one pinned requirement, from a
configurable source:

- a version on the package index: `dvcckpt==0.1.0`;
- a git repository at a full commit: `git+https://github.com/ORG/dvcckpt@<40 hex>`.

Without an explicit source, the running installation decides: installed from git
at a commit (PEP 610 `direct_url.json`), that URL at that commit; otherwise its
version on the index.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from dvcckpt.core.redaction import redact_text
from dvcckpt.errors import StateError, UsageError

DISTRIBUTION = "dvcckpt"
# PEP 440 public versions (no local `+label`: the index never serves those).
_VERSION = r"[0-9]+(?:\.[0-9]+)*(?:(?:a|b|rc)[0-9]+)?(?:\.post[0-9]+)?(?:\.dev[0-9]+)?"
_INDEX = re.compile(rf"(?:dvcckpt\s*==\s*)?(?P<version>{_VERSION})\Z")
# https only, no user info (a token in the workflow would be public), a full commit id.
_GIT = re.compile(
    r"(?:dvcckpt\s*@\s*)?git\+(?P<url>https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?"
    r"(?:/[A-Za-z0-9._~-]+)+?)@(?P<commit>[0-9a-f]{40})\Z"
)
HINT = (
    "give dvcckpt==X.Y.Z (a version on the package index) or "
    "git+https://HOST/PATH@COMMIT (a full 40-character commit id)"
)


@dataclass(frozen=True)
class InstallSource:
    """One pinned requirement, as pip takes it and as the workflow shows it."""

    requirement: str  # `dvcckpt==0.1.0` or `dvcckpt @ git+https://...@<sha>`
    describes: str  # for the workflow's comment: "dvcckpt 0.1.0 from the package index"


def parse(text: str) -> InstallSource:
    """An explicit source (`--install-source`); anything not exactly pinned is refused."""
    given = text.strip()
    if found := _INDEX.match(given):
        version = found.group("version")
        return InstallSource(f"{DISTRIBUTION}=={version}", f"dvcckpt {version} from the index")
    if found := _GIT.match(given):
        url, commit = found.group("url"), found.group("commit")
        return InstallSource(
            f"{DISTRIBUTION} @ git+{url}@{commit}", f"dvcckpt from {url} at commit {commit}"
        )
    raise UsageError(f"install source {redact_text(text)!r}: not a pinned dvcckpt", hint=HINT)


def running() -> InstallSource:
    """The source of the dvcckpt running now (see the module docstring)."""
    from importlib import metadata

    try:
        installed = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise StateError(
            "cannot tell which dvcckpt is running (no installed package metadata)",
            hint=f"pass the source the workflow installs: {HINT}",
        ) from None
    try:
        origin = installed.read_text("direct_url.json")
        recorded = json.loads(origin) if origin else {}
    except (ValueError, OSError):
        recorded = {}
    vcs = recorded.get("vcs_info") if isinstance(recorded, dict) else None
    if isinstance(vcs, dict) and vcs.get("vcs") == "git":
        try:
            return parse(f"git+{recorded.get('url')}@{vcs.get('commit_id')}")
        except UsageError:
            pass  # not https, or not a full commit id: the index version below
    return parse(installed.version)


def resolve(text: str | None) -> InstallSource:
    return running() if text is None else parse(text)
