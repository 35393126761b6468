"""`dvcckpt catalog publish`: real repositories into real Iceberg tables (SQLite catalog,
local warehouse), read back through DuckDB as `dvcckpt org` reads them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dvcckpt.adapters import iceberg
from dvcckpt.catalog import Catalog
from dvcckpt.publish import tables
from dvcckpt.publish.warehouse import open_warehouse
from tests.conftest import git
from tests.test_catalog import commit_card
from tests.test_promotion import merge, name, registry  # noqa: F401 (the fixture)


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user config folder: the caller's ~/.config never leaks into a test."""
    folder = tmp_path / "xdg"
    folder.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    for variable in ("DVCCKPT_WAREHOUSE", "DVCCKPT_CATALOG_URI"):
        monkeypatch.delenv(variable, raising=False)
    return folder


def publish(cli: Any, *args: str) -> dict[str, Any]:
    result = cli("catalog", "publish", "--json", *args)
    assert result.code == 0, result.err
    summary: dict[str, Any] = json.loads(result.out)
    return summary


def query(warehouse: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    opened = open_warehouse(None, str(warehouse))
    rows: list[tuple[Any, ...]] = opened.duckdb(list(tables.TABLES)).execute(sql, params).fetchall()
    return rows


@pytest.fixture
def decided(registry: Path, cli: Any) -> Path:  # noqa: F811
    """The promotion tests' registry with a reviewed promotion, a rejection and an archive."""
    git(registry, "checkout", "-qb", "pr-1")
    assert cli("promote", name(200), "--to", "dev", "--rationale", "best dev").code == 0
    git(registry, "commit", "-qm", "promote 200 to dev")
    merge(registry, "pr-1")
    assert cli("reject", name(100), "--reason", "underfits", "--stage", "dev").code == 0
    git(registry, "commit", "-qam", "reject 100")
    assert cli("archive", name(200), "--reason", "data leak found").code == 0
    git(registry, "commit", "-qam", "archive 200")
    return registry


def test_publish_writes_every_table_and_publishing_again_adds_nothing(
    decided: Path, cli: Any, tmp_path: Path
) -> None:
    warehouse = tmp_path / "lake"
    first = publish(cli, "--warehouse", str(warehouse))
    catalog = Catalog(decided)
    versions = catalog.versions(commits=catalog.reachable(["main"]))
    assert first["rows"] == {"card_versions": len(versions), "decisions": 3,
                             "stage_events": 3, "repositories": 1}  # fmt: skip
    root = git(decided, "rev-list", "--max-parents=0", "main").strip()
    assert first["repo_id"] == root and first["head"] == git(decided, "rev-parse", "main").strip()

    # Every card version, its hot fields and the whole card exactly as the catalog reads it.
    published = query(warehouse, "SELECT commit, path, name, model, step, card, tags, datasets,"
                      " retired, generation FROM card_versions ORDER BY generation, path")  # fmt: skip
    assert [(r[0], r[1]) for r in published] == [(v.sha, v.path) for v in versions]
    for row, version in zip(published, versions, strict=True):
        assert json.loads(row[5]) == version.card
        assert (row[2], row[3], row[4], row[9]) == (version.name, version.model, version.step,
                                                    version.generation)  # fmt: skip
        assert row[7] == ["tweets"] and row[6] is None
    assert [r[8] for r in published if r[2] == name(200)][-1] is False  # archived, not retired

    decisions = query(warehouse, "SELECT name, stage, action, \"by\", reason, signature, signer,"
                      " sha256 FROM decisions ORDER BY decided_at")  # fmt: skip
    assert [(d[0], d[1], d[2]) for d in decisions] == [(name(200), "dev", "promoted"),
        (name(100), "dev", "rejected"), (name(200), None, "archived")]  # fmt: skip
    assert {d[3] for d in decisions} == {"ada@example.com"}
    assert {d[5] for d in decisions} == {"unsigned"} and decisions[0][4] == "best dev"
    card_200 = next(v.card for v in versions if v.name == name(200) and v.card)
    assert decisions[0][7] == card_200["checkpoint"]["sha256"]

    events = query(warehouse, "SELECT name, model, stage, action, counts, holder, verified"
                   " FROM stage_events ORDER BY generation, seq, stage")  # fmt: skip
    assert events == [
        (name(200), "sentiment", "dev", "promoted", True, name(200), "unsigned"),
        (name(100), "sentiment", "dev", "rejected", True, name(200), "unsigned"),
        (name(200), "sentiment", "dev", "archived", True, None, "unsigned"),  # vacates dev
    ]
    assert query(warehouse, "SELECT repo_id, name, default_branch, dvcckpt_version, project"
                 " FROM repositories") == [(root, "demo", "main", "0.1.0", "demo")]  # fmt: skip

    again = publish(cli, "--warehouse", str(warehouse))
    assert again["commits"] == 0 and set(again["rows"].values()) == {0}
    counts = query(warehouse, "SELECT (SELECT count(*) FROM card_versions),"
                   " (SELECT count(*) FROM decisions), (SELECT count(*) FROM stage_events)")  # fmt: skip
    assert counts == [(len(versions), 3, 3)]


def test_incremental_publish_adds_only_the_new_commit_and_its_decisions(
    decided: Path, cli: Any, tmp_path: Path
) -> None:
    warehouse = tmp_path / "lake"
    publish(cli, "--warehouse", str(warehouse))
    git(decided, "checkout", "-qb", "pr-2")
    assert cli("promote", name(300), "--to", "dev", "--rationale", "better").code == 0
    git(decided, "commit", "-qm", "promote 300")
    merge(decided, "pr-2")
    later = publish(cli, "--warehouse", str(warehouse))
    assert later["commits"] == 1  # the branch commit; the merge itself changes no card
    assert later["rows"] == {"card_versions": 1, "decisions": 1, "stage_events": 1,
                             "repositories": 1}  # fmt: skip
    holder = query(warehouse, "SELECT holder FROM stage_events WHERE counts"
                   " ORDER BY generation DESC, seq DESC LIMIT 1")  # fmt: skip
    assert holder == [(name(300),)]


def test_only_commits_of_the_main_branch_are_published(
    repo: Path, cli: Any, tmp_path: Path
) -> None:
    commit_card(repo, "m", 1, {"dev": {"f1": 0.5}})
    git(repo, "checkout", "-qb", "experiment")
    commit_card(repo, "m", 2, {"dev": {"f1": 0.6}})  # HEAD, but not on main
    summary = publish(cli, "--warehouse", str(tmp_path / "lake"))
    assert summary["branch"] == "main" and summary["rows"]["card_versions"] == 1
    assert query(tmp_path / "lake", "SELECT step FROM card_versions") == [(1,)]


def test_unreadable_and_hostile_cards_are_rows_not_failures(
    repo: Path, cli: Any, tmp_path: Path
) -> None:
    hostile = "x'); DROP TABLE card_versions; --"
    commit_card(repo, "m", 1, {"dev": {"f1": 0.5}}, tags=[hostile, "<script>"],
                notes="\u2028 \"quoted\" \\ back", data={"dataset": hostile,
                "splits": {"train": {"hash": "h", "path": "s3://data/train"}}})  # fmt: skip
    broken = repo / "models/m/step-2.pt.ckpt.yaml"
    broken.write_text("name: [unclosed\n")
    git(repo, "add", str(broken))
    git(repo, "commit", "-qm", "broken card", "--no-verify")
    publish(cli, "--warehouse", str(tmp_path / "lake"))
    rows = query(tmp_path / "lake", "SELECT path, tags, datasets, card IS NULL, error"
                 " FROM card_versions ORDER BY path")  # fmt: skip
    assert rows[0][:4] == ("models/m/step-1.pt.ckpt.yaml", [hostile, "<script>"],
                           [hostile, "s3://data/train"], False)  # fmt: skip
    assert rows[1][0] == str(broken.relative_to(repo)) and rows[1][3] is True and rows[1][4]


def test_a_table_gains_the_columns_a_newer_release_lists(
    repo: Path, cli: Any, tmp_path: Path
) -> None:
    commit_card(repo, "m", 1, {"dev": {"f1": 0.5}}, data={"dataset": "d", "version": "v3"})
    warehouse = tmp_path / "lake"
    opened = open_warehouse(None, str(warehouse))
    older = {name: columns[:-2] for name, columns in tables.TABLES.items()}
    made = iceberg.ensure_tables(opened.catalog, opened.target, tables.NAMESPACE, older)
    assert "dataset_version" not in made["card_versions"].schema().column_names
    iceberg.append_new(made["card_versions"], opened.target, {"repo_id": ["elsewhere"],
                       "commit": ["c" * 40], "blob": ["b" * 40], "path": ["x.ckpt.yaml"],
                       "status": ["A"], "generation": [1]}, ("repo_id", "commit", "path"),
                       "elsewhere")  # fmt: skip
    publish(cli, "--warehouse", str(warehouse))
    rows = query(warehouse, "SELECT repo_id, dataset_version, parents FROM card_versions"
                 " ORDER BY repo_id = 'elsewhere'")  # fmt: skip
    assert rows[0][1] == "v3" and rows[1] == ("elsewhere", None, None)
    columns = open_warehouse(None, str(warehouse)).tables()["card_versions"].schema()
    assert columns.column_names[-2:] == ["parents", "dataset_version"]


def test_a_commit_lost_to_another_writer_is_retried_without_duplicates(tmp_path: Path) -> None:
    opened = open_warehouse(None, str(tmp_path / "lake"))
    made = opened.ensure()
    stale = opened.catalog.load_table("dvcckpt.card_versions")  # loaded before the race

    def rows(commits: list[str]) -> dict[str, list[Any]]:
        return {"repo_id": ["r"] * len(commits), "commit": commits, "blob": ["b"] * len(commits),
                "path": ["p"] * len(commits), "status": ["A"] * len(commits),
                "generation": list(range(len(commits)))}  # fmt: skip

    key = tables.KEYS["card_versions"]
    assert iceberg.append_new(made["card_versions"], opened.target, rows(["a", "b"]), key, "r") == 2
    # The stale table's commit fails (another writer moved the table): it refreshes,
    # reads the keys again and appends only what is still new.
    added = iceberg.append_new(stale, opened.target, rows(["b", "c"]), key, "r", known=set())
    assert added == 1
    assert sorted(iceberg.read_keys(stale, opened.target, "r", ["commit"])) == [
        ("a",), ("b",), ("c",)]  # fmt: skip


def test_a_warehouse_missing_its_data_files_is_an_error_not_a_crash(
    repo: Path, cli: Any, tmp_path: Path
) -> None:
    commit_card(repo, "m", 1, {"dev": {"f1": 0.5}})
    lake = tmp_path / "lake"
    publish(cli, "--warehouse", str(lake))
    for data in lake.glob("dvcckpt/card_versions/data/**/*.parquet"):
        data.unlink()
    commit_card(repo, "m", 2, {"dev": {"f1": 0.6}})
    again = cli("catalog", "publish", "--warehouse", str(lake))
    assert again.code == 4, again.err
    assert "\nerror: cannot read the keys of card_versions in file://" in again.err
    assert "\nhint: " in again.err and "Traceback" not in again.err


def test_the_readmes_duckdb_example_answers_from_the_published_tables(
    repo: Path, cli: Any, tmp_path: Path
) -> None:
    """The README's direct query runs as written (only its paths replaced), on the tables
    `publish` wrote: each card's current version, deletions left out, best F1 first."""
    for step, f1 in ((1, 0.70), (2, 0.91), (3, 0.85)):
        commit_card(repo, "m", step, {"test": {"macro_f1": f1}})
    git(repo, "rm", "-q", "models/m/step-3.pt.ckpt.yaml")
    git(repo, "commit", "-qm", "drop step 3", "--no-verify")
    lake = tmp_path / "lake"
    publish(cli, "--warehouse", str(lake))
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    [code] = [block for block in readme.split("```python\n")[1:] if "to_duckdb" in block]
    code = code.split("```")[0].replace("/data/lake", str(lake)).replace(".show()", "")
    scope: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), scope)  # the README's own example, as written
    rows = scope["db"].sql(code.split('db.sql("""')[1].split('""")')[0]).fetchall()
    assert [(row[1], row[2]) for row in rows] == [
        ("m-train-full-step000002", 0.91), ("m-train-full-step000001", 0.70)]  # fmt: skip


