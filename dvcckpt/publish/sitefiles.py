"""Writing the site's folder all at once: a crash leaves the old site or none, never half.

Pages are written into a fresh hidden folder beside the output (same file system,
so the final rename is atomic), then the old site is renamed away, the new one
renamed into place and the old one removed. Folders left by a killed build
(named after their writer's process id) are swept by the next build.

The output must be a folder dvcckpt may own: not a file, not a symbolic link, not the repository
itself or a folder holding it, not inside `.git` or `.dvc`, and, when it already
exists and is not empty, a site dvcckpt wrote (it carries `MARKER`), so a typo
in `--output` can never replace someone's source folder.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dvcckpt.adapters.atomic import fault_point, os_failure, process_alive
from dvcckpt.errors import StateError, UsageError

MARKER = ".dvcckpt-site"
DEFAULT_OUTPUT = "site"
MAX_PAGE_BYTES = 2 * 1024 * 1024
# A page's relative path: at most one folder, lower-case safe names only.
_PAGE = re.compile(r"[a-z0-9][a-z0-9._-]{0,150}(/[a-z0-9][a-z0-9._-]{0,150})?")
_LEFTOVER = re.compile(r"\..+\.(\d+)-[0-9a-f]{8}\.(building|old)")


@dataclass
class Written:
    output: Path
    pages: list[str] = field(default_factory=list)
    bytes: int = 0
    largest: tuple[str, int] = ("", 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "output": str(self.output),
            "pages": self.pages,
            "count": len(self.pages),
            "bytes": self.bytes,
            "largest": {"page": self.largest[0], "bytes": self.largest[1]},
        }


def output_folder(root: Path, output: str | os.PathLike[str] | None) -> Path:
    """The folder to write (default `site/` under the repository root), checked."""
    folder = Path(os.path.abspath(root / (output if output is not None else DEFAULT_OUTPUT)))
    if folder.is_symlink():
        raise UsageError(
            f"--output {folder} is a symbolic link",
            hint="the site replaces its folder as a whole, so it would replace the link, not "
            "write into its target: name the target itself, or a new folder",
        )
    resolved = folder.resolve()
    repo = root.resolve()
    if resolved == repo or repo.is_relative_to(resolved):
        raise UsageError(
            f"--output {folder} is the repository or holds it",
            hint="name a folder of its own, e.g. --output site",
        )
    if resolved.is_relative_to(repo):
        inside = resolved.relative_to(repo).parts
        if inside and inside[0] in (".git", ".dvc"):
            raise UsageError(
                f"--output {folder} is inside {inside[0]}/",
                hint="write the site elsewhere, e.g. --output site",
            )
    if resolved.exists() and not resolved.is_dir():
        raise UsageError(f"--output {folder} is a file", hint="name a folder, e.g. --output site")
    if resolved.is_dir() and any(resolved.iterdir()) and not (resolved / MARKER).exists():
        raise UsageError(
            f"--output {folder} is a folder that holds something else than a dvcckpt site",
            hint="name an empty or new folder; dvcckpt replaces only a site it wrote",
        )
    return folder


def write(
    folder: Path,
    pages: Iterable[tuple[str, str]],
    progress: Callable[[int], None] | None = None,
) -> Written:
    """Write every (relative path, HTML) page into a new folder and swap it in."""
    parent = folder.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_failure("create", parent, exc) from exc
    _sweep(parent, folder.name)
    building = _fresh(parent, folder.name, "building")
    written = Written(folder)
    try:
        (building / MARKER).write_text("written by dvcckpt site; replaced on every build\n")
        made: set[Path] = {building}
        for number, (relative, text) in enumerate(pages, start=1):
            _write_page(building, relative, text, made, written)
            if progress is not None:
                progress(number)
        fault_point("site-before-swap")  # the drills kill the build here
        _swap(building, folder)
    except OSError as exc:
        shutil.rmtree(building, ignore_errors=True)
        raise os_failure("write", folder, exc) from exc
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return written


def _write_page(building: Path, relative: str, text: str, made: set[Path], out: Written) -> None:
    if not _PAGE.fullmatch(relative) or relative in out.pages:
        raise ValueError(f"unsafe or repeated page path {relative!r}")  # a renderer bug
    data = text.encode("utf-8")
    if len(data) > MAX_PAGE_BYTES:
        raise StateError(
            f"the site's page {relative} would be {len(data) / 2**20:.1f} MiB, over the "
            f"{MAX_PAGE_BYTES / 2**20:.0f} MiB a page may be; nothing was written",
            hint="a card holds more than the site bounds: please report it with that card",
        )
    target = building / relative
    if target.parent not in made:
        target.parent.mkdir(exist_ok=True)
        made.add(target.parent)
    target.write_bytes(data)
    out.pages.append(relative)
    out.bytes += len(data)
    if len(data) > out.largest[1]:
        out.largest = (relative, len(data))


def _fresh(parent: Path, name: str, kind: str) -> Path:
    for _ in range(100):
        candidate = parent / f".{name}.{os.getpid()}-{os.urandom(4).hex()}.{kind}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise UsageError(f"no free temporary folder name in {parent}", hint="retry")


def _swap(building: Path, folder: Path) -> None:
    """Old site out, new site in; if the second rename fails the old one comes back."""
    old = None
    if os.path.lexists(folder):
        old = _fresh(folder.parent, folder.name, "old")
        old.rmdir()
        os.rename(folder, old)
    try:
        os.rename(building, folder)
    except OSError:
        if old is not None:
            os.rename(old, folder)
        raise
    if old is not None:
        _remove(old)


def _remove(path: str | os.PathLike[str]) -> None:
    """A leftover gone: a link or a file unlinked (never what it points to), a folder removed."""
    if os.path.islink(path) or not os.path.isdir(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _sweep(parent: Path, name: str) -> None:
    """Remove the folders of builds whose process died (a kill mid-build)."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(parent):
            found = _LEFTOVER.fullmatch(entry.name)
            if not found or not entry.name.startswith(f".{name}."):
                continue
            if int(found.group(1)) != os.getpid() and not process_alive(int(found.group(1))):
                _remove(entry.path)
