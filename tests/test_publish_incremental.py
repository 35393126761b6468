"""Incremental `dvcckpt catalog publish` on real repositories and real Iceberg tables: a
publish with nothing new answers from the catalog's own files without loading pyiceberg,
and anything it cannot be sure of (another writer's commit, a missing column, rewritten
history, a publish stopped half-way) takes the full path and loses nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dvcckpt.adapters import iceberg, icebergstate
from dvcckpt.publish import tables
from dvcckpt.publish.warehouse import open_warehouse
from tests.conftest import git
from tests.test_catalog import commit_card
from tests.test_publish import no_user_config, publish, query  # noqa: F401 (the fixture)

# Publishes as the CLI does, in a fresh interpreter, and tells which libraries it loaded.
_RUN = """
import json, sys
from dvcckpt.cli.main import main
code = main(["catalog", "publish", "--json", "--warehouse", sys.argv[1]])
loaded = sorted(m for m in ("pyiceberg", "pyarrow", "sqlalchemy") if m in sys.modules)
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def run_publish(repo: Path, lake: Path) -> tuple[dict[str, Any], list[str]]:
    done = subprocess.run([sys.executable, "-c", _RUN, str(lake)], cwd=repo,
                          capture_output=True, text=True, check=False)  # fmt: skip
    status = json.loads(done.stderr.strip().splitlines()[-1])
    assert status["code"] == 0, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary, status["loaded"]


def nothing(summary: dict[str, Any]) -> bool:
    return summary["commits"] == 0 and set(summary["rows"].values()) == {0}


def repositories_table(lake: Path) -> Any:
    opened = open_warehouse(None, str(lake))
    return opened, opened.tables(["repositories"])["repositories"]


def test_nothing_new_loads_no_iceberg_library_and_a_new_commit_is_published(
    repo: Path, cli: Any, tmp_path: Path
) -> None:
    commit_card(repo, "m", 1, {"dev": {"f1": 0.5}})
    lake = tmp_path / "lake"
    first = publish(cli, "--warehouse", str(lake))
    assert first["rows"]["repositories"] == 1
    again, loaded = run_publish(repo, lake)
    assert nothing(again) and loaded == []
    # Another repository publishing meanwhile leaves this one's record readable.
    opened, table = repositories_table(lake)
    other = {"repo_id": "acme/other", "name": "acme/other", "head": "f" * 40}
    iceberg.replace_rows(table, opened.target, {k: [v] for k, v in other.items()},
                         icebergstate.summary_of(other))  # fmt: skip
    again, loaded = run_publish(repo, lake)
    assert nothing(again) and loaded == []

    commit_card(repo, "m", 2, {"dev": {"f1": 0.6}})
    later, loaded = run_publish(repo, lake)
    assert later["commits"] == 1 and later["rows"]["card_versions"] == 1
    assert later["rows"]["repositories"] == 1 and "pyiceberg" in loaded
    assert "sqlalchemy" not in loaded  # the tables exist: committed through sqlite3
    assert query(lake, "SELECT step FROM card_versions WHERE repo_id = ? ORDER BY step",
                 first["repo_id"]) == [(1,), (2,)]  # fmt: skip
    assert query(lake, "SELECT repo_id, head FROM repositories ORDER BY repo_id") == sorted(
        [(first["repo_id"], later["head"]), ("acme/other", "f" * 40)])  # fmt: skip


def test_a_row_another_writer_replaced_is_written_again(
    repo: Path, cli: Any, tmp_path: Path
) -> None:
    """A commit without the record (an older release, another engine) is not trusted."""
    commit_card(repo, "m", 1, {"dev": {"f1": 0.5}})
    lake = tmp_path / "lake"
    first = publish(cli, "--warehouse", str(lake))
    opened, table = repositories_table(lake)
    stale = {"repo_id": first["repo_id"], "name": "stale", "head": "0" * 40}
    iceberg.replace_rows(table, opened.target, {k: [v] for k, v in stale.items()})
    again, loaded = run_publish(repo, lake)
    assert again["rows"]["repositories"] == 1 and again["rows"]["card_versions"] == 0
    assert "pyiceberg" in loaded
    assert query(lake, "SELECT name, head FROM repositories") == [(first["name"], first["head"])]


