"""Remote storage against a real S3 server (SeaweedFS), real DVC and real git.

push, pull, get and verify; credentials kept local; version-aware buckets;
and the failures users meet: a corrupted remote object, a corrupted cache,
wrong credentials, the server stopping mid-push and an unwritable cache.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from dvcckpt.cards import card
from tests.conftest import git, run_process, write_checkpoint
from tests.s3server import ACCESS_KEY, BUCKET, SECRET_KEY, S3Server, running_server

# Registered with --run-id RUN (a tracker's run id), so their names are known.
RUN = "r1"
FILE_NAME = "m-train-full-r1-step000001"
DIR_NAME = "d-train-full-r1-step000002"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One SeaweedFS for the session (about 1 s to start); each test uses its own prefix."""
    yield from running_server(tmp_path_factory.mktemp("seaweedfs"))


def configure(cli, server: S3Server, *extra: str, secret: str = SECRET_KEY) -> str:
    """A default remote `storage` under a fresh prefix of the bucket; returns the prefix."""
    prefix = f"t-{uuid.uuid4().hex[:10]}"
    result = cli("remote", "add", "storage", f"s3://{BUCKET}/{prefix}", "--endpoint",
                 server.endpoint, "--access-key-id", ACCESS_KEY, "--secret-access-key", secret,
                 "--default", *extra)  # fmt: skip
    assert result.code == 0, result.err
    return prefix


def register_two(repo: Path, cli) -> dict[str, bytes]:
    """A file checkpoint and a directory checkpoint, committed; returns their bytes."""
    write_checkpoint(repo / "models/m/step-1.pt", size=50_000, seed=1)
    write_checkpoint(repo / "models/d/ckpt-2/model.bin", size=20_000, seed=2)
    write_checkpoint(repo / "models/d/ckpt-2/sub/config.json", size=300, seed=3)
    assert cli("add", "models/m/step-1.pt", "--step", "1", "--run-id", RUN).code == 0
    assert cli("add", "models/d/ckpt-2", "--model", "d", "--step", "2", "--run-id", RUN).code == 0
    git(repo, "commit", "--quiet", "-m", "register")
    return {
        "file": (repo / "models/m/step-1.pt").read_bytes(),
        "dir": (repo / "models/d/ckpt-2/model.bin").read_bytes(),
    }


def objects(server: S3Server, prefix: str, bucket: str = BUCKET) -> dict[str, int]:
    listing = server.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return {o["Key"]: o["Size"] for o in listing.get("Contents", [])}


def drop_local_copies(repo: Path) -> None:
    shutil.rmtree(repo / ".dvc/cache", ignore_errors=True)
    shutil.rmtree(repo / "models/d/ckpt-2", ignore_errors=True)
    (repo / "models/m/step-1.pt").unlink(missing_ok=True)


def statuses(cli, *args: str) -> tuple[int, dict[str, dict[str, str]]]:
    result = cli("verify", "--json", *args)
    report = json.loads(result.out)
    table = {c["name"]: {k: v["status"] for k, v in c["copies"].items()} for c in
             report["checkpoints"]}  # fmt: skip
    return result.code, table


def file_object_key(repo: Path, prefix: str) -> str:
    md5 = _card(repo, "models/m/step-1.pt")["checkpoint"]["dvc"]["md5"]
    return f"{prefix}/files/md5/{md5[:2]}/{md5[2:]}"


def _card(repo: Path, path: str) -> dict:
    return card.read(repo / f"{path}.ckpt.yaml").data


def flip_byte(server: S3Server, key: str, bucket: str = BUCKET) -> bytes:
    """Corrupt a remote object in place (same size, one bit differs); returns the new bytes."""
    client = server.client()
    body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0x01
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    return bytes(body)


