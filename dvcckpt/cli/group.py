"""The root click group; command modules register their commands on it."""

from __future__ import annotations

import json
from typing import Any

import click

from dvcckpt import __version__


def emit_json(value: Any) -> None:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a file name that is not UTF-8: JSON escapes say it exactly
        text = json.dumps(value, indent=2)
    click.echo(text)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="dvcckpt")
def cli() -> None:
    """Git-native checkpoint registry built on DVC.

    Each checkpoint is a DVC output with a YAML card committed beside it that
    records its code, data, params, seeds, environment and metrics.
    """
