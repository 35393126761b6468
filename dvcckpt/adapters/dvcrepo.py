"""DVC storage: the only module that imports dvc (it costs ~0.4 s to import).

The functions near the end (cache layout, `.dir` manifests, `.dvc` outputs)
read DVC's on-disk formats without importing dvc, so local verification stays
fast.
"""

from __future__ import annotations

import configparser
import json
import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from dvcckpt.adapters import yamldoc
from dvcckpt.core import layout
from dvcckpt.errors import ConfigError, StateError, UsageError

# Loggers DVC and its libraries write to; silenced and captured during our calls.
_DVC_LOGGERS = ("dvc", "dvc_data", "dvc_objects", "dvc_s3", "s3fs")
CREDENTIAL_KEYS = ("access_key_id", "secret_access_key", "session_token")


@dataclass(frozen=True)
class DvcPointer:
    """What a `.dvc` file says about its output."""

    file: Path
    md5: str
    size: int
    nfiles: int | None


def track(dvc_root: Path, path: Path) -> DvcPointer:
    """`dvc add` the checkpoint: cache it, write its `.dvc` file, git-ignore the data."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(dvc_root)) as repo:
            # dvcckpt stages the files itself; silence DVC's "run git add" advice.
            repo.scm_context.quiet = True
            repo.add([str(path)])
    except DvcException as exc:
        raise StateError(f"dvc add {path}: {_dvc_message(exc)}", hint=_dvc_hint(exc)) from exc
    except PermissionError as exc:
        raise StateError(
            f"dvc add {path}: permission denied: {exc.filename}",
            hint="check that the checkpoint folder and the DVC cache are writable",
        ) from exc
    return read_pointer(layout.pointer_path_for(path))


def read_pointer(dvc_file: Path) -> DvcPointer:
    out = read_out(dvc_file)
    if "md5" not in out:
        raise StateError(
            f"{dvc_file}: no output with an md5 hash", hint=f"re-run `dvc add` for {dvc_file}"
        )
    return DvcPointer(
        file=dvc_file, md5=str(out["md5"]), size=int(out.get("size", 0)), nfiles=out.get("nfiles")
    )


def _dvc_message(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text}: {cause}"
    return text.splitlines()[0]


def _dvc_hint(exc: Exception) -> str:
    text = str(exc)
    if "already tracked by SCM" in text or "tracked by Git" in text:
        return "the file is committed to git; run `git rm --cached PATH` first"
    if "Permission denied" in text or "PermissionError" in repr(exc.__cause__):
        return "check that the DVC cache (.dvc/cache) and the checkpoint folder are writable"
    return "run the same `dvc` command by hand for details"


def init(root: Path) -> None:
    """`dvc init` (in-process: ~10x faster than the CLI)."""
    import contextlib
    import io

    from dvc.repo import Repo

    with contextlib.redirect_stdout(io.StringIO()):  # DVC prints a banner
        Repo.init(str(root)).close()


# --- transfers -----------------------------------------------------------------------


@contextmanager
def _dvc_quiet() -> Iterator[list[logging.LogRecord]]:
    """Keep DVC's own messages off the terminal; collect them to explain failures."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    saved = []
    for name in _DVC_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.propagate))
        logger.handlers = [Collect(logging.WARNING)]
        logger.propagate = False
    try:
        yield records
    finally:
        for logger, handlers, propagate in saved:
            logger.handlers = handlers
            logger.propagate = propagate


def default_remote(dvc_root: Path, remote: str | None = None) -> str:
    """The remote a transfer uses: the one named, else the repository's default."""
    remotes = remote_settings(dvc_root)
    if remote:
        if remote not in remotes.remotes:
            raise ConfigError(
                f"no DVC remote named {remote!r}",
                hint=_known_remotes_hint(remotes),
            )
        return remote
    if remotes.default:
        return remotes.default
    if len(remotes.remotes) == 1:
        return next(iter(remotes.remotes))
    raise ConfigError(
        "no default DVC remote" if remotes.remotes else "no DVC remote is configured",
        hint=_known_remotes_hint(remotes),
    )


def _known_remotes_hint(remotes: RemoteSettings) -> str:
    if not remotes.remotes:
        return "add one: dvcckpt remote add storage s3://BUCKET/PATH --endpoint URL --default"
    return f"pass -r NAME (remotes: {', '.join(sorted(remotes.remotes))}) or add one with --default"


