"""DVC's Python API: add, init, push, pull, get, remote settings and reading remotes.

The only module that imports dvc (it costs ~0.4 s), always inside a function so
that `--help` and the hook stay fast. DVC's on-disk formats are read without dvc
in `dvcfiles`; its failures are explained in `dvcerrors`; remote settings, once
loaded, are plain data in `dvcconfig`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dvcckpt.adapters.dvcconfig import CREDENTIAL_KEYS, RemoteSettings
from dvcckpt.adapters.dvcerrors import checkout_failure, dvc_hint, dvc_message, remote_failure
from dvcckpt.adapters.dvcfiles import DvcPointer, parse_tree, read_pointer
from dvcckpt.core import layout
from dvcckpt.errors import ConfigError, StateError, UsageError

# Loggers DVC and its libraries write to; silenced and captured during our calls.
_DVC_LOGGERS = ("dvc", "dvc_data", "dvc_objects", "dvc_s3", "s3fs")


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
        raise StateError(f"dvc add {path}: {dvc_message(exc)}", hint=dvc_hint(exc)) from exc
    except PermissionError as exc:
        raise StateError(
            f"dvc add {path}: permission denied: {exc.filename}",
            hint="check that the checkpoint folder and the DVC cache are writable",
        ) from exc
    return read_pointer(layout.pointer_path_for(path))


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
            raise checkout_failure(dvc_root, targets, exc) from exc
    return fetched


def get(source: str, path: str, out: Path, rev: str | None = None, shown: str = "") -> None:
    """`dvc get`: download PATH of another DVC repository (a path or a git URL) to OUT."""
    from dvc.repo import Repo

    with _dvc_quiet() as records:
        try:
            Repo.get(source, path, out=str(out), rev=rev)
        except Exception as exc:
            raise remote_failure(f"get {path} from", shown or source, exc, records) from exc


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
    """`remote 'NAME' (URL)`, the way messages name a remote."""
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
