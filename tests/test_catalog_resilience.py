"""The catalog never dies: bad history, damaged files and hostile environments, with real git.

- Bad cards and commits already in history (committed with --no-verify or by older
  versions): every query keeps working, and `catalog status` lists what was skipped.
- A catalog file in any broken state is rebuilt transparently, with the same answers.
- Faults: SIGKILL during `catalog rebuild`, two worktrees, unshallowing, history
  rewritten and garbage-collected, a full disk (small tmpfs), a read-only catalog.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dvcckpt.adapters.atomic import FAULT_POINT
from dvcckpt.catalog import Catalog, index_problems
from tests.conftest import git, run_process
from tests.corpus import assert_user_error, changed, snapshot, tmpfs
from tests.test_catalog import card_text

CONFIG = "version: 1\nproject: demo\nstages: [dev, staging, production]\n"
GATES = """\
version: 1
gates:
  - stage: production
    rules:
      - {name: dev-f1, metric: metrics.dev.f1, op: ">=", value: 0.4}
"""
GOOD = "m-train-full-step000001"
BAD_PATH = "models/m/step-2.pt.ckpt.yaml"
BASE_CARD = card_text("m-x", "m", 2, {"dev": {"f1": 0.5}})
HEADER = "schema: {id: dvcckpt/checkpoint, version: '1.1'}\nname: m-x\nmodel: m\n"
YEAR_10000 = "@253402300800 +0000"
FAR_FUTURE = "@99999999999999 +0000"  # year 3,170,843


def promoted(card: str) -> str:
    decision = (
        "decisions:\n  - {verdict: promoted, stage: production, at: '2026-01-01T00:00:00Z',"
        " by: {name: a, email: a@example.com}, rationale: ok}\n"
    )
    return card + decision


# name -> (card text or bytes, commit subject, commit dates, expected: is it an index error)
# None: either way is fine (the card reader decides), as long as nothing breaks.
BAD_HISTORY: dict[str, tuple[str | bytes, str, str | None, bool | None]] = {
    "step beyond int64": (BASE_CARD.replace("step: 2\n", "step: 99999999999999999999\n"), "s", None, True),
    "metric beyond int64": (BASE_CARD.replace("f1: 0.5", "f1: -99999999999999999999"), "s", None, True),
    "NaN metric": (BASE_CARD.replace("f1: 0.5", "f1: .nan"), "s", None, True),
    "infinite metric": (BASE_CARD.replace("f1: 0.5", "f1: -.inf"), "s", None, True),
    "subject with \\x1e": (BASE_CARD, "bad \x1e subject", None, False),
    "subject with \\x1f": (BASE_CARD, "bad \x1f sub\x1fject\x1e", None, False),
    "non-string keys": (BASE_CARD.replace("f1: 0.5", "1: 0.5\n    '1': 0.9"), "s", None, None),
    "complex key": (BASE_CARD + "? [a, b]\n: c\n", "s", None, True),
    "decisions a string": (BASE_CARD + "decisions: hello\n", "s", None, None),
    "decisions ints": (BASE_CARD + "decisions: [1, 2]\n", "s", None, None),
    "decision missing fields": (BASE_CARD + "decisions:\n  - verdict: promoted\n", "s", None, None),
    "decision wrong types": (
        BASE_CARD + "decisions:\n  - {verdict: [1], stage: {a: 1}, by: 3, gates: x, at: 5}\n",
        "s", None, None,
    ),
    "year 10000 commit": (BASE_CARD, "s", YEAR_10000, False),
    "far-future commit": (BASE_CARD, "s", FAR_FUTURE, False),
    "no checkpoint section": (HEADER + "metrics: {dev: {f1: 0.5}}\n", "s", None, False),
    "no checkpoint, a promotion": (promoted(HEADER + "metrics: {dev: {f1: 0.9}}\n"), "s", None, None),
    "checkpoint a string": (HEADER + "checkpoint: hello\nrun: 5\nmetrics: hi\n", "s", None, False),
    "a list": ("- a\n- b\n", "s", None, True),
    "a scalar": ("just text\n", "s", None, True),
    "empty": ("", "s", None, True),
    "invalid YAML": ("a: [\n", "s", None, True),
    "not UTF-8": (b"name: \xff\xfe\n", "s", None, True),
    "2 MB card": (BASE_CARD + "x-lines:\n" + ("  - " + "y" * 60 + "\n") * 32_000, "s", None, None),
    "17 MB blob": (b"x" * (17 << 20), "s", None, True),
    "deep nesting": (BASE_CARD + "x-deep: " + "[" * 600 + "]" * 600 + "\n", "s", None, True),
}  # fmt: skip
COMMANDS = (
    ("find", "--json", "--all"),
    ("find", "--where", "step >= 1"),
    ("log", "--metric", "dev.f1"),
    ("log", "m", "--metric", "dev.f1", "--json"),
    ("stages", "--json"),
    ("report",),
    ("diff", "HEAD~1", "HEAD"),
    ("diff", GOOD, "m-x"),
    ("catalog", "status"),
    ("audit", "--json"),
)


def commit(repo: Path, message: str, date: str | None = None) -> None:
    env = {**os.environ, **({"GIT_COMMITTER_DATE": date, "GIT_AUTHOR_DATE": date} if date else {})}
    subprocess.run(["git", "-C", str(repo), "add", "--all"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", message, "--no-verify"],
                   check=True, env=env)  # fmt: skip


@pytest.fixture
def project(repo: Path) -> Path:
    """main: config, gates and one good card; then branch `pr`."""
    (repo / "dvcckpt.yaml").write_text(CONFIG)
    (repo / "gates.yaml").write_text(GATES)
    good = repo / "models/m/step-1.pt.ckpt.yaml"
    good.parent.mkdir(parents=True)
    good.write_text(card_text(GOOD, "m", 1, {"dev": {"f1": 0.5}}))
    commit(repo, "good card")
    git(repo, "checkout", "-qb", "pr")
    return repo


@pytest.mark.parametrize("case", sorted(BAD_HISTORY))
def test_bad_card_or_commit_in_history_breaks_no_command(project: Path, cli, case: str) -> None:
    content, subject, date, unindexable = BAD_HISTORY[case]
    path = project / BAD_PATH
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    commit(project, subject, date)
    for args in COMMANDS:
        result = cli(*args)
        assert result.code != 70, (args, result.err)
        if result.code:
            assert_user_error(result.code, result.err)
    found = json.loads(cli("find", "--json", "--all").out)
    assert GOOD in {item["card"]["name"] for item in found}  # the rest is still indexed
    status = json.loads(cli("catalog", "status", "--json").out)
    listed = {p["path"]: p for p in status["index_errors"]}
    if unindexable is not None:
        assert (BAD_PATH in listed) == unindexable, status["index_errors"]
    if BAD_PATH in listed:
        assert (
            listed[BAD_PATH]["message"]
            and listed[BAD_PATH]["commit"] == git(project, "rev-parse", "HEAD").strip()
        )
        assert [p.path for p in index_problems(project)] == [BAD_PATH]  # for `doctor`
        report = cli("report")
        assert report.code == 0 and "cannot be read" in report.out and BAD_PATH in report.out
        assert "could not be indexed" in cli("catalog", "status").out
        doctor = json.loads(cli("doctor", "--json").out)
        head = git(project, "rev-parse", "--short=10", "HEAD").strip()
        assert any(d["card"] == BAD_PATH and f"in commit {head}" in (d["error"] or "")
                   for d in doctor), doctor  # fmt: skip


def test_odd_subjects_authors_and_dates_are_stored_as_written(project: Path) -> None:
    (project / BAD_PATH).write_text(BASE_CARD)
    env = {**os.environ, "GIT_AUTHOR_NAME": "Ada\x1fB\x1eC", "GIT_COMMITTER_DATE": FAR_FUTURE}
    subprocess.run(["git", "add", "--all"], cwd=project, check=True)
    subject = "odd \x1e\x1f subject\ttabbed"
    subprocess.run(["git", "commit", "-qm", subject, "--no-verify"], cwd=project, env=env,
                   check=True)  # fmt: skip
    version = [v for v in Catalog(project).versions() if v.path == BAD_PATH][-1]
    assert version.subject == subject and version.author == "Ada\x1fB\x1eC"
    assert version.committed == 99999999999999


def test_a_forged_commit_object_is_indexed_without_guessing(project: Path, cli) -> None:
    """A commit written with `hash-object --literally`: NUL in the author, absurd date."""
    (project / BAD_PATH).write_text(BASE_CARD)
    git(project, "add", "--all")
    tree = git(project, "write-tree").strip()
    parent = git(project, "rev-parse", "HEAD").strip()
    body = (
        f"tree {tree}\nparent {parent}\nauthor A\0B <a@b> 999999999999999999999999 +0000\n"
        "committer C <c@d> 1700000000 +0000\n\nsub\0ject \x1e\x1f\n"
    ).encode()
    forged = subprocess.run(
        ["git", "hash-object", "-t", "commit", "-w", "--literally", "--stdin"],
        cwd=project, input=body, capture_output=True, check=True,
    ).stdout.decode().strip()  # fmt: skip
    git(project, "update-ref", "refs/heads/pr", forged)
    found = json.loads(cli("find", "--json").out)
    assert {item["card"]["name"] for item in found} == {GOOD, "m-x"}
    assert cli("log", "--metric", "dev.f1").code == 0


# -- a damaged catalog file ---------------------------------------------------------------


def overwrite(at: float, data: Callable[[int], bytes] = os.urandom) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        size = path.stat().st_size
        offset = min(int(size * at) // 4096 * 4096, max(size - 4096, 0))
        with path.open("r+b") as handle:
            handle.seek(offset)
            handle.write(data(4096))

    return damage


def sql(statement: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.executescript(statement)

    return damage


def replace_with_folder(path: Path) -> None:
    path.unlink()
    (path / "inside").mkdir(parents=True)


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "truncated to one page": lambda p: p.write_bytes(p.read_bytes()[:4096]),
    "zero bytes": lambda p: p.write_bytes(b""),
    "random garbage": lambda p: p.write_bytes(os.urandom(p.stat().st_size)),
    "text garbage": lambda p: p.write_bytes(b"this is not a database" * 100),
    **{f"damaged page at {int(at * 100)}%": overwrite(at) for at in (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0)},
    "zeroed page in the middle": overwrite(0.5, lambda n: bytes(n)),
    "zeroed last page": overwrite(1.0, lambda n: bytes(n)),
    "wrong format version": sql("UPDATE meta SET value = '1' WHERE key = 'format'"),
    "format row gone": sql("DELETE FROM meta WHERE key = 'format'"),
    "table dropped": sql("DROP TABLE versions"),
    "view dropped": sql("DROP VIEW index_errors"),
    "index dropped": sql("DROP INDEX cards_model"),
    "column gone": sql("ALTER TABLE cards DROP COLUMN hot"),
    "refs garbled": sql("UPDATE meta SET value = '{not json' WHERE key = 'tips'"),
    "refs not a mapping": sql("UPDATE meta SET value = '[1]' WHERE key = 'tips'"),
    "card JSON garbled": sql("UPDATE bodies SET card = '{bad' WHERE id = 3"),
    "card JSON not UTF-8": sql("UPDATE bodies SET card = CAST(X'FFFE7B7D' AS TEXT) WHERE id = 2"),
    "hot JSON garbled": sql("UPDATE cards SET hot = 'garbage' WHERE id = 2"),
    "stale journal": lambda p: p.with_name(p.name + "-journal").write_bytes(os.urandom(3000)),
    "a folder in its place": replace_with_folder,
}  # fmt: skip
QUERIES = (
    ("find", "--json", "--all-versions"),
    ("find", "--json", "--where", "metrics.dev.f1 >= 0.3 and step > 2", "--top", "3", "--by", "metrics.dev.f1"),
    ("log", "m", "--metric", "dev.f1", "--json"),
    ("diff", "HEAD~2", "HEAD", "--json"),
    ("stages", "--json"),
)  # fmt: skip


@pytest.fixture(scope="module")
def history_template(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project with 40 cards on `pr` and its catalog built: made once, copied per test."""
    root = tmp_path_factory.mktemp("history") / "repo"
    shutil.copytree(template_repo, root, symlinks=True)
    (root / "dvcckpt.yaml").write_text(CONFIG)
    (root / "gates.yaml").write_text(GATES)
    git(root, "checkout", "-qb", "pr")
    for step in range(1, 40):
        path = root / f"models/m/step-{step}.pt.ckpt.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        name = GOOD if step == 1 else f"m-train-full-step{step:06d}"
        path.write_text(card_text(name, "m", step, {"dev": {"f1": step / 50}}, notes="n" * 400))
        git(root, "add", "--all")
        git(root, "commit", "-qm", f"step {step}", "--no-verify")
    Catalog(root).close()
    return root


