"""`dvcckpt org find`: the organisation's checkpoints, across every published repository.

The warehouse's Iceberg tables (`publish.tables`) are scanned into DuckDB
(`adapters.duckdbscan`: only the columns the query names, from the slim copy
of each data file when the query reads only the `hot` card sections; `--repo`
skips the data files of other repositories while the scan is planned, the
tables being partitioned by repository; `--model` and `--stage` narrow the rows
read, the current version being chosen from `card_keys`, every version's keys) and the query runs there: each card's current version in its
repository (the highest `generation` per `(repo_id, path)`; a deletion or an
unreadable card removes it) is found over the narrow key columns first, the
card's JSON is read for those versions only, and the `where` expression,
compiled by `publish.orgsql`, filters them as `find` would in each repository.
Stage holders come from `stage_events` (the last counted event per
`(repo_id, model, stage)` names the holder).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dvcckpt.adapters import duckdbscan
from dvcckpt.adapters.duckdbcache import Combined, Derived
from dvcckpt.catalog.where import (
    Compare,
    Field,
    Literal,
    Logical,
    SortKey,
    parse,
    parse_top,
    sort_keys,
)
from dvcckpt.catalog.where import fields as where_fields
from dvcckpt.core.fields import card_path
from dvcckpt.errors import UsageError
from dvcckpt.publish.orgfields import json_value, require
from dvcckpt.publish.orgsql import HOT_SQL, POINTS_SQL, Compiler, card_object

if TYPE_CHECKING:
    from dvcckpt.publish.warehouse import Warehouse

# Columns of `card_versions` every listing reads (the card only when it is needed).
LISTED = ("repo_id", "commit", "path", "generation", "committed_at", "status", "error", "name",
          "model", "phase", "kind", "step", "created_at", "tags")  # fmt: skip
EVENTS = ("repo_id", "commit", "generation", "seq", "model", "stage", "name", "action", "by",
          "at", "reason", "counts", "verified", "problem", "holder")  # fmt: skip
# Each data file's slim copy, kept in the local cache: the card's `hot` sections only, and
# the numbers of its metrics (`points`, so a threshold or ranking parses no JSON).
HOT_RECIPE = Derived("hot-4", drop=("card",), add={"hot": HOT_SQL, "points": POINTS_SQL})
# The current version of each card path in each repository, over the key columns only.
KEYS = ("repo_id", "commit", "path", "generation", "committed_at")
LATEST = """latest AS (
    SELECT repo_id, path, arg_max("commit", (generation,
           coalesce(committed_at, TIMESTAMPTZ '0001-01-01 00:00:00+00'), "commit")) AS "commit"
    FROM card_keys GROUP BY repo_id, path)"""
# Each card's current version among one repository's slim copies, cached per repository
# (a table commit adds files to the repositories it touches only).
CURRENT = Combined(
    "current-2",
    f"""WITH {LATEST.replace("card_keys", "data")}
    SELECT d.*, CASE WHEN d.points IS NULL THEN d.hot END AS odd,
           row_number() OVER () AS "row"
    FROM data d SEMI JOIN latest l
    ON d.repo_id = l.repo_id AND d."commit" = l."commit" AND d.path = l.path
    WHERE d.error IS NULL AND d.status != 'D' AND d.hot IS NOT NULL""",
)  # `odd`: the hot sections a query reads when `points` cannot say; `row` names a row
# Who holds each stage now: the holder after the last counted event of (repo, model, stage).
HELD = """holders AS (
    SELECT repo_id, model, stage, holder FROM stage_events WHERE counts AND stage IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY repo_id, model, stage
        ORDER BY generation DESC, seq DESC) = 1),
