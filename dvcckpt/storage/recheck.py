"""Before a push: re-check the remote copies DVC would skip as already there.

DVC skips an object that exists on the remote, whatever its bytes, so a corrupted
remote object would stay corrupted behind a successful push. Each object of the
checkpoints being pushed that the remote holds is checked against its md5: from
its size and S3 ETag when the remote states it (one request; a multipart ETag is
recomputed from the local copy's parts), else by streaming it. A corrupted object is downloaded to quarantine first, then replaced
with the local cache copy, which `push` has just verified against the card: the
only write is exact, intact bytes over bytes that did not match their own name.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from dvcckpt.adapters import dvcerrors, dvcfiles, dvcrepo
from dvcckpt.adapters.dvcrepo import RemoteObject, RemoteStore
from dvcckpt.project import Project
from dvcckpt.storage import quarantine
from dvcckpt.storage.checkout import shown
from dvcckpt.storage.select import Checkpoint
from dvcckpt.storage.verify import REMOTE_WORKERS

_CHUNK = 4 << 20


@dataclass
class Recheck:
    checked: int = 0  # objects already on the remote, checked
    replaced: list[str] = field(default_factory=list)  # corrupted objects rewritten
    quarantine: Path | None = None


def recheck(project: Project, checkpoints: list[Checkpoint], remote: str) -> Recheck:
    """Check (and repair) the remote copies of these checkpoints' cached objects."""
    result = Recheck()
    settings = dvcrepo.remote_settings(project.dvc_root).remotes.get(remote)
    if not checkpoints or (settings is not None and settings.version_aware):
        return result  # a recorded object version is immutable; DVC compares versions
    cache = dvcfiles.cache_dir(project.dvc_root)
    local = _cached_objects(cache, checkpoints)
    with dvcrepo.open_remote(project.dvc_root, remote) as store:
        if store.version_aware:
            return result
        with ThreadPoolExecutor(REMOTE_WORKERS, thread_name_prefix="dvcckpt-recheck") as pool:
            states = list(pool.map(lambda md5: _state(store, md5, local[md5]), local))
        result.checked = sum(1 for state in states if state != "absent")
        bad = [md5 for md5, state in zip(local, states, strict=True) if state == "corrupted"]
        folder = quarantine.project_folder(project)
        for md5 in bad:
            obj = store.content_object(md5)
            _keep_bad_copy(store, obj, folder, cache)
            _replace(store, obj, local[md5])
            result.replaced.append(shown(store, obj))
            result.quarantine = folder
    return result


def _cached_objects(cache: Path, checkpoints: list[Checkpoint]) -> dict[str, Path]:
    """md5 -> cache file of every object of the checkpoints (their `.dir` listings too)."""
    found: dict[str, Path] = {}
    for ckpt in checkpoints:
        top = dvcfiles.cache_object(cache, ckpt.md5)
        found[ckpt.md5] = top
        if ckpt.directory:
            for _, md5 in dvcfiles.parse_tree(top.read_bytes()):
                found[md5] = dvcfiles.cache_object(cache, md5)
    return found


def _state(store: RemoteStore, md5: str, local: Path) -> str:
    """absent | ok | corrupted, for the remote object with this md5."""
    obj = store.content_object(md5)
    try:
        size, etag = store.stat(obj)
    except Exception as exc:
        if dvcerrors.is_missing(exc):
            return "absent"
        raise dvcerrors.remote_failure("read from", store.description, exc, []) from exc
    if size is not None and size != local.stat().st_size:
        return "corrupted"
    # A stated checksum can only clear an object: an ETag that is not its md5 may still
    # be intact bytes (encrypted with SSE-KMS, say), so only the bytes themselves condemn.
    if etag == md5.removesuffix(".dir") or _multipart_etag_matches(etag, local):
        return "ok"
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with store.open(obj) as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    except Exception as exc:
        raise dvcerrors.remote_failure("read from", store.description, exc, []) from exc
    return "ok" if digest.hexdigest() == md5.removesuffix(".dir") else "corrupted"


# Part sizes S3 clients upload with: s3fs (50 MiB, which DVC uses), boto3 and the AWS
# CLI (8 MiB), and the S3 minimum (5 MiB).
_PART_SIZES = (50 << 20, 8 << 20, 16 << 20, 64 << 20, 5 << 20, 100 << 20)


def _multipart_etag_matches(etag: str, local: Path) -> bool:
    """Whether a multipart ETag (md5 of the parts' md5s, `-N`) fits the local file.

    A match proves the remote bytes are the local ones part for part; no match only
    means the part size is unknown, and the object is then streamed instead.
    """
    digest, _, parts = etag.partition("-")
    if not parts.isdigit() or len(digest) != 32:
        return False
    size = local.stat().st_size
    for part in _PART_SIZES:
        if -(-size // part) == int(parts) and _parts_md5(local, part) == digest:
            return True
    return False


def _parts_md5(path: Path, part: int) -> str:
    combined = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while True:
            digest, left = hashlib.md5(usedforsecurity=False), part
            while left and (chunk := handle.read(min(_CHUNK, left))):
                digest.update(chunk)
                left -= len(chunk)
            if left == part:
                return combined.hexdigest()
            combined.update(digest.digest())


def _keep_bad_copy(store: RemoteStore, obj: RemoteObject, folder: Path, cache: Path) -> None:
    """Download the corrupted object to quarantine before anything replaces it."""
    relative = dvcfiles.cache_object(cache, obj.md5).relative_to(cache).as_posix()
    target = folder / "remote" / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with store.open(obj) as stream, target.open("wb") as handle:
            while chunk := stream.read(_CHUNK):
                handle.write(chunk)
    except Exception as exc:
        raise dvcerrors.remote_failure("read from", store.description, exc, []) from exc


def _replace(store: RemoteStore, obj: RemoteObject, local: Path) -> None:
    try:
        store.replace_object(local, obj)
    except Exception as exc:
        raise dvcerrors.remote_failure("push to", store.description, exc, []) from exc