def push(
    dvc_root: Path,
    targets: list[Path],
    remote: str | None = None,
    jobs: int | None = None,
    progress: AbstractContextManager[Any] | None = None,
) -> int:
    """Upload the targets' cached data to a DVC remote; returns the number of files sent."""
    from dvc.repo import Repo

    name = default_remote(dvc_root, remote)
    with _dvc_quiet() as records:
        try:
            with Repo(str(dvc_root)) as repo, progress or nullcontext():
                return int(repo.push([str(t) for t in targets], remote=name, jobs=jobs))
        except Exception as exc:
            raise remote_failure("push to", describe_remote(dvc_root, name), exc, records) from exc


def pull(
    dvc_root: Path,
    targets: list[Path],
    remote: str | None = None,
    jobs: int | None = None,
    progress: AbstractContextManager[Any] | None = None,
) -> int:
    """Fetch the targets' data into the cache, then check it out; returns files fetched."""
    from dvc.repo import Repo

    name = default_remote(dvc_root, remote)
    with _dvc_quiet() as records, Repo(str(dvc_root)) as repo:
        try:
            # Fetch and checkout separately (this is what `dvc pull` does) so that a
            # progress display covers the download only.
            with progress or nullcontext():
                fetched = int(repo.fetch([str(t) for t in targets], remote=name, jobs=jobs))
        except Exception as exc:
            raise remote_failure(
                "pull from", describe_remote(dvc_root, name), exc, records
            ) from exc
        try:
            repo.checkout([str(t) for t in targets])
        except Exception as exc:
            raise _checkout_failure(dvc_root, targets, exc) from exc
    return fetched


def _checkout_failure(dvc_root: Path, targets: list[Path], exc: Exception) -> StateError:
    listing = ", ".join(_relative(dvc_root, t) for t in targets)
    local = _local_permission_error(exc)
    if local is not None:
        return StateError(f"cannot check out {listing}: {local}",
                          hint="check that the checkpoint folders are writable")  # fmt: skip
    text = str(exc)
    if "without confirmation" in text:
        return StateError(
            f"cannot check out {listing}: the work tree holds a modified copy",
            hint="move the modified copy aside (or `dvc checkout --force PATH`) and pull again",
        )
    if "Checkout failed" in text:
        return StateError(
            f"cannot check out {listing}: the data is not in the cache after fetching",
            hint="the remote lacks it, or DVC dropped a download whose md5 was wrong "
            "(remote option verify = true); `dvcckpt verify --remote NAME` tells which",
        )
    return StateError(f"dvc checkout {listing}: {_dvc_message(exc)}",
                      hint="run `dvc checkout -v PATH` for DVC's details")  # fmt: skip


