"""The organisation's catalog: where it is (configuration), and publishing a repository to it.

Settings, each from the first place that has it: the command's option
(`--warehouse`, `--catalog-uri`), the environment (`DVCCKPT_WAREHOUSE`,
`DVCCKPT_CATALOG_URI`), `catalog:` in the repository's `dvcckpt.yaml`, `catalog:`
in the user's `~/.config/dvcckpt/config.yaml` (`$XDG_CONFIG_HOME` honoured). A
committed `dvcckpt.yaml` never holds a credential (`core.config` refuses it); S3
keys come from `AWS_*` or DVC's local remote config and are handed to pyiceberg
only, never written or shown. The default catalog database is `catalog.db` in a
local warehouse; an S3 warehouse needs a catalog URI.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from dvcckpt.adapters import iceberg, yamldoc
from dvcckpt.adapters.dvcconfig import redact_url
from dvcckpt.core import redaction
from dvcckpt.core.config import CatalogSettings
from dvcckpt.errors import ConfigError
from dvcckpt.publish import tables

if TYPE_CHECKING:
    import duckdb
    from pyiceberg.table import Table

    from dvcckpt.project import Project

WAREHOUSE_ENV = "DVCCKPT_WAREHOUSE"
URI_ENV = "DVCCKPT_CATALOG_URI"
USER_CONFIG = Path("dvcckpt") / "config.yaml"
HINT = (
    "pass --warehouse DIR|s3://BUCKET/PREFIX, or set catalog.warehouse in dvcckpt.yaml "
    "or ~/.config/dvcckpt/config.yaml"
)
_URI_SCHEMES = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg",
                "postgres": "postgresql+psycopg", "postgresql+psycopg": "postgresql+psycopg"}  # fmt: skip


@dataclass
class Warehouse:
    """An opened catalog: `target` says where (and holds the secrets), `catalog` is pyiceberg's."""

    target: iceberg.Target
    catalog: Any
    namespace: str = tables.NAMESPACE
    _tables: dict[str, Table] = field(default_factory=dict, repr=False)

    @property
    def shown(self) -> str:
        return self.target.shown

    def ensure(self) -> dict[str, Table]:
        """Every table of `publish.tables`, created or given its new columns (for writers)."""
        self._tables = iceberg.ensure_tables(self.catalog, self.target, self.namespace,
                                             tables.TABLES)  # fmt: skip
        return self._tables

    def tables(self, names: Sequence[str] = tuple(tables.TABLES)) -> dict[str, Table]:
        """Existing tables (StateError with a hint when nothing was published yet)."""
        missing = [n for n in names if n not in self._tables]
        if missing:
            self._tables.update(
                iceberg.load_tables(self.catalog, self.target, self.namespace, missing)
            )
        return {name: self._tables[name] for name in names}

    def duckdb(
        self,
        names: Sequence[str],
        *,
        equals: Mapping[str, Sequence[Any]] | None = None,
        columns: Mapping[str, Sequence[str]] | None = None,
    ) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with one view per table (see `iceberg.scan_to_duckdb`)."""
        return iceberg.scan_to_duckdb(
            self.tables(names), self.target, equals=equals, columns=columns
        )


def open_warehouse(
    project: Project | None, warehouse: str | None = None, uri: str | None = None
) -> Warehouse:
    """The catalog the options, environment, `dvcckpt.yaml` or user config name."""
    return connect(resolve(project, warehouse, uri, os.environ), project)


def locate(
    project: Project | None, warehouse: str | None = None, uri: str | None = None
) -> iceberg.Target:
    """Where the catalog `open_warehouse` would open is (nothing opened, pyiceberg not loaded)."""
    return target_of(resolve(project, warehouse, uri, os.environ), os.environ, project)


def connect(settings: CatalogSettings, project: Project | None) -> Warehouse:
    return open_target(target_of(settings, os.environ, project))


def open_target(target: iceberg.Target, *, existing: bool = False) -> Warehouse:
    """`existing`: the tables are known to exist with every column (`ensure` not needed)."""
    return Warehouse(target, iceberg.open_catalog(target, existing=existing))


def resolve(
    project: Project | None,
    warehouse: str | None,
    uri: str | None,
    environ: Mapping[str, str],
) -> CatalogSettings:
    """The settings in force, each from the first source that has it (paths made absolute)."""
    own = project.config.catalog if project is not None else CatalogSettings()
    root = project.root if project is not None else None
    user, user_file = user_settings(environ)
    found_warehouse = _first(
        (warehouse, Path.cwd()),
        (environ.get(WAREHOUSE_ENV) or None, Path.cwd()),
        (own.warehouse, root),
        (user.warehouse, user_file.parent if user_file else None),
    )
    if found_warehouse is None:
        raise ConfigError("no warehouse is configured for the organisation's catalog", hint=HINT)
    found_uri = uri or environ.get(URI_ENV) or own.uri or user.uri
    return CatalogSettings(found_warehouse, found_uri, own.repository or user.repository)


def _first(*candidates: tuple[str | None, Path | None]) -> str | None:
    for value, base in candidates:
        if value:
            return warehouse_location(value, base)
    return None


def warehouse_location(value: str, base: Path | None) -> str:
    """`s3://bucket/prefix` or `file:///absolute/folder` (a plain path is relative to `base`)."""
    if redaction.has_secret(value):
        raise ConfigError(
            f"the warehouse {redact_url(value)} has credentials in it",
            hint="give S3 keys in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or DVC's "
            ".dvc/config.local, never in the URL",
        )
    scheme = value.partition("://")[0].lower() if "://" in value else ""
    if scheme in ("s3", "s3a"):
        bucket = urlsplit(value).netloc
        if not bucket:
            raise ConfigError(f"{value!r} names no bucket", hint="use s3://BUCKET/PREFIX")
        return "s3://" + value.split("://", 1)[1].rstrip("/")
    if scheme == "file":
        path = Path(urlsplit(value).path)
    elif scheme:
        raise ConfigError(
            f"warehouse {redact_url(value)!r}: only local folders and s3:// are supported",
            hint="use a folder, file:///PATH or s3://BUCKET/PREFIX",
        )
    else:
        path = Path(value).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return path.resolve().as_uri()


def user_settings(environ: Mapping[str, str]) -> tuple[CatalogSettings, Path | None]:
    """`catalog:` of the user's config file (`$XDG_CONFIG_HOME/dvcckpt/config.yaml`)."""
    base = environ.get("XDG_CONFIG_HOME") or str(Path("~/.config").expanduser())
    path = Path(base) / USER_CONFIG
    if not os.path.lexists(path):
        return CatalogSettings(), None
    try:
        document = yamldoc.load_fast(yamldoc.read_text(path), str(path))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})",
                          hint="check that the file is readable by you") from exc  # fmt: skip
    section = document.get("catalog", {}) if isinstance(document, dict) else None
    problem = _section_problem(section, document)
    if problem:
        raise ConfigError(f"{path}: {problem}", hint="catalog: {warehouse: ..., uri: ...}")
    assert isinstance(section, dict)
    return CatalogSettings.of(section), path


