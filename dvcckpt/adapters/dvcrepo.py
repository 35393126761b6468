"""DVC's Python API: init, push, remote settings, and reading remotes (never deleting).

The only module that imports dvc (it costs ~0.4 s), always inside a function so
that `--help` and the hook stay fast. DVC's on-disk formats are read without dvc
in `dvcfiles`; its failures are explained in `dvcerrors`; remote settings, once
loaded, are plain data in `dvcconfig`.
"""

from __future__ import annotations

import http.client as http_client
import logging
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from dvcckpt.adapters.dvcconfig import CREDENTIAL_KEYS, RemoteSettings
from dvcckpt.adapters.dvcerrors import remote_failure
from dvcckpt.adapters.dvcfiles import parse_tree
from dvcckpt.errors import ConfigError, StateError, UsageError

# Loggers DVC and its libraries write to; silenced and captured during our calls.
_DVC_LOGGERS = ("dvc", "dvc_data", "dvc_objects", "dvc_s3", "s3fs")


def init(root: Path) -> None:
    """`dvc init` (in-process: ~10x faster than the CLI)."""
    import contextlib
    import io

    from dvc.repo import Repo

    # DVC prints a banner and logs it: neither may reach stdout (`init --json`).
    with contextlib.redirect_stdout(io.StringIO()), _dvc_quiet():
        Repo.init(str(root)).close()


# --- transfers -----------------------------------------------------------------------

# Bounds on every remote call, so a remote that accepts connections and never answers
# fails in seconds instead of minutes of retries: a probe that must get an answer within
# PROBE_SECONDS, then DVC's own connect and read timeouts and at most two attempts per
# request (a setting the user made in the remote's config wins).
PROBE_SECONDS = 10.0
_TIMEOUTS = {"s3": {"connect_timeout": 10, "read_timeout": 30}}
_RETRIES = {"AWS_MAX_ATTEMPTS": "2", "AWS_RETRY_MODE": "standard"}


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


@contextmanager
def _bounded(dvc_root: Path, name: str) -> Iterator[dict[str, Any]]:
    """Probe the remote, bound retries; yields the timeouts to pass to DVC for it."""
    settings = remote_settings(dvc_root).remotes.get(name)
    scheme = settings.url.partition("://")[0] if settings and "://" in settings.url else ""
    defaults = {k: v for k, v in _TIMEOUTS.get(scheme, {}).items()
                if settings is None or k not in settings.settings}  # fmt: skip
    if settings is not None and settings.endpoint:
        probe(settings.endpoint, describe_remote(dvc_root, name))
    saved = {key: os.environ.get(key) for key in _RETRIES}
    os.environ.update({k: v for k, v in _RETRIES.items() if saved[k] is None})
    try:
        yield defaults
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)


def probe(url: str, where: str, seconds: float = PROBE_SECONDS) -> None:
    """Fail fast when an endpoint accepts connections but does not answer.

    Any answer, even an error status or a TLS failure, is left for DVC to explain;
    only silence within `seconds` (or a refused connection) is reported here.
    """
    import socket
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, method="HEAD")
    try:
        urllib.request.urlopen(request, timeout=seconds).close()
    except TimeoutError as exc:
        raise _silent(where, seconds) from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError | socket.timeout):
            raise _silent(where, seconds) from exc
    except (OSError, ValueError, http_client.HTTPException):
        return


def _silent(where: str, seconds: float) -> StateError:
    return StateError(
        f"{where} did not answer within {seconds:.0f} s",
        hint="is the endpoint up and reachable (a proxy or firewall that swallows requests "
        "looks like this)? Run the command again when it answers",
    )


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
    where = describe_remote(dvc_root, name)
    with _dvc_quiet() as records, _bounded(dvc_root, name) as timeouts:
        try:
            config = timeouts or None
            with (
                Repo(str(dvc_root), remote=name, remote_config=config) as repo,
                progress or nullcontext(),
            ):
                return int(repo.push([str(t) for t in targets], remote=name, jobs=jobs))
        except Exception as exc:
            raise remote_failure("push to", where, exc, records) from exc


# --- remote configuration --------------------------------------------------------------


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
    return RemoteSettings.merged(per_level)


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


def default_remote(dvc_root: Path, remote: str | None = None) -> str:
    """The remote a transfer uses: the one named, else the repository's default."""
    return remote_settings(dvc_root).choose(remote)


