"""Remote storage commands (push, pull, get, verify, remote); registered on the main CLI."""

from __future__ import annotations