def _section_problem(section: Any, document: Any) -> str | None:
    if not isinstance(document, dict) or not isinstance(section, dict):
        return "expected a mapping with a `catalog` mapping"
    unknown = sorted(set(document) - {"catalog"} - {k for k in document if str(k).startswith("x-")})
    if unknown:
        return f"unknown setting {unknown[0]!r} (only `catalog` is read)"
    for key, value in section.items():
        if key not in ("warehouse", "uri", "repository") and not str(key).startswith("x-"):
            return f"catalog.{key}: unknown field (warehouse, uri, repository)"
        if not str(key).startswith("x-") and not (isinstance(value, str) and value):
            return f"catalog.{key}: expected a non-empty string"
    return None


# -- the target pyiceberg opens ---------------------------------------------------------------


def target_of(
    settings: CatalogSettings, environ: Mapping[str, str], project: Project | None
) -> iceberg.Target:
    """The catalog database URL, storage properties and the secrets among them."""
    warehouse = settings.warehouse or ""
    url, secrets = catalog_url(settings.uri, warehouse)
    properties: dict[str, str] = {}
    if warehouse.startswith("s3://"):
        properties = s3_properties(warehouse, environ, project)
        secrets += tuple(v for k, v in properties.items() if "key" in k or "token" in k)
    # Shown without its query (`?password=...`, `sslpassword=...`) and any secret in it.
    shown = f"{warehouse} (catalog {redact_url(url).split('?', 1)[0]})"
    for secret in secrets:
        shown = shown.replace(secret, "***")
    return iceberg.Target(url, warehouse, shown, properties, secrets)


