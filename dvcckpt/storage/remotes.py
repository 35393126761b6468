"""Remotes: adding one with safe defaults, and warnings about risky settings (for `doctor`).

Credentials always go to the git-ignored `.dvc/config.local`; plain http to
another host, unencrypted S3 buckets and committed credentials are reported.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from dvcckpt.adapters import dvcconfig, dvcrepo
from dvcckpt.errors import UsageError
from dvcckpt.project import Project


def add_remote(
    project: Project,
    name: str,
    url: str,
    *,
    endpoint: str | None = None,
    default: bool = False,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    sse: str | None = None,
    version_aware: bool = False,
    force: bool = False,
) -> dvcconfig.RemoteConfig:
    """Configure a remote; credentials go to the git-ignored `.dvc/config.local`."""
    s3_only = {"--endpoint": endpoint, "--sse": sse, "--access-key-id": access_key_id,
               "--version-aware": version_aware or None}  # fmt: skip
    for option, address in (("URL", url), ("--endpoint", endpoint or "")):
        if dvcconfig.embedded_credentials(address):
            raise UsageError(
                f"{option} {dvcconfig.redact_url(address)} has credentials embedded in it "
                "(they would be committed in .dvc/config)",
                hint=f"remove them from the URL; give them with --access-key-id (S3), "
                f"`dvc remote modify --local {name} user/password ...`, or the remote's "
                "environment variables (AWS_ACCESS_KEY_ID, ...)",
            )
    given = [option for option, value in s3_only.items() if value]
    if given and not url.startswith("s3://"):
        raise UsageError(f"{', '.join(given)} apply to s3:// remotes only", hint=f"got {url}")
    if endpoint and urlparse(endpoint).scheme not in ("http", "https"):
        raise UsageError(f"--endpoint {endpoint}: not an http(s) URL",
                         hint="e.g. --endpoint https://s3.example.com")  # fmt: skip
    if bool(access_key_id) != bool(secret_access_key):
        raise UsageError("--access-key-id and --secret-access-key go together",
                         hint="give both, or neither to use AWS_* variables or a profile")  # fmt: skip
    settings: dict[str, Any] = {"url": url}
    if endpoint:
        settings["endpointurl"] = endpoint
    if sse:
        settings["sse"] = sse
    if version_aware:
        settings["version_aware"] = True
    secrets = {"access_key_id": access_key_id, "secret_access_key": secret_access_key}
    dvcrepo.set_remote(project.dvc_root, name, settings,
                     {k: v for k, v in secrets.items() if v}, default=default, force=force)  # fmt: skip
    return dvcrepo.remote_settings(project.dvc_root).remotes[name]


@dataclass(frozen=True)
class RemoteWarning:
    remote: str
    key: str  # remote.https | remote.sse | remote.credentials
    message: str


REMOTE_FIXES = {
    "remote.https": "use an https:// endpoint: plain http sends data and request signatures "
    "in clear text (dvcckpt remote add NAME URL --endpoint https://... --force)",
    "remote.sse": "encrypt objects at rest: dvc remote modify NAME sse AES256 "
    "(or sse_kms_key_id KEY)",
    "remote.credentials": "move credentials out of the committed .dvc/config: "
    "dvc remote modify --local NAME access_key_id ... (and remove them from .dvc/config)",
}


def remote_warnings(dvc_root: Path) -> list[RemoteWarning]:
    """Plain http to another host, no server-side encryption, committed credentials."""
    if not (dvc_root / ".dvc").is_dir():
        return []
    found = []
    for remote in dvcrepo.remote_settings(dvc_root).remotes.values():
        for address in (remote.url, remote.endpoint or ""):
            parsed = urlparse(address)
            if parsed.scheme == "http" and not _loopback(parsed.hostname or ""):
                found.append(RemoteWarning(remote.name, "remote.https",
                                           f"plain http to {parsed.hostname}"))  # fmt: skip
        encrypted = {"sse", "sse_kms_key_id", "sse_customer_key"} & set(remote.settings)
        if remote.url.startswith("s3://") and not encrypted:
            found.append(RemoteWarning(remote.name, "remote.sse", "no server-side encryption"))
        if any(remote.levels.get(k) == "repo" for k in dvcconfig.CREDENTIAL_KEYS):
            found.append(RemoteWarning(remote.name, "remote.credentials",
                                       "credentials in the committed .dvc/config"))  # fmt: skip
    return found


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
