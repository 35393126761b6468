"""DVC failures turned into errors that name the remote or file and a fix.

DVC, botocore, s3fs and the OS report problems as chains of exceptions (and
DVC sometimes only logs them); every question asked of a failure walks the
chain through `chain`, so all of them agree on which exceptions it holds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from dvcckpt.errors import StateError


def chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what caused it (`__cause__`, else `__context__`), each exception once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_missing(exc: BaseException) -> bool:
    """FileNotFoundError or an S3 404, however deep in the chain."""
    return any(isinstance(c, FileNotFoundError) or "NoSuchKey" in str(c) for c in chain(exc))


def local_permission_error(exc: BaseException) -> str | None:
    """`PermissionError` on a local file (s3fs raises it without a file name for HTTP 403)."""
    for current in chain(exc):
        if isinstance(current, PermissionError) and current.filename:
            return f"permission denied: {current.filename}"
    return None


def remote_failure(
    action: str, where: str, exc: BaseException, records: list[logging.LogRecord]
) -> StateError:
    """Turn a DVC, botocore or OS failure into an error that names the remote and a fix."""
    causes = _causes(exc, records)
    text = " ".join(f"{type(c).__name__}: {c}" for c in causes)
    failed = f"{action} {where} failed"
    local = next((c for c in map(local_permission_error, causes) if c), None)
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
        for current in chain(root):
            if current in found:
                break  # the rest of this chain is already listed
            found.append(current)
    # DVC's summary ("2 files failed to upload") says least; explain with the causes first.
    return sorted(found, key=lambda c: type(c).__module__.startswith("dvc"))


def _first_line(causes: list[BaseException]) -> str:
    for cause in causes:
        text = str(cause).strip()
        if text:
            return text.splitlines()[0]
    return type(causes[0]).__name__
