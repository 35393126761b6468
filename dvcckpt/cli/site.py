"""`dvcckpt site`: the static catalog site (no server, no CDN, works offline)."""

from __future__ import annotations

import contextlib
import hashlib
import sys
from pathlib import Path
from typing import Any

import click

from dvcckpt.cli.group import cli, emit_json


@cli.command("site")
@click.option(
    "--output",
    "-o",
    metavar="DIR",
    help="Folder to write (default: site/ at the repository root); replaced as a whole.",
)
@click.option(
    "--all", "all_refs", is_flag=True, help="Cards of all branches and tags, not only HEAD."
)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def site_command(output: str | None, all_refs: bool, as_json: bool) -> None:
    """Write a static catalog site: models, checkpoints, plots, stages, gates.

    index.html lists the models and who holds each stage; each model's page has
    a sortable, filterable table of its checkpoints, performance-history plots
    (inline SVG, with confidence-interval bands) and the stage history with
    signature status; each checkpoint's page renders its card, evaluations, gate
    results per stage, lineage and model card. Every page is self-contained
    (inline styles, a small inline script for sorting), so the folder works from
    file://, GitHub Pages or any bucket.

    \b
    Examples:
      dvcckpt site                      # writes site/index.html
      dvcckpt site --output public --all
    """
    from dvcckpt.present import modelcard
    from dvcckpt.present import site as pages
    from dvcckpt.project import Project
    from dvcckpt.publish import site as gathering
    from dvcckpt.publish import sitefiles

    project = Project.discover(require_dvc=False)
    folder = sitefiles.output_folder(project.root, output)  # refuse a bad --output first
    with _Bars() as bars:
        data = gathering.gather(
            project,
            modelcard.render,
            _renderer_version(),
            all_refs=all_refs,
            progress=bars.gathering,
        )
        total = 1 + len(data.models) + sum(len(m.checkpoints) for m in data.models)
        written = sitefiles.write(folder, pages.pages(data), bars.writing(total))
    if as_json:
        emit_json(written.as_dict())
        return
    size = written.largest[1] / 1024
    click.echo(
        f"wrote {len(written.pages)} pages to {written.output} "
        f"(largest {written.largest[0]}, {size:.0f} KiB); open {written.output / 'index.html'}"
    )


def _renderer_version(*sources: str | Path) -> str:
    """Names the model-card renderer's code (by default `renderer_sources()`) and the
    YAML library's version, so a changed renderer never reuses old texts."""
    from importlib import metadata

    from dvcckpt import __version__

    digest = hashlib.sha256(__version__.encode())
    with contextlib.suppress(metadata.PackageNotFoundError):
        digest.update(metadata.version("ruamel.yaml").encode())
    for source in sources or renderer_sources():
        digest.update(str(Path(source).name).encode())
        with contextlib.suppress(OSError):
            digest.update(Path(source).read_bytes())
    return digest.hexdigest()[:16]


def renderer_sources() -> list[Path]:
    """Every dvcckpt source file and the model card template: any change to the code
    (the renderer, its YAML writer, its text helpers...) names a new renderer. Reading
    ~160 files costs a few milliseconds; a stale cached model card would cost trust."""
    import dvcckpt
    from dvcckpt.core import resources

    package = Path(dvcckpt.__file__).parent
    return [*sorted(package.rglob("*.py")), resources.template_path("model_card.md")]


class _Bars:
    """Progress on stderr, on a terminal only: `reading checkpoints 300/1000`, then the
    pages written, on one line that is cleared at the end."""

    def __init__(self) -> None:
        self.shown = sys.stderr.isatty()
        self.last = ""

    def __enter__(self) -> _Bars:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.shown and self.last:
            click.echo("\r" + " " * len(self.last) + "\r", nl=False, err=True)

    def _show(self, text: str) -> None:
        if self.shown:
            click.echo("\r" + text.ljust(len(self.last)), nl=False, err=True)
            self.last = text

    def gathering(self, what: str, done: int, total: int) -> None:
        self._show(f"reading {what} {done}/{total}")

    def writing(self, total: int) -> Any:
        def written(done: int) -> None:
            if done % 100 == 0 or done == total:
                self._show(f"writing pages {done}/{total}")

        return written