def test_a_fork_publishing_under_the_originals_id_is_refused(
    repo: Path, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fork shares the root commit (the default id): it must not replace the original's
    cards; its own catalog.repository publishes it beside, --moved accepts a new address."""
    git(repo, "remote", "add", "origin", "https://github.com/acme/upstream.git")
    commit_card(repo, "m", 1, {"dev": {"f1": 0.5}})
    lake = tmp_path / "lake"
    original = publish(cli, "--warehouse", str(lake))
    fork = tmp_path / "fork"
    git(tmp_path, "clone", "-q", str(repo), str(fork))
    git(fork, "remote", "set-url", "origin", "https://github.com/someone/fork.git")
    commit_card(fork, "m", 2, {"dev": {"f1": 0.2}})
    monkeypatch.chdir(fork)
    refused = cli("catalog", "publish", "--warehouse", str(lake))
    assert refused.code == 4, refused.err
    assert f"repository id {original['repo_id']} is already published from" in refused.err
    assert "https://github.com/acme/upstream.git" in refused.err and "--moved" in refused.err
    assert query(lake, "SELECT count(*) FROM card_versions") == [(1,)]  # nothing written
    (fork / "dvcckpt.yaml").write_text(
        "version: 1\nproject: p\ncatalog:\n  repository: someone/fork\n"
    )
    git(fork, "add", "dvcckpt.yaml")
    git(fork, "commit", "-qm", "own id", "--no-verify")
    beside = publish(cli, "--warehouse", str(lake))
    assert beside["repo_id"] == "someone/fork"
    assert query(lake, "SELECT repo_id, url FROM repositories ORDER BY 1") == [
        (original["repo_id"], "https://github.com/acme/upstream.git"),
        ("someone/fork", "https://github.com/someone/fork.git"),
    ]
    monkeypatch.chdir(repo)
    git(repo, "remote", "set-url", "origin", "https://github.com/acme/renamed.git")
    assert cli("catalog", "publish", "--warehouse", str(lake)).code == 4
    assert publish(cli, "--warehouse", str(lake), "--moved")["rows"]["repositories"] == 1