def test_remote_add_keeps_credentials_in_config_local(repo: Path, cli, s3_server) -> None:
    configure(cli, s3_server)
    shared = (repo / ".dvc/config").read_text()
    local = (repo / ".dvc/config.local").read_text()
    assert s3_server.endpoint in shared and "remote = storage" in shared
    assert SECRET_KEY not in shared and ACCESS_KEY not in shared
    assert SECRET_KEY in local and ACCESS_KEY in local
    assert git(repo, "check-ignore", ".dvc/config.local").strip() == ".dvc/config.local"
    listed = json.loads(cli("remote", "list", "--json").out)
    assert listed["default"] == "storage"
    assert listed["remotes"][0]["settings"]["secret_access_key"] == "***"
    assert listed["remotes"][0]["levels"]["secret_access_key"] == "local"
    again = cli("remote", "add", "storage", "s3://models/x")
    assert again.code == 2 and "--force" in again.err
    wrong = cli("remote", "add", "disk", "/tmp/store", "--endpoint", "http://127.0.0.1:1")
    assert wrong.code == 2 and "s3:// remotes only" in wrong.err


def test_push_pull_and_verify_round_trip(repo: Path, cli, s3_server) -> None:
    prefix = configure(cli, s3_server)
    original = register_two(repo, cli)
    pushed = cli("push", "--all", "--json")
    assert pushed.code == 0, pushed.err
    assert sorted(json.loads(pushed.out)["checkpoints"]) == [DIR_NAME, FILE_NAME]
    assert len(objects(s3_server, prefix)) == 4  # the file, two files of the dir, the .dir
    code, table = statuses(cli, "--all", "--remote")
    assert code == 0
    assert table[FILE_NAME] == {"workspace": "ok", "cache": "ok", "remote": "ok"}
    assert table[DIR_NAME] == {"workspace": "ok", "cache": "ok", "remote": "ok"}

    drop_local_copies(repo)
    code, table = statuses(cli, FILE_NAME)
    assert code == 1 and table[FILE_NAME] == {"workspace": "missing", "cache": "missing"}
    pulled = cli("pull", FILE_NAME, "models/d/ckpt-2", "--json")
    assert pulled.code == 0, pulled.err
    assert json.loads(pulled.out)["files"] == 4
    assert (repo / "models/m/step-1.pt").read_bytes() == original["file"]
    assert (repo / "models/d/ckpt-2/model.bin").read_bytes() == original["dir"]
    assert statuses(cli, "--all")[0] == 0
    assert "Verifying" not in pulled.err  # no progress bars when not on a terminal


def test_corrupted_remote_object_is_reported_and_quarantined_not_deleted(
    repo: Path, cli, s3_server
) -> None:
    prefix = configure(cli, s3_server)
    register_two(repo, cli)
    assert cli("push", "--all").code == 0
    key = file_object_key(repo, prefix)
    corrupted = flip_byte(s3_server, key)

    code, table = statuses(cli, "--all", "--remote")
    assert code == 1
    assert table[FILE_NAME]["remote"] == "corrupted" and table[FILE_NAME]["cache"] == "ok"
    assert table[DIR_NAME]["remote"] == "ok"
    text = cli("verify", FILE_NAME, "--remote")
    assert text.code == 1 and f"s3://{BUCKET}/{key}" in text.out

    drop_local_copies(repo)
    pulled = cli("pull", FILE_NAME)
    assert pulled.code == 1, pulled.err
    assert f"verification failed for {FILE_NAME} (from remote 'storage'" in pulled.err
    assert f"s3://{BUCKET}/{key} is corrupted" in pulled.err
    [folder] = (repo / ".dvc/tmp/dvcckpt-quarantine").iterdir()
    assert f".dvc/tmp/dvcckpt-quarantine/{folder.name}" in pulled.err
    assert (folder / "models/m/step-1.pt").read_bytes() == corrupted  # what was downloaded
    assert not (repo / ".dvc/cache/files").exists()  # nothing unverified entered the cache
    assert not (repo / "models/m/step-1.pt").exists()
    assert objects(s3_server, prefix)[key] == len(corrupted)  # still there, untouched
    assert git(repo, "status", "--porcelain", "--untracked-files=all", "models") == ""


