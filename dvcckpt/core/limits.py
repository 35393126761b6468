"""Resource limits on untrusted input, in one place so every reader enforces the same ones."""

from __future__ import annotations

# A card (or config, gates, `.dvc` file) larger than this is refused before parsing;
# dvcckpt.yaml may lower it for cards (`card_max_bytes`).
DEFAULT_MAX_BYTES = 1 << 20
# The most any configuration may allow: committed card versions are read with this
# fixed limit, so a change that shrinks `card_max_bytes` cannot make them unreadable
# (and so skip their immutability check).
HARD_MAX_BYTES = 16 << 20