def test_the_record_is_trusted_only_when_every_column_and_property_is_there(
    repo: Path, cli: Any, tmp_path: Path
) -> None:
    commit_card(repo, "m", 1, {"dev": {"f1": 0.5}})
    lake = tmp_path / "lake"
    first = publish(cli, "--warehouse", str(lake))
    opened = open_warehouse(None, str(lake))
    target, repo_id = opened.target, first["repo_id"]

    def recorded(columns: dict[str, Any], properties: dict[str, str]) -> Any:
        return icebergstate.published_row(target.uri, target.warehouse, iceberg.CATALOG_NAME,
                                          tables.NAMESPACE, columns, properties, repo_id)  # fmt: skip

    row = recorded(tables.TABLES, iceberg.PROPERTIES)
    assert row is not None and row["head"] == first["head"] and row["repo_id"] == repo_id
    newer = {**tables.TABLES, "card_versions": (*tables.CARD_VERSIONS, ("x", "string", False))}
    assert recorded(newer, iceberg.PROPERTIES) is None  # a newer release has columns to add
    assert recorded(tables.TABLES, {**iceberg.PROPERTIES, "other": "1"}) is None
    assert recorded({**tables.TABLES, "missing": ()}, iceberg.PROPERTIES) is None
    assert icebergstate.published_row("postgresql+psycopg://h/db", target.warehouse,
                                      iceberg.CATALOG_NAME, tables.NAMESPACE, tables.TABLES,
                                      iceberg.PROPERTIES, repo_id) is None  # fmt: skip
    assert recorded(tables.TABLES, iceberg.PROPERTIES) == row
    for metadata in lake.glob("dvcckpt/repositories/metadata/*.metadata.json"):
        metadata.write_text("{not json")  # broken: not known, never a crash
    assert recorded(tables.TABLES, iceberg.PROPERTIES) is None


def test_rewritten_history_publishes_the_new_commits(repo: Path, cli: Any, tmp_path: Path) -> None:
    commit_card(repo, "m", 1, {"dev": {"f1": 0.5}})
    commit_card(repo, "m", 2, {"dev": {"f1": 0.6}})
    lake = tmp_path / "lake"
    publish(cli, "--warehouse", str(lake))
    git(repo, "reset", "-q", "--hard", "HEAD~1")  # a force-push: the published head is gone
    commit_card(repo, "m", 3, {"dev": {"f1": 0.7}})
    later = publish(cli, "--warehouse", str(lake))
    assert later["commits"] == 1 and later["rows"]["card_versions"] == 1
    assert query(lake, "SELECT step FROM card_versions ORDER BY step") == [(1,), (2,), (3,)]
    assert nothing(publish(cli, "--warehouse", str(lake)))


def test_a_publish_stopped_before_its_record_is_completed_without_duplicates(
    repo: Path, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_card(repo, "m", 1, {"dev": {"f1": 0.5}})
    lake = tmp_path / "lake"
    first = publish(cli, "--warehouse", str(lake))
    commit_card(repo, "m", 2, {"dev": {"f1": 0.6}})

    def interrupted(*_: Any, **__: Any) -> None:
        raise KeyboardInterrupt  # the user stopped it after the card versions were written

    with monkeypatch.context() as patch:
        patch.setattr(iceberg, "replace_rows", interrupted)
        stopped = cli("catalog", "publish", "--json", "--warehouse", str(lake))
    assert stopped.code != 0 and stopped.out == ""
    assert query(lake, "SELECT head FROM repositories") == [(first["head"],)]
    done = publish(cli, "--warehouse", str(lake))
    assert done["rows"]["card_versions"] == 0 and done["rows"]["repositories"] == 1
    assert query(lake, "SELECT step, count(*) FROM card_versions GROUP BY step ORDER BY 1") == [
        (1, 1), (2, 1)]  # fmt: skip
    assert query(lake, "SELECT head FROM repositories") == [(done["head"],)]


def test_a_commit_lost_through_the_sqlite_catalog_is_retried_without_duplicates(
    tmp_path: Path,
) -> None:
    """The sqlite3 catalog swaps the pointer only if it is unchanged, like SqlCatalog."""
    opened = open_warehouse(None, str(tmp_path / "lake"))
    made = opened.ensure()
    light = iceberg.open_catalog(opened.target, existing=True)
    stale = light.load_table("dvcckpt.card_versions")  # loaded before the race

    def rows(commits: list[str]) -> dict[str, list[Any]]:
        return {"repo_id": ["r"] * len(commits), "commit": commits, "blob": ["b"] * len(commits),
                "path": ["p"] * len(commits), "status": ["A"] * len(commits),
                "generation": list(range(len(commits)))}  # fmt: skip

    key = tables.KEYS["card_versions"]
    assert iceberg.append_new(made["card_versions"], opened.target, rows(["a", "b"]), key, "r") == 2
    added = iceberg.append_new(stale, opened.target, rows(["b", "c"]), key, "r", known=set())
    assert added == 1
    fresh = open_warehouse(None, str(tmp_path / "lake")).tables(["card_versions"])
    assert sorted(iceberg.read_keys(fresh["card_versions"], opened.target, "r", ["commit"])) == [
        ("a",), ("b",), ("c",)]  # fmt: skip
    with pytest.raises(NotImplementedError):
        light.create_namespace("elsewhere")  # only existing tables, never created here