def test_corrupted_cache_copy_is_caught_on_checkout_and_refused_on_push(
    repo: Path, cli, s3_server
) -> None:
    prefix = configure(cli, s3_server)
    original = register_two(repo, cli)
    md5 = _card(repo, "models/m/step-1.pt")["checkpoint"]["dvc"]["md5"]
    cached = repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    cached.chmod(0o644)
    cached.write_bytes(b"bit rot" + original["file"][7:])

    refused = cli("push", FILE_NAME)
    assert refused.code == 1 and "refusing to push" in refused.err
    assert objects(s3_server, prefix) == {}
    code, table = statuses(cli, FILE_NAME)
    assert code == 1 and table[FILE_NAME] == {"workspace": "ok", "cache": "corrupted"}

    # Repair from the intact work-tree copy, push, then let the cache rot again.
    cached.unlink()
    shutil.copyfile(repo / "models/m/step-1.pt", cached)
    assert cli("push", FILE_NAME).code == 0
    cached.write_bytes(b"bit rot" + original["file"][7:])
    (repo / "models/m/step-1.pt").unlink()
    pulled = cli("pull", FILE_NAME)  # repairs the cache: the bad copy is quarantined
    assert pulled.code == 0, pulled.err
    assert "1 corrupted cache object(s) replaced by verified downloads" in pulled.err
    assert cached.read_bytes() == original["file"]
    assert (repo / "models/m/step-1.pt").read_bytes() == original["file"]
    assert statuses(cli, FILE_NAME) == (0, {FILE_NAME: {"workspace": "ok", "cache": "ok"}})


def test_verify_local_copies_uses_links_once_and_reports_each_state(repo: Path, cli) -> None:
    register_two(repo, cli)
    (repo / "models/d/ckpt-2/sub/config.json").write_text("{}")
    code, table = statuses(cli, "--all")
    assert code == 1
    assert table[DIR_NAME] == {"workspace": "corrupted", "cache": "ok"}
    assert table[FILE_NAME] == {"workspace": "ok", "cache": "ok"}
    # A work-tree file linked to its cache object (cache.type symlink) is one copy, read once.
    md5 = _card(repo, "models/m/step-1.pt")["checkpoint"]["dvc"]["md5"]
    (repo / "models/m/step-1.pt").unlink()
    (repo / "models/m/step-1.pt").symlink_to(repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:])
    assert statuses(cli, FILE_NAME) == (0, {FILE_NAME: {"workspace": "ok", "cache": "ok"}})
    none = cli("verify")
    assert none.code == 2 and "name at least one checkpoint" in none.err


def test_get_from_another_repository(
    template_repo: Path, tmp_path: Path, cli, s3_server, monkeypatch
) -> None:
    other = tmp_path / "other"
    shutil.copytree(template_repo, other, symlinks=True)
    monkeypatch.chdir(other)
    prefix = configure(cli, s3_server)
    original = register_two(other, cli)
    git(other, "add", ".dvc/config")
    git(other, "commit", "--quiet", "-m", "remote")
    assert cli("push", "--all").code == 0
    drop_local_copies(other)  # what `get` returns must come from the S3 remote

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    got = cli("get", str(other), FILE_NAME, "-o", "step-1.pt")
    assert got.code == 0, got.err
    assert (elsewhere / "step-1.pt").read_bytes() == original["file"]
    head = git(other, "rev-parse", "HEAD").strip()
    got = cli("get", str(other), f"{DIR_NAME}@{head}", "-o", "ckpt", "--json")
    assert got.code == 0, got.err
    assert (elsewhere / "ckpt/model.bin").read_bytes() == original["dir"]

    # A git URL is cloned; a clone has no config.local, so credentials come from AWS_*.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    got = cli("get", f"file://{other}", FILE_NAME, "-o", "by-url.pt")
    assert got.code == 0, got.err
    assert (elsewhere / "by-url.pt").read_bytes() == original["file"]
    assert cli("get", str(other), FILE_NAME, "-o", "by-url.pt").code == 2  # exists: --force

    flip_byte(s3_server, file_object_key(other, prefix))
    bad = cli("get", str(other), FILE_NAME, "-o", "bad.pt")
    assert bad.code == 1 and "verification failed" in bad.err and "is corrupted" in bad.err
    assert not (elsewhere / "bad.pt").exists()
    assert list((elsewhere / ".dvcckpt-quarantine").glob("*/bad.pt"))