@pytest.fixture
def history(history_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(history_template, root, symlinks=True)
    monkeypatch.chdir(root)
    return root


def answers(cli) -> list[str]:
    results = [cli(*args) for args in QUERIES]
    for args, result in zip(QUERIES, results, strict=True):
        assert result.code == 0, (args, result.err)
    return [result.out for result in results]


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_catalog_is_rebuilt_transparently(history: Path, cli, damage: str) -> None:
    expected = answers(cli)
    catalog = Catalog(history, refresh=False)
    assert catalog.path.stat().st_size > 40_000  # several pages of each kind
    DAMAGE[damage](catalog.path)
    assert answers(cli) == expected
    status = json.loads(cli("catalog", "status", "--json").out)
    if damage == "a folder in its place":
        assert status["in_memory"] and str(catalog.path) in status["in_memory"]
    else:
        assert status["in_memory"] is None and status["unreadable_cards"] == 0
        with contextlib.closing(sqlite3.connect(catalog.path)) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert not list(catalog.path.parent.glob(".catalog.sqlite.*"))


def test_catalog_rebuild_killed_at_any_moment_leaves_the_old_or_the_new_catalog(
    tmp_path: Path,
) -> None:
    repo = fast_history(tmp_path / "big", 400)
    assert run_process("catalog", "rebuild", cwd=repo).code == 0
    path = Catalog(repo, refresh=False).path
    old = versions_in(path)
    assert len(old) == 400
    dvcckpt = str(Path(sys.executable).parent / "dvcckpt")
    torn = 0  # kills that caught a rebuild mid-write (a temporary file left behind)
    # At the two points inside the write window, then at several delays.
    kills: list[str | float] = [
        "catalog-filling",
        "catalog-filled",
        0.05,
        0.1,
        0.15,
        0.2,
        0.25,
        0.3,
        0.4,
    ]
    for number, kill in enumerate(kills):
        new = old | {add_card(repo, 1000 + number)}
        env = {**os.environ, FAULT_POINT: kill} if isinstance(kill, str) else None
        process = subprocess.Popen([dvcckpt, "catalog", "rebuild"], cwd=repo, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        if isinstance(kill, float):
            time.sleep(kill)
            process.send_signal(signal.SIGKILL)
        code = process.wait()
        assert code == -signal.SIGKILL or isinstance(kill, float)
        assert versions_in(path) in (old, new), f"a half catalog after a kill at {kill}"
        torn += bool(list(path.parent.glob(".catalog.sqlite.*")))
        finished = run_process("find", "--json", "--all", cwd=repo)
        assert finished.code == 0 and len(json.loads(finished.out)) == len(new)
        assert not list(path.parent.glob(".catalog.sqlite.*")), "temporary files left behind"
        old = versions_in(path)
        assert old == new
    assert torn >= 2, "the kill points did not land while the rebuild was writing"


def versions_in(path: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {row[0] for row in db.execute("SELECT name FROM cards")}


def fast_history(repo: Path, count: int) -> Path:
    """A repository with `count` commits, each adding one card (via git fast-import)."""
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    stream = []
    for step in range(1, count + 1):
        data = card_text(f"m{step}", "m", step, {"dev": {"f1": step / count}}).encode()
        stream.append(
            f"commit refs/heads/main\ncommitter A <a@b> {1700000000 + step} +0000\n"
            f"data 4\nc{step:02d}\n"
            + f"M 100644 inline models/m/step-{step}.pt.ckpt.yaml\ndata {len(data)}\n"
        )
        stream.append(data.decode() + "\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input="".join(stream).encode(),
                   check=True)  # fmt: skip
    git(repo, "reset", "-q", "--hard", "main")
    return repo


# -- worktrees, shallow clones, rewritten history ------------------------------------------


def names(cli, *args: str) -> set[str]:
    result = cli("find", "--json", *args)
    assert result.code == 0, result.err
    return {item["card"]["name"] for item in json.loads(result.out)}


def add_card(repo: Path, step: int, message: str | None = None) -> str:
    name = f"m-train-full-step{step:06d}"
    path = repo / f"models/m/step-{step}.pt.ckpt.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(card_text(name, "m", step, {"dev": {"f1": step / 100}}))
    git(repo, "add", "--all")
    git(repo, "commit", "-qm", message or name, "--no-verify")
    return name


def test_two_worktrees_never_answer_for_each_other(
    project: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = project.parent / "other"
    git(project, "worktree", "add", "-q", "-b", "side", str(other), "main")
    mine = add_card(project, 5)
    theirs = add_card(other, 7)
    assert names(cli) == {GOOD, mine}
    seeded = Catalog(other, refresh=False).update()  # from the main worktree's catalog
    assert not seeded.rebuilt  # (its branch is a ref both see: already indexed)
    for _ in range(3):  # alternate: each answers from its own HEAD every time
        monkeypatch.chdir(project)
        assert names(cli) == {GOOD, mine}
        monkeypatch.chdir(other)
        assert names(cli) == {GOOD, theirs}
    assert Catalog(project, refresh=False).path != Catalog(other, refresh=False).path
    add_card(other, 8)
    monkeypatch.chdir(project)
    assert names(cli) == {GOOD, mine}


def test_unshallowing_re_attributes_every_version_to_its_own_commit(
    project: Path, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for step in range(2, 7):
        add_card(project, step)
    clone = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "2", "--branch", "pr", f"file://{project}", str(clone))
    monkeypatch.chdir(clone)
    shallow = json.loads(cli("log", "m", "--metric", "dev.f1", "--json").out)
    assert len({row["commit"] for row in shallow}) == 2  # everything lands on the boundary
    git(clone, "fetch", "-q", "--unshallow")
    full = json.loads(cli("log", "m", "--metric", "dev.f1", "--json").out)
    assert len(full) == 6 and len({row["commit"] for row in full}) == 6
    assert [row["step"] for row in full] == [6, 5, 4, 3, 2, 1]


def test_history_rewritten_and_garbage_collected(project: Path, cli) -> None:
    doomed = {add_card(project, step) for step in (2, 3, 4)}
    assert names(cli) == {GOOD, *doomed}
    git(project, "reset", "-q", "--hard", "HEAD~3")
    kept = add_card(project, 9)
    git(project, "reflog", "expire", "--expire=now", "--all")
    git(project, "gc", "-q", "--prune=now")
    assert names(cli) == {GOOD, kept}
    assert names(cli, "--all") == {GOOD, kept}
    # A brand-new root: every commit the catalog knows is gone.
    git(project, "checkout", "-q", "--orphan", "fresh")
    git(project, "commit", "-qm", "new root", "--no-verify")
    for branch in ("pr", "main"):
        git(project, "branch", "-qD", branch)
    git(project, "reflog", "expire", "--expire=now", "--all")
    git(project, "gc", "-q", "--prune=now")
    assert names(cli) == {GOOD, kept}  # the orphan keeps the work tree's files
    assert cli("log", "--metric", "dev.f1").code == 0


# -- a full disk, a read-only catalog ------------------------------------------------------


def fill(folder: Path) -> None:
    with (folder / "filler").open("wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()


def test_a_full_disk_is_a_clear_error_and_the_catalog_recovers(
    history: Path, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tmpfs(tmp_path / "small", "8m") as disk:
        repo = disk / "repo"
        shutil.copytree(history, repo, symlinks=True)
        monkeypatch.chdir(repo)
        catalog = Catalog(repo, refresh=False).path
        expected = names(cli, "--all-versions")
        for step in range(100, 103):
            add_card(repo, step)  # the catalog needs writing
        fill(disk)
        before = snapshot(repo)
        result = cli("find", "--json")
        assert_user_error(result.code, result.err, names=(str(catalog), "no space left"))
        assert result.code == 4 and not changed(before, snapshot(repo))
        catalog.unlink()  # from nothing: the rebuild cannot write either
        result = cli("find", "--json")
        assert_user_error(result.code, result.err, names=(str(catalog), "no space left"))
        assert not list(catalog.parent.glob(".catalog.sqlite.*"))
        (disk / "filler").unlink()
        assert len(names(cli, "--all-versions")) == len(expected) + 3


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` read-only in place (a bind mount), as on a read-only volume."""
    bound = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True,
                           check=False)  # fmt: skip
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bound.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_read_only_catalog_folder_still_answers(history: Path, cli) -> None:
    folder = Catalog(history, refresh=False).path.parent
    expected = names(cli)
    with read_only(folder):
        assert names(cli) == expected  # up to date: read from the file as it is
        assert json.loads(cli("catalog", "status", "--json").out)["in_memory"] is None
    stale = add_card(history, 50)
    with read_only(folder):
        assert names(cli) == {*expected, stale}  # stale and unwritable: built in memory
        status = json.loads(cli("catalog", "status", "--json").out)
        assert status["in_memory"] and "read-only" in status["in_memory"]
        rebuilt = cli("catalog", "rebuild")
        assert rebuilt.code == 0 and "in memory only" in rebuilt.err
        assert cli("log", "--metric", "dev.f1").code == 0
    assert names(cli) == {*expected, stale}
    assert json.loads(cli("catalog", "status", "--json").out)["in_memory"] is None


def test_card_paths_with_separators_and_newlines_are_read_exactly(project: Path, cli) -> None:
    odd = ["models/m/sp ace.pt.ckpt.yaml", "models/m/x\x1ey\x1fz.pt.ckpt.yaml",
           "models/m/new\nline.pt.ckpt.yaml", "models/m/:colon.pt.ckpt.yaml"]  # fmt: skip
    for number, path in enumerate(odd, start=2):
        (project / path).write_text(card_text(f"m-odd{number}", "m", number, {"dev": {"f1": 0.5}}))
    commit(project, "odd paths")
    found = {v.path for v in Catalog(project).versions()}
    assert set(odd) <= found
    assert names(cli) == {GOOD, *(f"m-odd{n}" for n in range(2, 6))}
    for args in (("stages", "--json"), ("audit", "--json"), ("report",), ("diff", "main", "pr")):
        result = cli(*args)
        assert result.code == 0, (args, result.err)
