"""`dvcckpt catalog publish`: this repository's card versions, decisions and stage history,
appended to the organisation's Apache Iceberg tables.

Incremental and idempotent: only rows whose keys the tables lack are appended (a
second publish adds nothing). The scope is every commit reachable from the main
branch (the one whose first-parent history decides stages). After a complete
publish whose head is still in the branch, only the commits since that head are
looked at (git's `rev-list HEAD --not LAST`; their keys read back before
appending); otherwise (first publish, rewritten history) every key this
repository published is read and every commit without one is new. Decisions and
stage events are recomputed only when card versions that record decisions
arrived since the last complete publish (whose head the `repositories` row
keeps, written last), so a publish interrupted half-way is completed by the next.

The row a complete publish writes is also named in its commit's snapshot summary
(`adapters.icebergstate`): read from a SQLite catalog and a local warehouse
without pyiceberg, it tells a publish with nothing new (same head, same
identity) at once, and lets the others skip reading it back and preparing the
tables (committed through sqlite3: `adapters.icebergsqlite`). Whenever that
record cannot be trusted, the tables themselves decide.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dvcckpt.adapters import git, iceberg, icebergstate
from dvcckpt.core import redaction
from dvcckpt.errors import StateError
from dvcckpt.project import Project
from dvcckpt.promotion import stages
from dvcckpt.publish import tablerows
from dvcckpt.publish.tables import KEYS, NAMESPACE, TABLES
from dvcckpt.publish.warehouse import Warehouse, locate, open_target

Progress = Callable[[str], None]


@dataclass
class Summary:
    repo_id: str
    name: str
    warehouse: str  # as shown (no credentials)
    branch: str
    head: str
    commits: int = 0  # commits published for the first time
    rows: dict[str, int] = field(default_factory=dict)  # rows added per table
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def publish(
    project: Project,
    warehouse: str | None = None,
    uri: str | None = None,
    progress: Progress | None = None,
    moved: bool = False,
) -> Summary:
    """Append what the warehouse does not have yet of this repository; return what was added.

    `moved`: this repository now lives at another address than the one it published
    from (else a different address under the same id is refused as another repository).
    """
    start = time.perf_counter()
    say = progress or (lambda _: None)
    target = locate(project, warehouse, uri)
    branch = stages.main_branch(project)
    head = git.commit_of(project.root, branch)
    if head is None:
        raise StateError(f"the branch {branch} has no commits to publish",
                         hint="commit a card first, or set promotion.main_branch")  # fmt: skip
    identity = repository(project, branch, head)
    summary = Summary(identity["repo_id"], identity["name"], target.shown, branch, head)
    say(f"publishing {summary.name} ({branch} at {head[:10]}) to {target.shown}")
    recorded = _recorded(target, identity["repo_id"])
    if _same(recorded, identity):
        summary.rows = dict.fromkeys(("card_versions", "decisions", "stage_events",
                                      "repositories"), 0)  # fmt: skip
    else:  # with a record, every table is known complete: only existing ones are loaded
        opened = open_target(target, existing=recorded is not None)
        _publish(project, opened, identity, summary, say, moved, recorded)
    summary.seconds = round(time.perf_counter() - start, 3)
    return summary


def _recorded(target: iceberg.Target, repo_id: str) -> dict[str, Any] | None:
    """The row this repository's last complete publish recorded, if its catalog's files tell
    for sure without pyiceberg (`adapters.icebergstate`); None: ask pyiceberg."""
    return icebergstate.published_row(target.uri, target.warehouse, iceberg.CATALOG_NAME,
                                      NAMESPACE, TABLES, iceberg.PROPERTIES, repo_id)  # fmt: skip


def _same(last: dict[str, Any] | None, identity: dict[str, Any]) -> bool:
    """The last complete publish was of this head, with this identity: nothing is new."""
    return last is not None and all(
        last.get(k) == v for k, v in identity.items() if k != "published_at"
    )


def _publish(
    project: Project, opened: Warehouse, identity: dict[str, Any], summary: Summary,
    say: Progress, moved: bool, recorded: dict[str, Any] | None,
) -> None:  # fmt: skip
    if recorded is None:  # else every table has every column already
        opened.ensure()
    target, repo_id = opened.target, summary.repo_id
    last = recorded if recorded is not None else _published_row(opened, repo_id)
    versions_table = opened.tables(["card_versions"])["card_versions"]
    if not moved:
        _refuse_another(last, identity)
    catalog = project.catalog
    since = _since(project, last, summary.head)
    in_branch: set[str] | None = None
    published: set[tuple[Any, ...]] | None = None  # keys already written (None: read them)
    if since is None:  # no complete publish of this history: every key decides
        in_branch = since = catalog.reachable([summary.branch])
        published = iceberg.read_keys(versions_table, target, repo_id, ("commit", "path"))
        new = in_branch - {commit for commit, _ in published}
    else:  # what the last complete publish covered is in the tables: only what came since
        new = since
    versions, decided = tablerows.card_versions(catalog, repo_id, new)
    count = len(versions["commit"])
    summary.commits = len(set(versions["commit"]))
    if count:
        say(f"  {count} card versions of {summary.commits} commits")
    summary.rows["card_versions"] = iceberg.append_new(
        versions_table, target, versions, KEYS["card_versions"], repo_id, published
    )
    if since != new:  # the last publish stopped half-way: look at every commit since it
        decided = tablerows.card_versions(catalog, repo_id, since, decisions_only=True)[1]
    summary.rows["decisions"] = summary.rows["stage_events"] = 0
    if decided:
        in_branch = in_branch or catalog.reachable([summary.branch])
        _publish_decisions(project, opened, summary, decided, in_branch, say)
    unchanged = _same(last, identity)
    if not unchanged:  # written last, its snapshots naming the row (`adapters.icebergstate`)
        table = opened.tables(["repositories"])["repositories"]
        iceberg.replace_rows(table, target, _one_row(identity), icebergstate.summary_of(identity))
    summary.rows["repositories"] = 0 if unchanged else 1


def _publish_decisions(
    project: Project,
    opened: Warehouse,
    summary: Summary,
    decided: list[tablerows.WithDecisions],
    in_branch: set[str],
    say: Progress,
) -> None:
    tables, target, repo_id = opened.tables(), opened.target, summary.repo_id
    say(f"  replaying the stage history of {summary.branch}")
    history = stages.decisions(project, summary.branch)
    catalog = project.catalog
    rows = tablerows.decision_rows(catalog, repo_id, decided, in_branch, history)
    summary.rows["decisions"] = iceberg.append_new(
        tables["decisions"], target, rows, KEYS["decisions"], repo_id
    )
    generations = tablerows.generations(catalog, (d.commit for d in history))
    events = tablerows.stage_event_rows(repo_id, history, generations)
    summary.rows["stage_events"] = iceberg.append_new(
        tables["stage_events"], target, events, KEYS["stage_events"], repo_id
    )


def _refuse_another(last: dict[str, Any] | None, identity: dict[str, Any]) -> None:
    """Refuse to publish under an id another repository publishes as: a fork or a copy
    shares the root commit (the default id), and would silently replace its cards.

    Told by the origin address (credentials stripped); when either side has none the
    two cannot be told apart, and publishing goes on.
    """
    theirs, ours = (last or {}).get("url"), identity["url"]
    if not theirs or not ours or theirs == ours:
        return
    raise StateError(
        f"repository id {identity['repo_id']} is already published from {theirs} "
        f"(this repository's origin is {ours})",
        hint="a fork or a copy: set catalog.repository in dvcckpt.yaml to its own id "
        "(e.g. owner/name); the same repository at a new address: publish once with --moved",
    )


def _published_row(opened: Warehouse, repo_id: str) -> dict[str, Any] | None:
    """This repository's `repositories` row (written last by a complete publish), if any."""
    table = opened.tables(["repositories"])["repositories"]
    found = iceberg.scan_to_arrow(table, opened.target, equals={"repo_id": [repo_id]})
    rows: list[dict[str, Any]] = found.to_pylist()
    return rows[0] if rows else None