def test_version_aware_remote_pins_versions(repo: Path, cli, s3_server) -> None:
    bucket = f"versioned-{uuid.uuid4().hex[:8]}"
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    added = cli("remote", "add", "storage", f"s3://{bucket}/store", "--endpoint",
                s3_server.endpoint, "--access-key-id", ACCESS_KEY, "--secret-access-key",
                SECRET_KEY, "--default", "--version-aware")  # fmt: skip
    assert added.code == 0, added.err
    original = register_two(repo, cli)
    pushed = cli("push", "--all")
    assert pushed.code == 0 and "note: the .dvc files now record the pushed object" in pushed.err
    pointer = (repo / "models/m/step-1.pt.dvc").read_text()
    assert "version_id" in pointer  # DVC records the pushed version in the .dvc file
    assert statuses(cli, "--all", "--remote")[0] == 0

    # Someone overwrites the key: the recorded version still holds the registered bytes.
    client.put_object(Bucket=bucket, Key="store/models/m/step-1.pt", Body=b"overwritten")
    drop_local_copies(repo)
    pulled = cli("pull", "--all")
    assert pulled.code == 0, pulled.err
    assert (repo / "models/m/step-1.pt").read_bytes() == original["file"]
    assert (repo / "models/d/ckpt-2/model.bin").read_bytes() == original["dir"]
    code, table = statuses(cli, "--all", "--remote")
    assert code == 0, table
    assert table[DIR_NAME] == {"workspace": "ok", "cache": "ok", "remote": "ok"}


def test_wrong_credentials_fail_clearly(repo: Path, cli, s3_server) -> None:
    configure(cli, s3_server, secret="not-the-secret")
    register_two(repo, cli)
    for command in (("push", "--all"), ("verify", "--all", "--remote"), ("pull", FILE_NAME)):
        if command[0] == "pull":
            drop_local_copies(repo)  # so the pull must read the remote
        result = cli(*command)
        assert result.code == 4, (command, result.err)
        assert "remote 'storage'" in result.err and "access denied" in result.err
        assert "hint: check access_key_id/secret_access_key in .dvc/config.local" in result.err
        assert "Traceback" not in result.err


def test_no_remote_is_a_config_error(repo: Path, cli) -> None:
    register_two(repo, cli)
    result = cli("push", FILE_NAME)
    assert result.code == 3 and "no DVC remote is configured" in result.err
    assert "dvcckpt remote add" in result.err


