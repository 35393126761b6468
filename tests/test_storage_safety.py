"""Storage cannot write outside its place, never deletes on a remote, and survives faults.

Real DVC, real git, a real local-filesystem remote and a real S3 server (SeaweedFS):
hostile `.dir` listings, `.dvc` files and cards; corrupted remote and cache objects;
`get --force` onto folders that are not the checkpoint; credentials in remote URLs;
an endpoint that never answers; Ctrl-C during `pull` and `verify`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dvcckpt.adapters import dvcfiles
from dvcckpt.core import manifest
from tests.conftest import BIN, git
from tests.corpus import assert_user_error, changed, snapshot
from tests.s3server import ACCESS_KEY, BUCKET, SECRET_KEY, S3Server, running_server
from tests.test_storage import RUN, register_two

FILE = "m-train-full-r1-step000001"
DIR = "d-train-full-r1-step000002"


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    yield from running_server(tmp_path_factory.mktemp("seaweedfs-safety"))


def local_remote(cli, root: Path) -> Path:
    """A plain file-system DVC remote (the kind DVC's own pull deletes objects from)."""
    store = root.parent / f"store-{uuid.uuid4().hex[:6]}"
    store.mkdir()
    assert cli("remote", "add", "disk", str(store), "--default").code == 0
    return store


def s3_remote(cli, server: S3Server, name: str = "storage", endpoint: str | None = None) -> str:
    prefix = f"s-{uuid.uuid4().hex[:10]}"
    added = cli("remote", "add", name, f"s3://{BUCKET}/{prefix}", "--endpoint",
                endpoint or server.endpoint, "--access-key-id", ACCESS_KEY,
                "--secret-access-key", SECRET_KEY, "--default")  # fmt: skip
    assert added.code == 0, added.err
    return prefix


def card_md5(repo: Path, path: str) -> str:
    text = (repo / f"{path}.ckpt.yaml").read_text()
    return next(line.split()[-1] for line in text.splitlines() if "md5:" in line)


def object_key(md5: str) -> str:
    return f"files/md5/{md5[:2]}/{md5[2:]}"


def drop_local(repo: Path) -> None:
    shutil.rmtree(repo / ".dvc/cache", ignore_errors=True)
    shutil.rmtree(repo / "models/d/ckpt-2", ignore_errors=True)
    (repo / "models/m/step-1.pt").unlink(missing_ok=True)


def no_leftovers(repo: Path) -> None:
    assert not list((repo / ".dvc/tmp").glob("dvcckpt-checkout-*"))
    status = git(repo, "status", "--porcelain", "--untracked-files=all", "models")
    assert not [line for line in status.splitlines() if line.startswith("??")]


# --- listings and paths: pure rules, table-driven and property-based ----------------------

UNSAFE_LISTINGS = {
    "parent": [("../../../.git/config", "a" * 32)],
    "absolute": [("/etc/passwd", "a" * 32)],
    "empty component": [("a//b", "a" * 32)],
    "dot": [("./a", "a" * 32)],
    "backslash": [("..\\..\\x", "a" * 32)],
    "newline": [("a\n0000  b", "a" * 32)],
    "escape": [("a\x1b[2J", "a" * 32)],
    "duplicate": [("a", "a" * 32), ("a", "b" * 32)],
    "file and folder": [("a", "a" * 32), ("a/b", "b" * 32)],
    "bad md5": [("a", "../../etc/hostname")],
    "uppercase md5": [("a", "A" * 32)],
    "empty": [],
}


@pytest.mark.parametrize("case", sorted(UNSAFE_LISTINGS))
def test_unsafe_listings_are_refused(case: str) -> None:
    entries = UNSAFE_LISTINGS[case]
    assert manifest.listing_problem(entries) is not None
    data = json.dumps([{"md5": m, "relpath": r} for r, m in entries]).encode()
    with pytest.raises(ValueError, match="directory manifest"):
        dvcfiles.parse_tree(data)


@given(st.lists(st.text(alphabet="ab./\\\n\x00:é", min_size=1, max_size=8), max_size=4))
def test_any_path_a_listing_accepts_stays_inside(parts: list[str]) -> None:
    relpath = "/".join(parts)
    if manifest.relpath_problem(relpath) is None:
        base = Path("/base")
        assert base.joinpath(*relpath.split("/")).resolve().is_relative_to(base)
        assert "\n" not in relpath and "\\" not in relpath


def test_version_aware_listing_md5_is_dvcs() -> None:
    # The md5 DVC 3 gave a two-file directory (recorded by a real version-aware push).
    entries = [("model.bin", "02d70047088c618564dc1faf71f0bc60"),
               ("sub/config.json", "8e8ab405f0168641ff8b77378dd34184")]  # fmt: skip
    assert manifest.dvc_tree_md5(reversed(entries)) == "98eb33faca04aff3ed8317d69cf710b5.dir"


def test_cache_paths_never_leave_the_cache(tmp_path: Path) -> None:
    for md5 in ("ab/../../../../etc/hostname", "", "A" * 32, "a" * 31, "a" * 32 + ".dirx"):
        with pytest.raises(Exception, match="invalid DVC md5"):
            dvcfiles.cache_object(tmp_path, md5)


# --- hostile .dvc files and cards -------------------------------------------------------------

GOOD_MD5 = "6ed41b3543e5f93d2c3db21b7dbbc2f9"
BAD_POINTERS = {
    "md5 path": ("outs:\n- md5: ab/../../../../etc/hostname\n  size: 1\n  path: step-1.pt\n",
                 "outs[0].md5"),
    "md5 uppercase": (f"outs:\n- md5: {GOOD_MD5.upper()}\n  path: step-1.pt\n", "outs[0].md5"),
    "negative size": (f"outs:\n- md5: {GOOD_MD5}\n  size: -1\n  path: step-1.pt\n",
                      "outs[0].size"),
    "text size": (f"outs:\n- md5: {GOOD_MD5}\n  size: big\n  path: step-1.pt\n", "outs[0].size"),
    "two outs": (f"outs:\n- md5: {GOOD_MD5}\n  path: a\n- md5: {GOOD_MD5}\n  path: b\n", "outs"),
    "no outs": ("outs: []\n", "outs"),
    "not a mapping": ("- 1\n", "outs"),
    "no md5": ("outs:\n- size: 1\n  path: step-1.pt\n", "outs[0].md5"),
    "md5-less files, unsafe": ("outs:\n- path: step-1.pt\n  files:\n  - relpath: ../../x\n"
                               f"    md5: {GOOD_MD5}\n", "outs[0].files"),
    "files disagree with md5": (f"outs:\n- md5: {'b' * 32}.dir\n  path: p\n  files:\n"
                                f"  - relpath: x\n    md5: {GOOD_MD5}\n", "outs[0].files"),
    "other hash": (f"outs:\n- md5: {GOOD_MD5}\n  hash: sha1\n  path: step-1.pt\n",
                   "outs[0].hash"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_POINTERS))
def test_malformed_pointer_is_a_clear_error(repo: Path, cli, case: str) -> None:
    local_remote(cli, repo)
    register_two(repo, cli)
    text, field = BAD_POINTERS[case]
    (repo / "models/m/step-1.pt.dvc").write_text(text)
    (repo / "models/m/step-1.pt").unlink()
    before = snapshot(repo)
    result = cli("pull", FILE)
    assert_user_error(result.code, result.err, names=("models/m/step-1.pt.dvc", field))
    assert result.code == 3
    assert changed(before, snapshot(repo)) == []


def test_card_md5_outside_the_cache_is_refused_before_hashing(repo: Path, cli) -> None:
    register_two(repo, cli)
    card = repo / "models/m/step-1.pt.ckpt.yaml"
    card.write_text(card.read_text().replace(card_md5(repo, "models/m/step-1.pt"),
                                             "ab/../../../../etc/hostname"))  # fmt: skip
    before = snapshot(repo)
    for command in (("verify", FILE), ("push", FILE), ("pull", FILE)):
        result = cli(*command)
        assert_user_error(result.code, result.err, names=("checkpoint.dvc.md5",))
    assert changed(before, snapshot(repo)) == []
    assert not (repo / ".dvc/tmp/dvcckpt-quarantine").exists()


# --- hostile listings on a remote and in the cache --------------------------------------------


def forge_directory(repo: Path, store: Path, relpath: str, payload: bytes) -> None:
    """Point the directory checkpoint's card and .dvc at a listing that writes to `relpath`."""
    payload_md5 = hashlib.md5(payload).hexdigest()
    listing = manifest.dvc_tree_bytes([(relpath, payload_md5)])
    listing_md5 = hashlib.md5(listing).hexdigest() + ".dir"
    for md5, data in ((payload_md5, payload), (listing_md5, listing)):
        target = store / object_key(md5)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    old = card_md5(repo, "models/d/ckpt-2")
    for name in ("models/d/ckpt-2.ckpt.yaml", "models/d/ckpt-2.dvc"):
        path = repo / name
        path.write_text(
            path.read_text().replace(old, listing_md5).replace("nfiles: 2", "nfiles: 1")
        )


@pytest.mark.parametrize("relpath", ["../../../.git/config", "../../.dvc/config", "ok/\nx"])
def test_listing_that_escapes_writes_nothing(repo: Path, cli, relpath: str) -> None:
    store = local_remote(cli, repo)
    register_two(repo, cli)
    assert cli("push", "--all").code == 0
    forge_directory(repo, store, relpath, b"[core]\n\tfsmonitor = touch /tmp/owned\n")
    drop_local(repo)
    before = snapshot(repo)
    result = cli("pull", DIR)
    assert_user_error(result.code, result.err, names=(DIR,))
    assert "refused" in result.err
    assert list((repo / ".dvc/tmp/dvcckpt-quarantine").glob("*/models/d/ckpt-2.dir")), result.err
    assert changed(before, snapshot(repo)) == []  # .git/config included
    assert not (repo / "models/d/ckpt-2").exists()
    no_leftovers(repo)  # and no untracked file: nothing written anywhere


def test_listing_replaced_on_the_remote_is_caught_by_its_md5(repo: Path, cli) -> None:
    store = local_remote(cli, repo)
    register_two(repo, cli)
    assert cli("push", "--all").code == 0
    md5 = card_md5(repo, "models/d/ckpt-2")
    evil = manifest.dvc_tree_bytes([("../../../.git/config", GOOD_MD5)])
    (store / object_key(md5)).chmod(0o644)
    (store / object_key(md5)).write_bytes(evil)
    drop_local(repo)
    before = snapshot(repo)
    result = cli("pull", DIR)
    assert result.code == 1, result.err
    assert f"{store / object_key(md5)}: directory listing is corrupted" in result.err
    assert changed(before, snapshot(repo)) == []
    assert (store / object_key(md5)).read_bytes() == evil  # still there for inspection
    kept = list((repo / ".dvc/tmp/dvcckpt-quarantine").glob("*/models/d/ckpt-2.dir"))
    assert [p.read_bytes() for p in kept] == [evil]  # and the download is quarantined
    listed = cli("verify", DIR, "--remote")
    assert listed.code == 1 and "directory listing is corrupted" in listed.out


CARD_LIES = {
    "size": ("  size: 20300\n  files: 2\n", "  size: 20301\n  files: 2\n", "20300 bytes"),
    "file count": ("  size: 20300\n  files: 2\n", "  size: 20300\n  files: 3\n", "2 files"),
    ".dvc file count": ("nfiles: 2", "nfiles: 1", "its .dvc file says 1"),
}


@pytest.mark.parametrize("case", sorted(CARD_LIES))
def test_listing_must_match_the_card_and_pointer(repo: Path, cli, case: str) -> None:
    local_remote(cli, repo)
    register_two(repo, cli)
    assert cli("push", "--all").code == 0
    old, new, said = CARD_LIES[case]
    target = repo / (
        "models/d/ckpt-2.dvc" if case.startswith(".dvc") else "models/d/ckpt-2.ckpt.yaml"
    )
    assert old in target.read_text()
    target.write_text(target.read_text().replace(old, new))
    drop_local(repo)
    result = cli("pull", DIR)
    assert_user_error(result.code, result.err, names=(DIR,))
    assert result.code == 1 and said in result.err
    assert not (repo / "models/d/ckpt-2").exists() and not (repo / ".dvc/cache/files").exists()
    no_leftovers(repo)


# --- corrupted objects: kept on the remote, quarantined here, repaired by push ----------------


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_corrupted_remote_object_is_never_deleted_and_push_repairs_it(
    repo: Path, cli, s3_server: S3Server, kind: str
) -> None:
    if kind == "local":
        store = local_remote(cli, repo)
    else:
        prefix = s3_remote(cli, s3_server)
    register_two(repo, cli)
    assert cli("push", "--all").code == 0
    md5 = card_md5(repo, "models/m/step-1.pt")
    good = (repo / "models/m/step-1.pt").read_bytes()
    bad = bytearray(good)
    bad[100] ^= 1
    if kind == "local":
        (store / object_key(md5)).chmod(0o644)
        (store / object_key(md5)).write_bytes(bytes(bad))
    else:
        s3_server.client().put_object(
            Bucket=BUCKET, Key=f"{prefix}/{object_key(md5)}", Body=bytes(bad)
        )

    def remote_bytes() -> bytes:
        if kind == "local":
            return (store / object_key(md5)).read_bytes()
        reply = s3_server.client().get_object(Bucket=BUCKET, Key=f"{prefix}/{object_key(md5)}")
        return bytes(reply["Body"].read())

    saved = repo.parent / "intact.pt"
    shutil.copyfile(repo / "models/m/step-1.pt", saved)
    drop_local(repo)
    pulled = cli("pull", FILE)
    assert pulled.code == 1, pulled.err
    assert f"{object_key(md5)} is corrupted" in pulled.err and "nothing was deleted" in pulled.err
    assert remote_bytes() == bytes(bad)  # DVC's own pull deletes it from a local remote
    [folder] = (repo / ".dvc/tmp/dvcckpt-quarantine").iterdir()
    assert (folder / "models/m/step-1.pt").read_bytes() == bytes(bad)
    assert not (repo / "models/m/step-1.pt").exists()
    no_leftovers(repo)

    # The machine with an intact copy pushes: the corrupted object is replaced, not skipped.
    cache = dvcfiles.cache_object(repo / ".dvc/cache", md5)
    cache.parent.mkdir(parents=True)
    shutil.copyfile(saved, cache)
    shutil.copyfile(saved, repo / "models/m/step-1.pt")
    pushed = cli("push", FILE, "--json")
    assert pushed.code == 0, pushed.err
    assert json.loads(pushed.out)["files"] == 1
    assert "replaced 1 corrupted remote object(s)" in json.loads(pushed.out)["note"]
    assert remote_bytes() == good
    kept = list((repo / ".dvc/tmp/dvcckpt-quarantine").glob(f"*/remote/{object_key(md5)}"))
    assert [p.read_bytes() for p in kept] == [bytes(bad)]
    again = cli("push", FILE, "--json")  # intact now: nothing to send or replace
    assert again.code == 0 and json.loads(again.out)["files"] == 0 and again.err == ""
    drop_local(repo)
    assert cli("pull", FILE).code == 0
    assert (repo / "models/m/step-1.pt").read_bytes() == good


def test_pull_repairs_cache_bit_rot_behind_an_intact_work_tree(repo: Path, cli) -> None:
    local_remote(cli, repo)
    register_two(repo, cli)
    assert cli("push", "--all").code == 0
    md5 = dict(dvcfiles.parse_tree(dvcfiles.cache_object(
        repo / ".dvc/cache", card_md5(repo, "models/d/ckpt-2")).read_bytes()))["model.bin"]  # fmt: skip
    rotten = dvcfiles.cache_object(repo / ".dvc/cache", md5)
    rotten.chmod(0o644)
    rotten.write_bytes(b"rot" + rotten.read_bytes()[3:])
    assert cli("verify", DIR).code == 1
    pulled = cli("pull", DIR)
    assert pulled.code == 0, pulled.err
    assert "1 corrupted cache object(s) replaced" in pulled.err
    assert cli("verify", DIR).code == 0
    assert list((repo / ".dvc/tmp/dvcckpt-quarantine").glob(f"*/cache/{object_key(md5)}"))


def test_modified_work_tree_copy_is_never_overwritten(repo: Path, cli) -> None:
    local_remote(cli, repo)
    register_two(repo, cli)
    assert cli("push", "--all").code == 0
    (repo / "models/d/ckpt-2/model.bin").write_bytes(b"my edits")
    result = cli("pull", DIR)
    assert_user_error(result.code, result.err, names=("models/d/ckpt-2",))
    assert (repo / "models/d/ckpt-2/model.bin").read_bytes() == b"my edits"


# --- get -o DIR --force replaces a copy of the checkpoint, nothing else -----------------------


@pytest.fixture
def source(repo: Path, cli) -> Path:
    register_two(repo, cli)
    return repo


GET_TARGETS = {
    "current directory": (DIR, "."),
    "parent of the current directory": (DIR, ".."),
    "folder with other files": (DIR, "other"),
    "folder with a .git": (DIR, "project"),
    "file for a directory": (DIR, "notes.txt"),
    "folder for a file": (FILE, "other"),
    "symbolic link": (FILE, "link"),
}


@pytest.mark.parametrize("case", sorted(GET_TARGETS))
def test_get_force_refuses_what_is_not_the_checkpoint(
    source: Path, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    work = tmp_path / "work"
    (work / "other").mkdir(parents=True)
    (work / "other/thesis.tex").write_text("years of work")
    (work / "project/.git").mkdir(parents=True)
    (work / "project/model.bin").write_text("not a checkpoint")
    (work / "notes.txt").write_text("notes")
    (work / "link").symlink_to(work / "notes.txt")
    (work / "here").mkdir()
    monkeypatch.chdir(work / "here" if case.startswith("parent") else work)
    name, target = GET_TARGETS[case]
    before = snapshot(work)
    result = cli("get", str(source), name, "-o", target, "--force")
    assert_user_error(result.code, result.err, names=("refusing to replace",))
    assert changed(before, snapshot(work)) == []


def test_get_force_replaces_an_earlier_copy(source: Path, cli, tmp_path: Path, monkeypatch) -> None:
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    monkeypatch.chdir(tmp_path)
    assert cli("get", str(source), DIR, "-o", "ckpt").code == 0
    (tmp_path / "ckpt/model.bin").write_bytes(b"edited")
    (tmp_path / "ckpt/sub/config.json").unlink()
    refused = cli("get", str(source), DIR, "-o", "ckpt")
    assert refused.code == 2 and "--force" in refused.err
    replaced = cli("get", str(source), DIR, "-o", "ckpt", "--force")
    assert replaced.code == 0, replaced.err
    original = (source / "models/d/ckpt-2/model.bin").read_bytes()
    assert (tmp_path / "ckpt/model.bin").read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temp sibling left


# --- credentials in remote URLs -----------------------------------------------------------------

CREDENTIAL_URLS = {
    "s3 key in url": ("s3://AKIAEXAMPLE:s3cr3t@bucket/path",),
    "https password": ("https://user:s3cr3t@dvc.example.com/store",),
    "https token": ("https://s3cr3t@dvc.example.com/store",),
    "ssh password": ("ssh://user:s3cr3t@host/store",),
    "webdav token": ("webdavs://s3cr3t@host/store",),
    "endpoint password": ("s3://bucket/p", "--endpoint", "https://k:s3cr3t@s3.example.com"),
}


@pytest.mark.parametrize("case", sorted(CREDENTIAL_URLS))
def test_remote_add_refuses_embedded_credentials(repo: Path, cli, case: str) -> None:
    before = snapshot(repo)
    result = cli("remote", "add", "r", *CREDENTIAL_URLS[case])
    assert_user_error(result.code, result.err, names=("credentials",))
    assert "s3cr3t" not in result.err + result.out
    assert "--local" in result.err
    assert changed(before, snapshot(repo)) == []


def test_remote_list_never_shows_credentials(repo: Path, cli) -> None:
    assert cli("remote", "add", "ok", "ssh://git@host/store").code == 0  # a user name is fine
    with (repo / ".dvc/config").open("a") as config:  # written by hand, or by an old version
        config.write("['remote \"old\"']\n    url = https://user:s3cr3t@host/x\n"
                     "    password = s3cr3t\n")  # fmt: skip
    for args in (("remote", "list"), ("remote", "list", "--json")):
        listed = cli(*args)
        assert listed.code == 0 and "s3cr3t" not in listed.out, listed.out
        assert "https://***@host/x" in listed.out and "ssh://git@host/store" in listed.out


# --- a silent endpoint, Ctrl-C -------------------------------------------------------------------


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """Accepts TCP connections and never answers (a black-holing proxy or firewall)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def test_silent_endpoint_fails_fast(repo: Path, cli, silent_endpoint: str) -> None:
    register_two(repo, cli)
    added = cli("remote", "add", "storage", f"s3://{BUCKET}/x", "--endpoint", silent_endpoint,
                "--access-key-id", ACCESS_KEY, "--secret-access-key", SECRET_KEY, "--default")  # fmt: skip
    assert added.code == 0
    (repo / "models/m/step-1.pt").unlink()
    dvcfiles.cache_object(repo / ".dvc/cache", card_md5(repo, "models/m/step-1.pt")).unlink()
    commands = (("push", DIR), ("pull", FILE), ("verify", DIR, "--remote"))
    started = time.monotonic()
    running = [subprocess.Popen([str(BIN / "dvcckpt"), *c], cwd=repo, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for c in commands]  # fmt: skip
    for command, process in zip(commands, running, strict=True):
        _, err = process.communicate(timeout=90)
        elapsed = time.monotonic() - started
        assert elapsed < 60, f"{command} took {elapsed:.0f} s"
        assert process.returncode == 4, (command, err)
        assert_user_error(process.returncode, err, names=("did not answer within",))
    print(f"silent endpoint: all three commands failed within {time.monotonic() - started:.1f} s")


class SlowProxy:
    """A loopback TCP proxy that forwards replies at ~`rate` bytes/s (to interrupt downloads)."""

    def __init__(self, upstream: str, rate: int = 256 << 10) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.rate = rate
        self.server = socket.create_server(("127.0.0.1", 0))
        self.stop = threading.Event()
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.getsockname()[1]}"

    def _serve(self) -> None:
        self.server.settimeout(0.2)
        while not self.stop.is_set():
            try:
                client = self.server.accept()[0]
            except (TimeoutError, OSError):
                continue
            upstream = socket.create_connection(self.upstream)
            self.connections += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, 0), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, self.rate),
                             daemon=True).start()  # fmt: skip

    def _pump(self, source: socket.socket, sink: socket.socket, rate: int) -> None:
        deadline = time.monotonic() + 120  # bounded, whatever happens
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                end.close()

    def close(self) -> None:
        """Like a killed server: every connection is reset (its peer sees it at once)."""
        self.stop.set()
        self.server.close()
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def interrupt(repo: Path, *command: str, started: str | None) -> subprocess.CompletedProcess[str]:
    """Run a command, press Ctrl-C once the `started` glob matches (else after 3 s)."""
    process = subprocess.Popen([str(BIN / "dvcckpt"), *command], cwd=repo, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + (30 if started else 3)
    while not (started and list(repo.glob(started))) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    time.sleep(0.5)  # well into the transfer
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def test_ctrl_c_and_a_dying_server_during_pull_and_verify(
    repo: Path, cli, s3_server: S3Server
) -> None:
    prefix = s3_remote(cli, s3_server, name="fast")
    folder = repo / "models/big/ckpt-1"
    for index in range(4):
        (folder / f"shard-{index}.bin").parent.mkdir(parents=True, exist_ok=True)
        (folder / f"shard-{index}.bin").write_bytes(os.urandom(1 << 20))
    assert (
        cli("add", "models/big/ckpt-1", "--model", "big", "--step", "1", "--run-id", RUN).code == 0
    )
    name = "big-train-full-r1-step000001"
    assert cli("push", name).code == 0
    proxy = SlowProxy(s3_server.endpoint)
    try:
        assert cli("remote", "add", "slow", f"s3://{BUCKET}/{prefix}", "--endpoint",
                   proxy.endpoint, "--access-key-id", ACCESS_KEY, "--secret-access-key",
                   SECRET_KEY, "--default", "--force").code == 0  # fmt: skip
        checked = interrupt(repo, "verify", name, "--remote", started=None)
        assert checked.returncode == 130, checked.stderr
        assert "Traceback" not in checked.stderr and "error: interrupted" in checked.stderr

        shutil.rmtree(folder)
        shutil.rmtree(repo / ".dvc/cache")
        before = snapshot(repo)
        pulled = interrupt(repo, "pull", name, started=".dvc/tmp/dvcckpt-checkout-*/objects/*")
        assert pulled.returncode == 130, pulled.stderr
        assert "Traceback" not in pulled.stderr and "error: interrupted" in pulled.stderr
        assert not folder.exists()  # no partial checkpoint in place
        assert changed(before, snapshot(repo)) == []  # nor a partial object in the cache
        no_leftovers(repo)
    finally:
        proxy.close()

    # The server goes away mid-download: a clear error, nothing in place, nothing left.
    proxy = SlowProxy(s3_server.endpoint)
    try:
        assert cli("remote", "add", "slow", f"s3://{BUCKET}/{prefix}", "--endpoint",
                   proxy.endpoint, "--access-key-id", ACCESS_KEY, "--secret-access-key",
                   SECRET_KEY, "--default", "--force").code == 0  # fmt: skip
        process = subprocess.Popen([str(BIN / "dvcckpt"), "pull", name], cwd=repo, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        deadline = time.monotonic() + 30
        while not list(repo.glob(".dvc/tmp/dvcckpt-checkout-*/objects/*")):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.01)
    finally:
        proxy.close()
    started = time.monotonic()
    _, err = process.communicate(timeout=120)
    assert_user_error(process.returncode, err, names=("remote 'slow'",))
    assert process.returncode == 4 and time.monotonic() - started < 60
    assert not folder.exists() and not (repo / ".dvc/cache/files").exists()
    no_leftovers(repo)
    again = cli("pull", name, "-r", "fast")
    assert again.code == 0, again.err
    assert cli("verify", name).code == 0


def test_push_killed_mid_upload_records_nothing_false_and_the_rerun_completes(
    repo: Path, cli, s3_server: S3Server
) -> None:
    """SIGKILL of `push` while it uploads: the remote never passes verification with a
    partial object, and running push again sends what is missing."""
    s3_remote(cli, s3_server)
    folder = repo / "models/big/ckpt-1"
    folder.mkdir(parents=True)
    for index in range(8):
        (folder / f"shard-{index}.bin").write_bytes(os.urandom(4 << 20))
    assert (
        cli("add", "models/big/ckpt-1", "--model", "big", "--step", "1", "--run-id", RUN).code == 0
    )
    name = "big-train-full-r1-step000001"
    for delay in (0.3, 1.2):
        process = subprocess.Popen([str(BIN / "dvcckpt"), "push", name], cwd=repo,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        checked = cli("verify", name, "--remote")
        if checked.code == 0:
            break  # the upload had finished before the kill
        # The directory listing goes up last, so a partial upload is never complete.
        assert checked.code == 1 and "remote missing" in checked.out, checked.out + checked.err
    pushed = cli("push", name)
    assert pushed.code == 0, pushed.err
    assert cli("verify", name, "--remote").code == 0
    no_leftovers(repo)
