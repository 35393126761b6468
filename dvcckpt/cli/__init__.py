"""The command line: a thin layer of click commands over the library."""

from dvcckpt.cli.group import cli
from dvcckpt.cli.main import main

__all__ = ["cli", "main"]