def test_server_stopped_in_the_middle_of_a_push(
    repo: Path, cli, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = S3Server(tmp_path_factory.mktemp("seaweedfs-crash"))  # its own, to crash it
    server.start()
    try:
        prefix = configure(cli, server)
        folder = repo / "models/big/ckpt-1"
        folder.mkdir(parents=True)
        for index in range(12):
            (folder / f"shard-{index:02d}.bin").write_bytes(os.urandom(6 << 20))
        assert (
            cli("add", "models/big/ckpt-1", "--model", "big", "--step", "1", "--run-id", RUN).code
            == 0
        )
        name = "big-train-full-r1-step000001"
        # One upload at a time, so the server stops between two of them; without
        # botocore's retries the failing run ends in about a second.
        push = subprocess.Popen(
            [str(Path(sys.executable).parent / "dvcckpt"), "push", name, "--jobs", "1"],
            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "AWS_MAX_ATTEMPTS": "1"},
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not objects(server, prefix) and push.poll() is None:
            assert time.monotonic() < deadline, "the push never started uploading"
            time.sleep(0.01)
        server.stop(kill=True)
        out, err = push.communicate(timeout=120)
        assert push.returncode == 4, (out, err)
        assert "push to remote 'storage'" in err and "not reachable" in err
        assert "hint: is the S3 endpoint reachable?" in err

        server.start()
        uploaded = objects(server, prefix)
        assert 0 < len(uploaded) < 13, f"the server should have stopped mid-push: {uploaded}"
        assert all(size == 6 << 20 for key, size in uploaded.items() if not key.endswith(".dir"))
        code, table = statuses(cli, name, "--remote")
        assert code == 1 and table[name]["remote"] == "missing"  # never claimed as pushed

        again = cli("push", name, "--json")
        assert again.code == 0, again.err
        assert json.loads(again.out)["files"] == 13 - len(uploaded), uploaded
        assert statuses(cli, name, "--remote") == (
            0, {name: {"workspace": "ok", "cache": "ok", "remote": "ok"}}
        )  # fmt: skip
    finally:
        server.stop(kill=True)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_unwritable_cache(repo: Path, cli, s3_server, tmp_path: Path) -> None:
    # Root ignores file modes; inside an unprivileged user namespace it does not.
    configure(cli, s3_server)
    register_two(repo, cli)
    assert cli("push", FILE_NAME).code == 0
    drop_local_copies(repo)
    site = tmp_path / "site-cache"  # DVC's per-user index folder must stay writable
    site.mkdir(mode=0o777)
    with (repo / ".dvc/config.local").open("a") as config:
        config.write(f"[core]\n    site_cache_dir = {site}\n")
    (repo / ".dvc/cache/files/md5").mkdir(parents=True)
    for path in [repo / ".dvc/tmp", *(repo / ".dvc/tmp").rglob("*"), repo / "models/m", site]:
        path.chmod(0o777)
    for path in [repo / ".dvc/cache", *(repo / ".dvc/cache").rglob("*")]:
        path.chmod(0o555)
    result = run_process(
        "pull", FILE_NAME, cwd=repo, prefix=("unshare", "--user"),
        env={"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory",
             "GIT_CONFIG_VALUE_0": "*"},
    )  # fmt: skip
    for path in [repo / ".dvc/cache", *(repo / ".dvc/cache").rglob("*")]:
        path.chmod(0o755)
    assert result.code == 4, result.err
    assert "permission denied" in result.err and ".dvc/cache" in result.err
    assert "hint: check the file's permissions" in result.err
    assert not (repo / "models/m/step-1.pt").exists()


def test_doctor_warns_about_plain_http_and_missing_encryption(repo: Path, cli) -> None:
    for args in (
        ("remote", "add", "lan", "s3://models/a", "--endpoint", "http://10.1.2.3:9000"),
        ("remote", "add", "safe", "s3://models/b", "--endpoint", "https://s3.example.com",
         "--sse", "AES256"),
        ("remote", "add", "here", "s3://models/c", "--endpoint", "http://127.0.0.1:9000",
         "--sse", "AES256"),
    ):  # fmt: skip
        assert cli(*args).code == 0
    report = {r["name"]: r["missing"] for r in json.loads(cli("doctor", "--json").out)}
    assert report["remote lan"] == ["remote.https", "remote.sse"]
    assert "remote safe" not in report and "remote here" not in report
    text = cli("doctor").out
    assert "remote.https: use an https:// endpoint" in text
    assert "remote.sse: encrypt objects at rest" in text
    shared = repo / ".dvc/config"  # a secret committed by hand
    shared.write_text(shared.read_text().replace("url = s3://models/b\n",
                      "url = s3://models/b\n    secret_access_key = oops\n"))  # fmt: skip
    report = {r["name"]: r["missing"] for r in json.loads(cli("doctor", "--json").out)}
    assert report["remote safe"] == ["remote.credentials"]


def test_progress_bars_show_on_a_terminal_only(repo: Path, cli) -> None:
    checkpoint = repo / "models/m/step-1.pt"
    checkpoint.parent.mkdir(parents=True)
    with checkpoint.open("wb") as handle:
        handle.truncate(384 << 20)  # sparse: quick to write, as slow to hash as any data
    assert cli("add", "models/m/step-1.pt", "--step", "1", "--run-id", RUN).code == 0
    quiet = cli("verify", FILE_NAME)
    assert quiet.code == 0 and quiet.err == ""
    primary, secondary = pty.openpty()
    try:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "dvcckpt"), "verify", FILE_NAME],
            cwd=repo, stdout=subprocess.PIPE, stderr=secondary, check=False,
        )  # fmt: skip
    finally:
        os.close(secondary)
    shown = b""
    with suppress(OSError):  # EIO once everything written to the terminal is read
        while chunk := os.read(primary, 65536):
            shown += chunk
    os.close(primary)
    assert done.returncode == 0
    assert b"Verifying" in shown and b"MB" in shown
