"""Remote storage commands (push, pull, get, verify, remote); registered on the main CLI.

Each command parses its options, calls a `dvcckpt.storage` module and renders the result;
nothing heavy is imported until a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dvcckpt.cli.group import cli, emit_json

_REMOTE = click.option(
    "-r", "--remote", metavar="NAME", help="DVC remote to use (default: the repository's default)."
)
_JOBS = click.option(
    "-j", "--jobs", type=click.IntRange(min=1), help="Parallel transfers (default: DVC's)."
)


def _project() -> Any:
    from dvcckpt.project import Project

    return Project.discover()


def _summary(transfer: Any, verb: str, as_json: bool) -> None:
    if as_json:
        emit_json(transfer.as_dict())
        return
    names = ", ".join(transfer.checkpoints) or "nothing"
    click.echo(f"{verb} {names} ({transfer.files} file(s) transferred, sha256 verified)")
    for name in transfer.skipped:
        click.echo(f"skipped {name}: not in the local cache", err=True)
    if transfer.note:
        click.echo(f"note: {transfer.note}", err=True)


@cli.command("push")
@click.argument("references", nargs=-1, metavar="[NAME...]")
@click.option(
    "--stage",
    metavar="STAGE",
    help="Push the checkpoints holding STAGE (of the models named, or of every model).",
)
@click.option("--all", "everything", is_flag=True, help="Push every checkpoint with a local copy.")
@_REMOTE
@_JOBS
@click.option("--json", "as_json", is_flag=True, help="Print a summary as JSON.")
def push_command(
    references: tuple[str, ...],
    stage: str | None,
    everything: bool,
    remote: str | None,
    jobs: int | None,
    as_json: bool,
) -> None:
    """Upload checkpoints to a DVC remote.

    The cache copy of each checkpoint is re-hashed with sha256 and compared
    with its card first: a corrupted copy is never uploaded (exit 1). Objects
    the remote already holds are re-checked (ETag or content); a corrupted one
    is replaced with the verified cache copy, its bad bytes kept in
    .dvc/tmp/dvcckpt-quarantine/. Re-running after an interruption sends only
    what is missing.
    """
    from dvcckpt.storage import select, transfer

    project = _project()
    chosen = select.select(project, references, everything, stage)
    result = transfer.push(project, chosen, remote, jobs, skip_missing=everything)
    _summary(result, f"pushed to {result.remote}:", as_json)


@cli.command("pull")
@click.argument("references", nargs=-1, metavar="NAME[@REV|@STAGE]...")
@click.option("--all", "everything", is_flag=True, help="Pull every registered checkpoint.")
@_REMOTE
@_JOBS
@click.option("--json", "as_json", is_flag=True, help="Print a summary as JSON.")
def pull_command(
    references: tuple[str, ...], everything: bool, remote: str | None, jobs: int | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Download checkpoints into the work tree and verify them.

    Each object is taken from the cache when intact, else downloaded, and
    checked (md5, then the card's sha256, size and file count) in a staging
    folder under .dvc/tmp before the checkpoint is moved into place. A
    corrupted cache copy is replaced; on a mismatch everything downloaded is
    moved to .dvc/tmp/dvcckpt-quarantine/, the remote object to replace is
    named and the command exits 1. Nothing is deleted on the remote, and a
    modified work-tree copy is never overwritten.
    """
    from dvcckpt.storage import select, transfer

    project = _project()
    chosen = select.select(project, references, everything)
    result = transfer.pull(project, chosen, remote, jobs)
    _summary(result, f"pulled from {result.remote}:", as_json)