def _relative(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def get(source: str, path: str, out: Path, rev: str | None = None, shown: str = "") -> None:
    """`dvc get`: download PATH of another DVC repository (a path or a git URL) to OUT."""
    from dvc.repo import Repo

    with _dvc_quiet() as records:
        try:
            Repo.get(source, path, out=str(out), rev=rev)
        except Exception as exc:
            raise remote_failure(f"get {path} from", shown or source, exc, records) from exc


def describe_remote(dvc_root: Path, name: str) -> str:
    settings = remote_settings(dvc_root).remotes.get(name)
    return f"remote {name!r} ({settings.url})" if settings else f"remote {name!r}"


def remote_failure(
    action: str, where: str, exc: BaseException, records: list[logging.LogRecord]
) -> StateError:
    """Turn a DVC, botocore or OS failure into an error that names the remote and a fix."""
    causes = _causes(exc, records)
    text = " ".join(f"{type(c).__name__}: {c}" for c in causes)
    failed = f"{action} {where} failed"
    local = next((c for c in map(_local_permission_error, causes) if c), None)
    if local is not None:
        return StateError(
            f"{failed}: {local}",
            hint="check that the DVC cache (.dvc/cache) and .dvc/tmp are writable",
        )
    if any(s in text for s in ("Forbidden", "AccessDenied", "SignatureDoesNotMatch",
                               "InvalidAccessKeyId", "Unable to locate credentials",
                               "PermissionError")):  # fmt: skip
        return StateError(
            f"{failed}: access denied ({_first_line(causes)})",
            hint="check access_key_id/secret_access_key in .dvc/config.local "
            "(dvcckpt remote add NAME URL --access-key-id ID --force) or the AWS_* variables",
        )
    if "NoSuchBucket" in text or "bucket does not exist" in text.lower():
        return StateError(
            f"{failed}: the bucket does not exist",
            hint="create the bucket, or fix the URL with `dvcckpt remote add NAME URL --force`",
        )
    if any(s in text for s in ("Could not connect", "Connect call failed", "ConnectionError",
                               "ConnectTimeout", "ReadTimeout", "Connection reset",
                               "ServerDisconnected", "EndpointConnectionError")):  # fmt: skip
        again = (
            "re-run the push when it is: objects already uploaded are skipped"
            if action.startswith("push")
            else "run the command again when it is"
        )
        return StateError(
            f"{failed}: the S3 endpoint is not reachable ({_first_line(causes)})",
            hint=f"is the S3 endpoint reachable? {again}",
        )
    return StateError(
        f"{failed}: {_first_line(causes)}",
        hint="run the same command again; if it keeps failing, the matching `dvc` command "
        "with -v shows DVC's details",
    )


def _causes(exc: BaseException, records: list[logging.LogRecord]) -> list[BaseException]:
    """The exception chain, then the exceptions DVC logged instead of raising."""
    found: list[BaseException] = []
    roots: list[BaseException] = [exc] + [
        r.exc_info[1] for r in records if r.exc_info and r.exc_info[1] is not None
    ]
    for root in roots:
        current: BaseException | None = root
        while current is not None and current not in found:
            found.append(current)
            current = current.__cause__ or current.__context__
    # DVC's summary ("2 files failed to upload") says least; explain with the causes first.
    return sorted(found, key=lambda c: type(c).__module__.startswith("dvc"))


def _first_line(causes: list[BaseException]) -> str:
    for cause in causes:
        text = str(cause).strip()
        if text:
            return text.splitlines()[0]
    return type(causes[0]).__name__


def _local_permission_error(exc: BaseException) -> str | None:
    """`PermissionError` on a local file (s3fs raises it without a file name for HTTP 403)."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, PermissionError) and current.filename:
            return f"permission denied: {current.filename}"
        current = current.__cause__ or current.__context__
    return None


# --- remote configuration --------------------------------------------------------------


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

    def as_dict(self) -> dict[str, Any]:
        shown = {k: ("***" if k in CREDENTIAL_KEYS else v) for k, v in self.settings.items()}
        return {"name": self.name, "url": self.url, "settings": shown, "levels": self.levels}


@dataclass(frozen=True)
class RemoteSettings:
    remotes: dict[str, RemoteConfig]
    default: str | None


def remote_settings(dvc_root: Path) -> RemoteSettings:
    """Remotes merged over DVC's config levels (system, global, repo, local)."""
    from dvc.config import Config
    from dvc.config import ConfigError as DvcConfigError

    try:
        config = Config(dvc_dir=str(dvc_root / ".dvc"), validate=False)
        per_level = {level: config.load_one(level) for level in Config.LEVELS}
    except DvcConfigError as exc:
        raise ConfigError(
            f"DVC config: {exc}", hint="fix .dvc/config or .dvc/config.local"
        ) from exc
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
    return RemoteSettings(remotes, str(default) if default else None)


def set_remote(
    dvc_root: Path,
    name: str,
    settings: dict[str, Any],
    secrets: dict[str, str],
    default: bool = False,
    force: bool = False,
) -> None:
    """Add or replace a remote: settings in `.dvc/config`, secrets in `.dvc/config.local`."""
    from dvc.config import Config
    from dvc.config import ConfigError as DvcConfigError

    config = Config(dvc_dir=str(dvc_root / ".dvc"))
    if name in config.load_one("repo").get("remote", {}) and not force:
        raise UsageError(
            f"a DVC remote named {name!r} already exists",
            hint="pass --force to replace it, or choose another name",
        )
    try:
        with config.edit("repo") as conf:
            conf["remote"][name] = settings
            if default:
                conf["core"]["remote"] = name
        with config.edit("local") as conf:
            kept = {
                k: v for k, v in conf["remote"].get(name, {}).items() if k not in CREDENTIAL_KEYS
            }
            if secrets or kept:
                conf["remote"][name] = kept | secrets
            else:
                conf["remote"].pop(name, None)
    except DvcConfigError as exc:
        raise UsageError(f"remote {name!r}: {exc}", hint="see `dvc remote modify --help`") from exc


# --- reading remote objects --------------------------------------------------------------


@dataclass(frozen=True)
class RemoteObject:
    """One file of a checkpoint on a remote: where it lives and which version."""

    relpath: str  # inside a directory checkpoint; "" for a file checkpoint
    path: str  # bucket/key on the remote's filesystem
    version_id: str | None
    md5: str

    def url(self, protocol: str) -> str:
        version = f"?versionId={self.version_id}" if self.version_id else ""
        return f"{protocol}://{self.path}{version}"


class RemoteStore:
    """Read access to one DVC remote: list a checkpoint's objects, stream them."""

    def __init__(self, name: str, remote: Any, description: str) -> None:
        self.name = name
        self.description = description  # "remote 'NAME' (URL)", for messages
        self._remote = remote
        self.protocol = str(remote.fs.protocol if isinstance(remote.fs.protocol, str)
                            else remote.fs.protocol[0])  # fmt: skip
        self.version_aware = bool(remote.fs.version_aware or remote.worktree)

    def objects(self, out_key: str, md5: str, out: dict[str, Any]) -> list[RemoteObject]:
        """Objects holding a checkpoint (`out_key`: its path relative to the DVC root).

        Raises FileNotFoundError when the remote does not hold it.
        """
        if self.version_aware:
            return self._versioned_objects(out_key, md5, out)
        if not md5.endswith(".dir"):
            return [RemoteObject("", self._object_path(md5), None, md5)]
        with self.open(RemoteObject("", self._object_path(md5), None, md5)) as handle:
            entries = parse_tree(handle.read())
        return [RemoteObject(rel, self._object_path(m), None, m) for rel, m in entries]

    def _object_path(self, md5: str) -> str:
        fs = self._remote.fs
        return str(fs.join(self._remote.path, "files", "md5", md5[:2], md5[2:]))

    def _versioned_objects(self, out_key: str, md5: str, out: dict[str, Any]) -> list[RemoteObject]:
        fs = self._remote.fs
        base = str(fs.join(self._remote.path, *out_key.split("/")))
        if "files" not in out:
            version = _version_of(out, self.name)
            return [RemoteObject("", base, version, md5)]
        found = []
        for entry in out["files"]:
            relpath = str(entry["relpath"])
            path = str(fs.join(base, *relpath.split("/")))
            version = _version_of(entry, self.name)
            found.append(RemoteObject(relpath, path, version, str(entry.get("md5", ""))))
        return found

    def open(self, obj: RemoteObject) -> IO[bytes]:
        """Stream an object (FileNotFoundError if absent); nothing is written to disk."""
        fs = self._remote.fs
        path = fs.version_path(obj.path, obj.version_id) if obj.version_id else obj.path
        handle: IO[bytes] = fs.open(path, mode="rb")
        return handle


def _version_of(entry: dict[str, Any], remote: str) -> str:
    version = (entry.get("cloud") or {}).get(remote, {}).get("version_id")
    if not version:
        # Version-aware remotes record what was pushed in the .dvc file; nothing
        # recorded means nothing pushed there.
        raise FileNotFoundError(f"no version recorded for remote {remote!r}")
    return str(version)


@contextmanager
def open_remote(dvc_root: Path, remote: str | None = None) -> Iterator[RemoteStore]:
    """A read-only handle on a remote; failures name the remote and the fix."""
    from dvc.repo import Repo

    name = default_remote(dvc_root, remote)
    with _dvc_quiet() as records, Repo(str(dvc_root)) as repo:
        try:
            store = RemoteStore(name, repo.cloud.get_remote(name), describe_remote(dvc_root, name))
        except Exception as exc:
            raise remote_failure(
                "read from", describe_remote(dvc_root, name), exc, records
            ) from exc
        yield store


def is_missing(exc: BaseException) -> bool:
    """FileNotFoundError or an S3 404, however deep in the chain."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, FileNotFoundError) or "NoSuchKey" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


# --- DVC's on-disk formats, read without importing dvc -----------------------------------


def cache_dir(dvc_root: Path) -> Path:
    """The DVC cache directory (`cache.dir` in `.dvc/config[.local]`, else `.dvc/cache`)."""
    dvc_dir = dvc_root / ".dvc"
    configured = None
    for name in ("config", "config.local"):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read(dvc_dir / name, encoding="utf-8")
        except configparser.Error:
            continue
        if parser.has_option("cache", "dir"):
            configured = parser.get("cache", "dir").strip().strip("'\"")
    return (dvc_dir / configured).resolve() if configured else dvc_dir / "cache"


def cache_object(cache: Path, md5: str) -> Path:
    """Where DVC 3 keeps an object: `files/md5/<first 2>/<rest>` (`.dir` for trees)."""
    return cache / "files" / "md5" / md5[:2] / md5[2:]


def parse_tree(data: bytes) -> list[tuple[str, str]]:
    """(relpath, md5) of each file listed in a DVC `.dir` manifest."""
    try:
        entries = json.loads(data)
        return [(str(e["relpath"]), str(e["md5"])) for e in entries]
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not a DVC directory manifest: {exc}") from exc


def read_out(dvc_file: Path) -> dict[str, Any]:
    """The first output of a `.dvc` file, as written."""
    if not dvc_file.is_file():
        raise StateError(f"{dvc_file}: no such DVC file", hint="pull or check out the .dvc file")
    document: Any = yamldoc.load_fast(yamldoc.read_text(dvc_file), str(dvc_file))
    outs = document.get("outs") if isinstance(document, dict) else None
    if not outs or not isinstance(outs[0], dict):
        raise StateError(f"{dvc_file}: no output", hint=f"re-run `dvc add` for {dvc_file}")
    out: dict[str, Any] = outs[0]
    return out