held AS (
    SELECT repo_id, model, holder AS name, string_agg(stage, ', ' ORDER BY stage) AS stages,
           list(stage) AS stage_list
    FROM holders WHERE holder IS NOT NULL GROUP BY ALL)"""


@dataclass(frozen=True)
class Match:
    """One checkpoint of the organisation: its current card version in its repository."""

    repo_id: str
    repository: str
    commit: str
    path: str
    name: str | None
    model: str | None
    phase: str | None
    step: int | None
    created_at: str | None
    stages: str | None  # the stages it holds, "production, staging"
    values: tuple[Any, ...]  # the requested columns, decoded
    card: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return {"repo_id": self.repo_id, "repository": self.repository, "commit": self.commit,
                "path": self.path, "name": self.name, "model": self.model, "stage": self.stages,
                "card": self.card}  # fmt: skip


@dataclass
class Scope:
    """An opened warehouse, the repositories a query reads and their names."""

    warehouse: Warehouse
    db: Any  # a DuckDB connection
    names: dict[str, str]  # repo_id -> the name shown
    chosen: list[str] | None  # repo ids `--repo` picked (None: every repository)
    body: str = "card"  # the JSON column `card_versions` was registered with (card or hot)
    pending: tuple[tuple[str, ...], bool, dict[str, Sequence[Any]]] | None = None

    def equals(self, **more: Sequence[Any]) -> dict[str, Sequence[Any]]:
        found: dict[str, Sequence[Any]] = {k: v for k, v in more.items() if v}
        if self.chosen is not None:
            found["repo_id"] = self.chosen
        return found

    def register(
        self, view: str, columns: Sequence[str], slim: bool = False, table: str | None = None,
        current: bool = False, /, **equals: Sequence[Any],
    ) -> None:  # fmt: skip
        """Table `table` (default: `view`) as the view `view`; `slim`: read from the cached
        slim copies of its data files; `current`: each card's current version only (from
        the cache too); `equals`: only rows whose column holds a value listed."""
        name = table or view
        duckdbscan.register(self.db, view, lambda: self.warehouse.tables([name])[name],
                            self.warehouse.target, columns=columns, equals=self.equals(**equals),
                            derived=HOT_RECIPE if slim else None, planned_by=("repo_id",),
                            combined=(CURRENT, "repo_id") if current else None)  # fmt: skip

    def versions(
        self, columns: Sequence[str], body: str, current: bool = False, /,
        **equals: Sequence[Any],
    ) -> None:  # fmt: skip
        """`card_versions` with `columns` and one JSON column, the card or its hot sections
        and their `points` (only rows whose columns hold one of the `equals` values), and
        `card_keys`: the key columns of every version, for choosing each card's current
        version. `current` (hot sections only): `card_current` holds those current
        versions, and the other two are registered when first asked for (`every_version`)."""
        self.body = body
        slim = body == "hot"
        read = (*columns, body, "points") if slim else (*columns, body)
        self.pending = (read, slim, equals)
        if current and slim:
            chosen = (*read, "odd", "row")
            self.register("card_current", chosen, slim, "card_versions", True, **equals)
        else:
            self.every_version()

    def every_version(self) -> None:
        """`card_versions` and `card_keys`, as the last `versions` call asked for them."""
        if self.pending is not None:
            read, slim, equals = self.pending
            self.pending = None
            self.register("card_versions", read, slim, **equals)
            self.register("card_keys", KEYS, slim, "card_versions")


def open_scope(warehouse: Warehouse, repo: str | None) -> Scope:
    """The repositories published to `warehouse`, narrowed to `repo` (an id or a name)."""
    db = duckdbscan.connect()
    scope = Scope(warehouse, db, {}, None)
    scope.register("repositories", ("repo_id", "name"))
    listed = duckdbscan.rows(db, "SELECT repo_id, name FROM repositories ORDER BY name, repo_id")
    scope.names = {repo_id: name or repo_id[:12] for repo_id, name in listed}
    if repo is not None:
        scope.chosen = [r for r, name in listed if repo in (r, name)]
        if not scope.chosen:
            shown = ", ".join(sorted(scope.names.values())[:10]) or "none yet"
            raise UsageError(f"--repo {repo!r}: no repository of that id or name is published",
                             hint=f"published repositories: {shown}")  # fmt: skip
    return scope


def find(
    scope: Scope,
    *,
    where: str | None = None,
    model: str | None = None,
    phase: str | None = None,
    tag: str | None = None,
    stage: str | None = None,
    sort: str | None = None,
    top: str | None = None,
    by: str | None = None,
    limit: int | None = None,
    columns: Sequence[str] = (),
    cards: bool = False,
) -> list[Match]:
    """Current checkpoints of every repository in scope matching the filters, best first by
    `by`, then `sort`, then newest (`find`'s options and meaning, plus `--stage`)."""
    tree = parse(where) if where else None
    ranking, keys = _keys(top, by, sort)
    options = (tree, model, phase, tag, stage, ranking, keys, columns, top, limit, cards)
    sql = Compiler()
    _compile(sql, *options)
    if sql.slim() and not cards:  # compiled again, to read the slim copies' columns
        sql = Compiler(source="hot", points=True)
        _compile(sql, *options)
    asked = [("--where", f) for f in (where_fields(tree) if tree is not None else [])]
    asked += [("--by" if key is ranking else "--sort", key.field) for key in keys]
    scope.register("stage_events", EVENTS)
    narrowed = {"model": [model] if model is not None else []}
    if stage is not None:
        narrowed["name"] = _holders(scope, stage) or [""]  # no holder: the join keeps nothing
    scope.versions(LISTED, sql.source, True, **narrowed)
    found = duckdbscan.rows(scope.db, sql.statement, sql.params)
    if any(narrowed.values()):  # unknown fields are looked for among every card
        scope.versions(LISTED, sql.source, True)
    require(scope, asked)
    return [_match(scope, row, len(columns), cards) for row in found]


def _compile(
    sql: Compiler, tree: Any, model: str | None, phase: str | None, tag: str | None,
    stage: str | None, ranking: SortKey | None, keys: list[SortKey], columns: Sequence[str],
    top: str | None, limit: int | None, cards: bool,
) -> None:  # fmt: skip
    """The statement of one query, as `sql.statement` (its values in `sql.params`)."""
    parts = tree.parts if isinstance(tree, Logical) and tree.op == "and" else (tree,)
    conditions = [sql.condition(part) for part in parts if part is not None]
    for name, value in (("model", model), ("phase", phase)):
        if value is not None:
            conditions.append(sql.condition(Compare("==", Field(name), Literal(value))))
    if tag is not None:
        conditions.append(sql.condition(Compare("in", Literal(tag), Field("tags"))))
    if stage is not None:
        conditions.append(f"coalesce(list_contains(stage_list, {sql.param(stage)}), false)")
    if ranking is not None:
        conditions.append(sql.present(ranking.field))
    order = sql.order(keys)
    values = [f"f{sql.value(Field(c))}_r" for c in columns]
    sql.statement = _statement(sql, conditions, order, values, cards, _cut(sql, top, limit))


def _keys(
    top: str | None, by: str | None, sort: str | None
) -> tuple[SortKey | None, list[SortKey]]:
    """The ranking key (`--by`: higher first unless `+FIELD`) and every sort key."""
    if top and not by:
        raise UsageError("--top needs --by METRIC", hint="for example --top 5 --by metrics.dev.f1")
    ranking = sort_keys(by)[0] if by else None
    if ranking is not None and not (by or "").startswith(("-", "+")):
        ranking = SortKey(ranking.field, True)
    return ranking, ([ranking] if ranking else []) + sort_keys(sort)


def _cut(sql: Compiler, top: str | None, limit: int | None) -> str:
    """Which ranked rows are kept: the best N or P% (`--top`), at most `limit`."""
    count, percent = parse_top(top)
    kept = "true"
    if count is not None:
        kept = f"position <= {sql.param(count)}"
    elif percent is not None:
        kept = f"position <= greatest(1, ceil(total * {sql.param(percent)} / 100.0))"
    return kept + (
        f" ORDER BY position LIMIT {sql.param(limit)}" if limit else " ORDER BY position"
    )


def _statement(
    sql: Compiler, conditions: list[str], order: list[str], values: list[str], cards: bool, cut: str
) -> str:
    """One statement: the current readable versions (precomputed per repository from the
    slim copies, else chosen here), filtered and ordered; the values shown are read for
    the rows kept only (and the hot sections fetched for them only, when no condition
    reads them)."""
    current = sql.source == "hot"
    body = "card" if cards else "NULL::VARCHAR AS card"
    # Conditions on table columns (model, stage, tags...) first: the card's JSON is then
    # parsed only for the cards they keep.
    cheap = " AND ".join(f"({c})" for c in conditions if not sql.reads_json(c)) or "true"
    filters = " AND ".join(f"({c})" for c in conditions if sql.reads_json(c)) or "true"
    # A total order (path breaks ties within a commit, as `find` does): a listing and
    # its --json twin never differ by the plan DuckDB picks.
    newest = [*order, "generation DESC", "committed_at DESC NULLS LAST", '"commit" DESC',
              "path DESC", "repo_id"]  # fmt: skip
    used = set(re.findall(r"\bf\d+_[rnt]\b", " ".join([*conditions, *order])))
    early = "".join(f", {c}" for c in sql.columns if c.rsplit(" AS ", 1)[1] in used)
    late = "".join(f", {c}" for c in sql.columns if c.rsplit(" AS ", 1)[1] not in used)
    extraction = sql.extraction()
    first = extraction if "j[" in early else ""
    extra = "".join(f", {v} AS x{i}" for i, v in enumerate(values))
    named = "".join(f", {column}" for column in sql.native)
    kept = f"SELECT * FROM ranked WHERE {cut}"
    if not current:
        versions = f"""{LATEST}, {HELD}, live AS (
        SELECT c.*, h.stages, h.stage_list FROM card_versions c JOIN latest l
          ON c.repo_id = l.repo_id AND c."commit" = l."commit" AND c.path = l.path
        LEFT JOIN held h ON h.repo_id = c.repo_id AND h.model = c.model AND h.name = c.name
        WHERE c.error IS NULL AND c.status != 'D' AND {card_object(f"c.{sql.source}")})"""
    else:  # the hot sections travel with the rows only when a condition reads them
        carried = "c.*" if first else "c.* EXCLUDE (hot)"
        versions = f"""{HELD}, live AS (
        SELECT {carried}, h.stages, h.stage_list FROM card_current c
        LEFT JOIN held h ON h.repo_id = c.repo_id AND h.model = c.model AND h.name = c.name)"""
        if not first:
            kept = f"""SELECT r.*, c.hot FROM ({kept}) r
            JOIN card_current c ON c.repo_id = r.repo_id AND c."row" = r."row" """
    return f"""
    WITH {versions},
    named AS (SELECT * {named} FROM live),
    kept AS (SELECT * {first} FROM named WHERE {cheap}),
    valued AS (SELECT * {early} FROM kept),
    ranked AS (
        SELECT *, row_number() OVER (ORDER BY {", ".join(newest)}) AS position,
               count(*) OVER () AS total
        FROM valued WHERE {filters}),
    shown AS (SELECT * {"" if first else extraction} FROM ({kept}))
    SELECT repo_id, "commit", path, name, model, phase, step, created_at, stages,
           {body} {extra}
    FROM (SELECT * {late} FROM shown) ORDER BY position
    """


def _holders(scope: Scope, stage: str) -> list[str]:
    """The names holding `stage` in some repository (the scan then reads only their rows; the
    query still matches each by repository and model)."""
    statement = f"WITH {HELD} SELECT DISTINCT name FROM held WHERE list_contains(stage_list, $1)"
    return [name for (name,) in duckdbscan.rows(scope.db, statement, [stage])]


def _match(scope: Scope, row: tuple[Any, ...], extra: int, cards: bool) -> Match:
    repo_id, commit, path, name, model, phase, step, created_at, held, card = row[:10]
    decoded = tuple(json_value(v) for v in row[10 : 10 + extra])
    return Match(repo_id, scope.names.get(repo_id, repo_id[:12]), commit, path, name, model,
                 phase, step, created_at, held, decoded,
                 json_value(card) if cards else None)  # fmt: skip


def shown_columns(where: str | None, by: str | None, sort: str | None) -> list[str]:
    """The fields a listing shows beside name, model, stage, phase and step: those the
    query names, each once however it is spelt."""
    fields = [f.path for f in where_fields(parse(where))] if where else []
    fields += [s.strip().lstrip("-+") for s in [by or "", *(sort or "").split(",")]]
    columns: list[str] = []
    listed = {"name", "model", "checkpoint.phase", "checkpoint.step"}
    for spec in filter(None, fields):
        if card_path(spec) not in listed | {card_path(c) for c in columns}:
            columns.append(spec)
    return columns