def catalog_url(uri: str | None, warehouse: str) -> tuple[str, tuple[str, ...]]:
    """The SQLAlchemy URL of the catalog database, and the password it holds (if any)."""
    if not uri:
        if not warehouse.startswith("file://"):
            raise ConfigError(
                f"the warehouse {warehouse} needs a catalog database",
                hint="pass --catalog-uri postgresql://HOST/DB (or sqlite:///PATH), or set "
                f"catalog.uri or {URI_ENV}",
            )
        return "sqlite:///" + str(Path(urlsplit(warehouse).path) / "catalog.db"), ()
    if "://" not in uri:
        return "sqlite:///" + str(Path(uri).expanduser().resolve()), ()
    scheme, rest = uri.split("://", 1)
    driver = _URI_SCHEMES.get(scheme.lower())
    if driver is None:
        raise ConfigError(
            f"catalog URI {redact_url(uri)!r}: only sqlite:// and postgresql:// are supported",
            hint="use sqlite:///PATH or postgresql://[USER@]HOST[:PORT]/DB",
        )
    parts = urlsplit(uri)
    secrets = [parts.password or ""] + [v for k, v in parse_qsl(parts.query) if "pass" in k]
    return f"{driver}://{rest}", tuple(s for s in secrets if s)


def s3_properties(
    warehouse: str, environ: Mapping[str, str], project: Project | None
) -> dict[str, str]:
    """pyiceberg's S3 settings: `AWS_*` first, else the DVC remote on the same bucket."""
    wanted = {
        "s3.endpoint": environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL"),
        "s3.region": environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION"),
        "s3.access-key-id": environ.get("AWS_ACCESS_KEY_ID"),
        "s3.secret-access-key": environ.get("AWS_SECRET_ACCESS_KEY"),
        "s3.session-token": environ.get("AWS_SESSION_TOKEN"),
    }
    if project is not None and not all(wanted[k] for k in list(wanted)[:4]):
        for key, value in _dvc_remote(warehouse, project).items():
            wanted[key] = wanted[key] or value
    found = {k: v for k, v in wanted.items() if v}
    found.setdefault("s3.region", "us-east-1")
    if "s3.endpoint" in found:  # MinIO, SeaweedFS, Ceph: buckets in the path
        found["s3.path-style-access"] = "true"
    return found


_DVC_SETTINGS = {"endpointurl": "s3.endpoint", "region": "s3.region",
                 "access_key_id": "s3.access-key-id", "secret_access_key": "s3.secret-access-key",
                 "session_token": "s3.session-token"}  # fmt: skip


def _dvc_remote(warehouse: str, project: Project) -> dict[str, str]:
    """Settings of the DVC remote on the warehouse's bucket (else of the default S3 remote)."""
    if not (project.dvc_root / ".dvc").is_dir():
        return {}
    from dvcckpt.adapters import dvcrepo

    remotes = dvcrepo.remote_settings(project.dvc_root)
    bucket = urlsplit(warehouse).netloc
    s3 = [r for r in remotes.remotes.values() if r.url.startswith("s3://")]
    same = [r for r in s3 if urlsplit(r.url).netloc == bucket]
    default = [r for r in s3 if r.name == remotes.default]
    if not (same or default):
        return {}
    chosen = (same or default)[0]
    return {ours: str(chosen.settings[theirs]) for theirs, ours in _DVC_SETTINGS.items()
            if chosen.settings.get(theirs)}  # fmt: skip
