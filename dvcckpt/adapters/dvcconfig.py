"""DVC remotes as configured: settings merged over DVC's config levels, as plain data.

`dvcrepo.remote_settings` loads each level through `dvc.config` and merges them
here; choosing the remote a transfer uses and naming it in messages need only
the merged data. Credentials live in `.dvc/config.local` and are masked when shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dvcckpt.core import redaction
from dvcckpt.errors import ConfigError

# Every DVC remote option that holds a secret: the redactor's list, derived from DVC's
# remote schema (kept in `.dvc/config.local` and masked whenever shown).
CREDENTIAL_KEYS = tuple(sorted(redaction.DVC_CREDENTIAL_OPTIONS))


_USER_SCHEMES = ("ssh", "sftp", "hdfs", "webhdfs")  # a bare user name there is no secret


def embedded_credentials(url: str) -> str | None:
    """The secret `user:password@` (or token `@`) part of a URL, any scheme, if any.

    A bare user name in an SSH-like URL (`ssh://git@host/...`) is not a secret.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        return None
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    found = authority.rpartition("@")[0]
    if not found or (":" not in found and scheme.lower() in _USER_SCHEMES):
        return None
    return found


def redact_url(url: str) -> str:
    """The URL with embedded credentials replaced by `***`."""
    found = embedded_credentials(url)
    return url.replace(f"{found}@", "***@", 1) if found else url


@dataclass(frozen=True)
class RemoteConfig:
    """One remote as DVC sees it, and at which config level each setting lives."""

    name: str
    url: str
    settings: dict[str, Any]
    levels: dict[str, str] = field(default_factory=dict)  # setting -> repo|local|global|system

    @property
    def endpoint(self) -> str | None:
        value = self.settings.get("endpointurl")
        return str(value) if value else None

    @property
    def version_aware(self) -> bool:
        return bool(self.settings.get("version_aware"))

    @property
    def shown_url(self) -> str:
        return redact_url(self.url)

    def as_dict(self) -> dict[str, Any]:
        shown = {k: _shown(k, v) for k, v in self.settings.items()}
        return {"name": self.name, "url": self.shown_url, "settings": shown,
                "levels": self.levels}  # fmt: skip


def _shown(key: str, value: Any) -> Any:
    if key in CREDENTIAL_KEYS:
        return "***"
    return redact_url(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class RemoteSettings:
    remotes: dict[str, RemoteConfig]
    default: str | None

    @classmethod
    def merged(cls, per_level: Mapping[str, Mapping[str, Any]]) -> RemoteSettings:
        """Each level's config (lowest precedence first), later levels overriding earlier."""
        merged: dict[str, dict[str, Any]] = {}
        levels: dict[str, dict[str, str]] = {}
        default = None
        for level, conf in per_level.items():
            default = conf.get("core", {}).get("remote", default)
            for name, section in conf.get("remote", {}).items():
                merged.setdefault(name, {}).update(section)
                levels.setdefault(name, {}).update(dict.fromkeys(section, level))
        remotes = {
            name: RemoteConfig(name, str(values.get("url", "")), values, levels[name])
            for name, values in merged.items()
        }
        return cls(remotes, str(default) if default else None)

    def choose(self, remote: str | None = None) -> str:
        """The remote a transfer uses: the one named, else the repository's default."""
        if remote:
            if remote not in self.remotes:
                raise ConfigError(f"no DVC remote named {remote!r}", hint=self._known_hint())
            return remote
        if self.default:
            return self.default
        if len(self.remotes) == 1:
            return next(iter(self.remotes))
        raise ConfigError(
            "no default DVC remote" if self.remotes else "no DVC remote is configured",
            hint=self._known_hint(),
        )

    def describe(self, name: str) -> str:
        """`remote 'NAME' (URL)`, the way messages name a remote."""
        settings = self.remotes.get(name)
        return f"remote {name!r} ({settings.shown_url})" if settings else f"remote {name!r}"

    def _known_hint(self) -> str:
        if not self.remotes:
            return "add one: dvcckpt remote add storage s3://BUCKET/PATH --endpoint URL --default"
        return (
            f"pass -r NAME (remotes: {', '.join(sorted(self.remotes))}) or add one with --default"
        )
