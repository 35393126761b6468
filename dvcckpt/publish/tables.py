"""The organisation-wide catalog's tables: names, columns and keys, as plain data.

`dvcckpt catalog publish` writes them (`publish.warehouse`); `dvcckpt org` reads
them; `adapters.iceberg` turns each column list into an Apache Iceberg schema.
A column is `(name, type, required)` with a type among `string`, `long`,
`double`, `boolean`, `timestamptz` and `list<string>`. Columns are only ever
added (at the end, optional): an existing table gains them on the next publish
and its older rows read null there, so readers of any version keep working.

Keys say what makes a row unique; publishing appends only rows whose key is new.
Latest-version semantics for readers: a card's current version in a repository
is its highest-`generation` row per `(repo_id, path)`; a row whose `status` is
`D` (deleted) or whose `card` is null removes it. A stage's holder: per
`(repo_id, model, stage)`, the `holder` of the last `stage_events` row with
`counts` true, ordered by `(generation, seq)` (null: the stage is vacant).
"""

from __future__ import annotations

NAMESPACE = "dvcckpt"
Column = tuple[str, str, bool]  # (name, type, required)
TYPES = frozenset({"string", "long", "double", "boolean", "timestamptz", "list<string>"})

REPOSITORIES: tuple[Column, ...] = (
    ("repo_id", "string", True),  # root commit of the default branch, or catalog.repository
    ("name", "string", False),  # catalog.repository, else the origin's owner/name, else project
    ("url", "string", False),  # origin URL with any user:password/token, query stripped
    ("default_branch", "string", False),
    ("head", "string", False),  # the default branch's commit that was published
    ("published_at", "timestamptz", False),
    ("dvcckpt_version", "string", False),
    ("project", "string", False),  # `project` from dvcckpt.yaml
)

CARD_VERSIONS: tuple[Column, ...] = (
    ("repo_id", "string", True),
    ("commit", "string", True),
    ("blob", "string", True),  # git blob id of the card version (zeros for a deletion)
    ("path", "string", True),
    ("status", "string", True),  # A added, M modified, D deleted (the catalog's status)
    ("generation", "long", True),  # longest path from a root commit: orders versions
    ("committed_at", "timestamptz", False),
    ("author", "string", False),
    ("subject", "string", False),
    ("name", "string", False),
    ("model", "string", False),
    ("phase", "string", False),
    ("kind", "string", False),
    ("step", "long", False),
    ("epoch", "double", False),
    ("run_id", "string", False),
    ("run_name", "string", False),
    ("run_group", "string", False),
    ("created_at", "string", False),  # checkpoint.created_at as the card has it (ISO 8601)
    ("sha256", "string", False),
    ("dvc_md5", "string", False),
    ("finetuned_from", "string", False),  # name of the first `finetuned_from` parent
    ("tags", "list<string>", False),
    ("datasets", "list<string>", False),  # data.dataset and every data.splits.*.path
    ("retired", "boolean", False),  # the card carries a tombstone (retired or pruned)
    ("card", "string", False),  # the whole card as JSON; null if deleted or unreadable
    ("error", "string", False),  # why the card could not be read, else null
    ("parents", "list<string>", False),  # names of every lineage parent
    ("dataset_version", "string", False),  # data.version
)

DECISIONS: tuple[Column, ...] = (
    ("repo_id", "string", True),
    ("commit", "string", True),  # the commit whose card version added the decision
    ("path", "string", True),
    ("name", "string", False),
    ("model", "string", False),
    ("stage", "string", False),
    ("action", "string", False),  # the verdict: promoted, rejected, archived, demoted
    ("by", "string", False),  # who decided: email, else name
    ("decided_at", "string", False),  # the decision's `at` as the card has it
    ("reason", "string", False),  # the rationale
    ("card_blob", "string", False),
    ("sha256", "string", False),  # the checkpoint the decision is bound to
    ("signer", "string", False),  # the verified principal, else the one the signature names
    ("signature", "string", False),  # audit's status: verified, unsigned, invalid, unreviewed
    ("problem", "string", False),  # why audit found it invalid, else null
    ("decision", "string", False),  # the decision entry as JSON
)

STAGE_EVENTS: tuple[Column, ...] = (
    ("repo_id", "string", True),
    ("commit", "string", True),  # the first-parent commit of the main branch that brought it
    ("generation", "long", True),
    ("seq", "long", True),  # position in the replay: orders events within a commit
    ("model", "string", False),
    ("stage", "string", False),  # an archive or demotion without one: a row per stage vacated
    ("name", "string", False),
    ("action", "string", False),
    ("by", "string", False),
    ("at", "string", False),
    ("reason", "string", False),  # the rationale
    ("counts", "boolean", False),  # the decision took effect (not invalid)
    ("verified", "string", False),  # verified, unsigned or invalid
    ("problem", "string", False),  # why it is invalid, else null
    ("holder", "string", False),  # who holds (model, stage) after this event; null: vacant
)

TABLES: dict[str, tuple[Column, ...]] = {
    "repositories": REPOSITORIES,
    "card_versions": CARD_VERSIONS,
    "decisions": DECISIONS,
    "stage_events": STAGE_EVENTS,
}
KEYS: dict[str, tuple[str, ...]] = {
    "repositories": ("repo_id",),
    "card_versions": ("repo_id", "commit", "path"),
    "decisions": ("repo_id", "commit", "path", "name", "stage", "action", "decided_at"),
    "stage_events": ("repo_id", "commit", "seq", "model", "stage", "name", "action"),
}