def _since(project: Project, last: dict[str, Any] | None, head: str) -> set[str] | None:
    """Commits of the branch since the head of the last complete publish; None when there is
    none to go by (never published, or that head left the branch: history rewritten)."""
    done = last.get("head") if last else None
    if not isinstance(done, str) or not _SHA.fullmatch(done):  # the warehouse is untrusted
        return None
    if git.run(project.root, ["merge-base", "--is-ancestor", done, head]).returncode != 0:
        return None
    return set(git.run_git(project.root, "rev-list", head, "--not", done, "--").split())


# -- the repository itself ------------------------------------------------------------------

_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_OWNER_NAME = re.compile(r"([^/:]+/[^/:]+?)(?:\.git)?/?$")


def repository(project: Project, branch: str, head: str) -> dict[str, Any]:
    """The `repositories` row: a stable id, a readable name, the origin without secrets."""
    configured = project.config.catalog.repository
    url = redaction.strip_credentials(git.remote_url(project.root))
    named = _OWNER_NAME.search(url) if url else None
    return {
        "repo_id": configured or root_commit(project, head),
        "name": configured or (named.group(1) if named else project.config.project),
        "url": url,
        "default_branch": branch,
        "head": head,
        "published_at": int(dt.datetime.now(dt.timezone.utc).timestamp() * 1_000_000),
        "dvcckpt_version": _version(),
        "project": project.config.project,
    }


def root_commit(project: Project, head: str) -> str:
    """The root of the first-parent chain: merging another history never changes it."""
    roots = git.run_git(project.root, "rev-list", "--first-parent", "--max-parents=0", head, "--")
    return roots.split()[0]


def _one_row(values: dict[str, Any]) -> dict[str, list[Any]]:
    return {column: [value] for column, value in values.items()}


def _version() -> str:
    # The installed distribution's version: the package root is the public API, above
    # this layer.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dvcckpt")
    except PackageNotFoundError:  # run from a source folder without installing
        return "unknown"
