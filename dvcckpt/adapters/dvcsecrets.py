"""The committed DVC configuration (`.dvc/config` alone), for `doctor`'s credential check.

Credentials belong in the git-ignored `.dvc/config.local`; what `.dvc/config`
holds is pushed with the repository, so it is read here level by itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dvcckpt.errors import ConfigError


def committed_config(dvc_root: Path) -> dict[str, Any]:
    """`.dvc/config` as DVC parses it (`{"remote": {NAME: {...}}, "studio": {...}, ...}`)."""
    from dvc.config import Config
    from dvc.config import ConfigError as DvcConfigError

    try:
        loaded: dict[str, Any] = Config(dvc_dir=str(dvc_root / ".dvc"), validate=False).load_one(
            "repo"
        )
    except DvcConfigError as exc:
        raise ConfigError(f".dvc/config: {exc}", hint="fix the file's syntax") from exc
    return loaded