@cli.command("get")
@click.argument("repo_url", metavar="REPO_URL")
@click.argument("reference", metavar="NAME[@REV|@STAGE]")
@click.option(
    "-o", "--out", required=True, type=click.Path(path_type=Path), help="Where to save it."
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace OUT if it is an earlier copy of this checkpoint (only once verified).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a summary as JSON.")
def get_command(repo_url: str, reference: str, out: Path, force: bool, as_json: bool) -> None:
    """Download a checkpoint from another repository, without cloning it by hand.

    REPO_URL is a local path (its work tree, like `dvc get`) or a git URL
    (cloned to a temporary folder). The card is read from that repository and
    the download is verified against its sha256 before it is written to OUT.
    Remote credentials come from that repository's .dvc/config.local (local
    paths) or the AWS_* variables.
    """
    from dvcckpt.storage import download

    result = download.get(repo_url, reference, out, force=force)
    if as_json:
        emit_json(result.as_dict())
    else:
        click.echo(f"{result.checkpoints[0]} -> {result.location} (sha256 verified)")


@cli.command("verify")
@click.argument("references", nargs=-1, metavar="[NAME...]")
@click.option("--all", "everything", is_flag=True, help="Verify every registered checkpoint.")
@click.option(
    "--remote",
    "check_remote",
    is_flag=True,
    help="Also stream and hash the remote copies (nothing is written to disk).",
)
@click.option(
    "-r",
    "--remote-name",
    metavar="NAME",
    help="Remote for --remote (default: the repository's default; implies --remote).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts as JSON.")
def verify_command(
    references: tuple[str, ...],
    everything: bool,
    check_remote: bool,
    remote_name: str | None,
    as_json: bool,
) -> None:
    """Recompute sha256 of each checkpoint's copies and compare with its card.

    Checks the work-tree and DVC-cache copies (and with --remote the remote
    copy) and reports each as ok, missing or corrupted. Exits 1 when a copy is
    corrupted, when no copy is intact, when a live checkpoint's work-tree copy is
    missing (if a framework deleted it: `dvcckpt retire --missing --reason TEXT`),
    or when --remote finds the remote copy missing. Retired and pruned checkpoints
    are listed as such and never fail.

    \b
    Example:
      dvcckpt verify --all --remote
    """
    from dvcckpt.errors import CheckFailed
    from dvcckpt.storage import verify

    check_remote = check_remote or remote_name is not None
    verdicts = verify.verify_references(
        _project(), references, everything, remote=remote_name, check_remote=check_remote
    )
    bad = verify.failed(verdicts, remote_required=check_remote)
    if as_json:
        emit_json({"ok": not bad, "checkpoints": [v.as_dict() for v in verdicts]})
    else:
        click.echo(_verdict_table(verdicts))
    if bad:
        raise CheckFailed(
            f"{len(bad)} of {len(verdicts)} checkpoint(s) failed verification: "
            + ", ".join(v.checkpoint.name for v in bad),
            hint="`dvcckpt pull NAME` replaces corrupted cache copies with verified downloads "
            "(move a corrupted work-tree copy aside first); `dvcckpt push NAME` from an intact "
            "copy replaces a corrupted remote object",
        )


def _verdict_table(verdicts: list[Any]) -> str:
    places = [p for p in ("workspace", "cache", "remote") if any(v.copy(p) for v in verdicts)]
    width = max([len(v.checkpoint.name) for v in verdicts] + [10])
    lines = [f"{'checkpoint':<{width}}  " + "  ".join(f"{p:<9}" for p in places)]
    for verdict in verdicts:
        cells = [(verdict.copy(p).status if verdict.copy(p) else "-") for p in places]
        lines.append(f"{verdict.checkpoint.name:<{width}}  " + "  ".join(f"{c:<9}" for c in cells))
        for copy in verdict.copies:
            if copy.status != "ok":
                lines.append(f"  {copy.where} {copy.status}: {copy.detail} [{copy.location}]")
    return "\n".join(lines)


@cli.group("remote")
def remote_group() -> None:
    """Configure DVC remotes; credentials stay in the git-ignored .dvc/config.local."""


@remote_group.command("add")
@click.argument("name")
@click.argument("url", metavar="URL")
@click.option("--endpoint", metavar="URL", help="S3 endpoint, e.g. https://s3.example.com.")
@click.option("-d", "--default", is_flag=True, help="Make it the repository's default remote.")
@click.option("--access-key-id", metavar="ID", help="Access key (kept in .dvc/config.local).")
@click.option(
    "--secret-access-key",
    metavar="SECRET",
    envvar="DVCCKPT_SECRET_ACCESS_KEY",
    help="Secret key (kept in .dvc/config.local); prompted for when omitted with "
    "--access-key-id, or read from DVCCKPT_SECRET_ACCESS_KEY.",
)
@click.option("--sse", metavar="ALGORITHM", help="Server-side encryption: AES256 or aws:kms.")
@click.option(
    "--version-aware",
    is_flag=True,
    help="Use S3 object versions (the bucket must have versioning enabled).",
)
@click.option("--force", is_flag=True, help="Replace an existing remote of that name.")
@click.option("--json", "as_json", is_flag=True, help="Print the remote (secrets masked) as JSON.")
def remote_add_command(name: str, url: str, **options: Any) -> None:
    """Add a DVC remote, e.g. s3://bucket/path with --endpoint for S3-compatible stores."""
    from dvcckpt.storage import remotes

    as_json = options.pop("as_json")
    if options["access_key_id"] and not options["secret_access_key"]:
        options["secret_access_key"] = click.prompt("Secret access key", hide_input=True)
    added = remotes.add_remote(_project(), name, url, **options)
    if as_json:
        emit_json(added.as_dict())
        return
    shown = added.shown_url
    click.echo(f"added remote {name}: {shown}" + (" (default)" if options["default"] else ""))
    if options["access_key_id"]:
        click.echo("credentials written to .dvc/config.local (git-ignored)")


@remote_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the remotes (secrets masked) as JSON.")
def remote_list_command(as_json: bool) -> None:
    """List the DVC remotes, their settings and where each setting lives."""
    from dvcckpt.adapters import dvcrepo as store

    settings = store.remote_settings(_project().dvc_root)
    if as_json:
        emit_json(
            {
                "default": settings.default,
                "remotes": [r.as_dict() for r in settings.remotes.values()],
            }
        )
        return
    for remote in settings.remotes.values():
        marker = " (default)" if remote.name == settings.default else ""
        click.echo(f"{remote.name}{marker}  {remote.shown_url}")
        for key, value in remote.as_dict()["settings"].items():
            if key != "url":
                click.echo(f"  {key} = {value}  [{remote.levels.get(key, '?')}]")