def describe_remote(dvc_root: Path, name: str) -> str:
    """`remote 'NAME' (URL)`, the way messages name a remote (credentials redacted)."""
    return remote_settings(dvc_root).describe(name)


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
    """Access to one DVC remote: list a checkpoint's objects, stream them, repair one.

    Nothing here deletes: DVC's own fetch removes an object whose md5 is wrong from a
    local remote, which is why downloads go through `open` instead.
    """

    def __init__(self, name: str, remote: Any, description: str) -> None:
        self.name = name
        self.description = description  # "remote 'NAME' (URL)", for messages
        self._remote = remote
        self.protocol = str(remote.fs.protocol if isinstance(remote.fs.protocol, str)
                            else remote.fs.protocol[0])  # fmt: skip
        self.version_aware = bool(remote.fs.version_aware or remote.worktree)

    def objects(self, out_key: str, md5: str, out: dict[str, Any]) -> list[RemoteObject]:
        """Objects holding a checkpoint (`out_key`: its path relative to the DVC root).

        Raises FileNotFoundError when the remote does not hold it, ValueError when its
        `.dir` listing is corrupted or unsafe.
        """
        if self.version_aware:
            return self.versioned_objects(out_key, md5, out)
        if not md5.endswith(".dir"):
            return [self.content_object(md5)]
        entries = parse_tree(self.read_listing(md5))
        return [replace(self.content_object(m), relpath=rel) for rel, m in entries]

    def content_object(self, md5: str) -> RemoteObject:
        """The object of a content-addressed (not version-aware) remote with this md5."""
        fs = self._remote.fs
        path = str(fs.join(self._remote.path, "files", "md5", md5[:2], md5[2:]))
        return RemoteObject("", path, None, md5)

    def read_listing(self, md5: str, limit: int = 256 << 20, check: bool = True) -> bytes:
        """A `.dir` object's bytes, checked against its md5 (ValueError if they differ).

        `check=False` returns them unchecked, for a caller that keeps bad bytes.
        """
        with self.open(self.content_object(md5)) as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise ValueError(f"directory listing larger than {limit >> 20} MiB")
        if check:
            check_listing(md5, data)
        return data

    def versioned_objects(self, out_key: str, md5: str, out: dict[str, Any]) -> list[RemoteObject]:
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

    def stat(self, obj: RemoteObject) -> tuple[int | None, str]:
        """(size, ETag or "") of an object, as the remote states them; FileNotFoundError if absent."""
        info = self._remote.fs.info(obj.path)
        etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
        size = info.get("size")
        return (int(size) if isinstance(size, int) else None), etag

    def open(self, obj: RemoteObject) -> IO[bytes]:
        """Stream an object (FileNotFoundError if absent); nothing is written to disk."""
        fs = self._remote.fs
        path = fs.version_path(obj.path, obj.version_id) if obj.version_id else obj.path
        handle: IO[bytes] = fs.open(path, mode="rb")
        return handle

    def replace_object(self, local: Path, obj: RemoteObject) -> None:
        """Overwrite a content-addressed object whose bytes do not match its md5.

        Only a verified local copy of exactly that md5 is ever written, so this can only
        turn a corrupted object into the intact one.
        """
        if self.version_aware or obj.version_id:
            raise ValueError("objects of a version-aware remote are never overwritten")
        self._remote.fs.put_file(str(local), obj.path)


def check_listing(md5: str, data: bytes) -> None:
    """ValueError unless a `.dir` object's bytes have the md5 that names them."""
    import hashlib

    actual = hashlib.md5(data, usedforsecurity=False).hexdigest()
    if actual != md5.removesuffix(".dir"):
        raise ValueError(f"directory listing is corrupted (its md5 is {actual})")


def _version_of(entry: dict[str, Any], remote: str) -> str:
    version = (entry.get("cloud") or {}).get(remote, {}).get("version_id")
    if not version:
        # Version-aware remotes record what was pushed in the .dvc file; nothing
        # recorded means nothing pushed there.
        raise FileNotFoundError(f"no version recorded for remote {remote!r}")
    return str(version)


@contextmanager
def open_remote(dvc_root: Path, remote: str | None = None) -> Iterator[RemoteStore]:
    """A handle on a remote, with bounded timeouts; failures name the remote and the fix."""
    from dvc.repo import Repo

    name = default_remote(dvc_root, remote)
    where = describe_remote(dvc_root, name)
    with (
        _dvc_quiet() as records,
        _bounded(dvc_root, name) as timeouts,
        Repo(str(dvc_root), remote=name, remote_config=timeouts or None) as repo,
    ):
        try:
            store = RemoteStore(name, repo.cloud.get_remote(name), where)
        except Exception as exc:
            raise remote_failure("read from", where, exc, records) from exc
        yield store
