"""`dvcckpt org find/log/stages` over real repositories published to a real warehouse.

Two repositories (git + DVC, cards added with `dvcckpt add`, evaluations, a
promotion to production merged into main, a retired checkpoint, a hostile card)
are published once per module with `dvcckpt catalog publish` to a local Iceberg
warehouse (SQLite catalog); each test queries it with DuckDB through the CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from dvcckpt.cli import main
from tests.conftest import git, write_checkpoint
from tests.s3server import BUCKET, SECRET_KEY
from tests.test_publish_backends import dvc_s3  # noqa: F401 (the fixture)
from tests.test_storage import s3_server  # noqa: F401 (the fixture)

GATES = """\
version: 1
gates:
  - stage: production
    rules:
      - {name: test-f1, metric: metrics.test.macro_f1, op: ">=", value: 0.85}
"""
NER = "demo_conll_ner_base_2026-01-06"
HOSTILE = "x'); DROP TABLE card_versions; --\"$1 \\u0000"


def run(*args: str) -> None:
    code = main(list(args))
    assert code == 0, f"dvcckpt {' '.join(args)} exited {code}"


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "--all")
    git(repo, "commit", "-q", "--no-verify", "-m", message)


def add(repo: Path, path: str, *metrics: str, run_name: str, dataset: str | None = None,
        tags: tuple[str, ...] = ()) -> None:  # fmt: skip
    write_checkpoint(repo / path, seed=len(path) + sum(map(ord, path)))
    options = [a for m in metrics for a in ("-m", m)] + [a for t in tags for a in ("--tag", t)]
    if dataset:
        options += ["--data", f"{dataset}=v1"]
    run("add", path, *options, "--run", run_name)


def card_name(repo: Path, path: str) -> str:
    card = json.loads(
        json.dumps(__import__("yaml").safe_load((repo / f"{path}.ckpt.yaml").read_text()))
    )
    return str(card["name"])


def make_hostile(card: Path) -> None:
    """Card text that tries to break out of SQL strings, JSON paths and parameters."""
    document = yaml.safe_load(card.read_text())
    document["notes"] = HOSTILE
    document["tags"] = [HOSTILE, "sweep"]
    document["run"]["group"] = HOSTILE
    document["metrics"]["dev"]["note"] = "n/a"
    document["metrics"]["dev"][HOSTILE] = 1.0
    card.write_text(yaml.safe_dump(document, sort_keys=False))


def config(project: str) -> str:
    return (
        f"version: 1\nproject: {project}\nstages: [dev, staging, production]\n"
        f"catalog: {{repository: acme/{project}}}\n"
    )


def promote(root: Path, path: str, rationale: str) -> None:
    """A promotion to production on a branch, merged into main (as a reviewed PR is)."""
    git(root, "checkout", "-qb", "promote")
    run("promote", card_name(root, path), "--to", "production", "--rationale", rationale)
    commit(root, "promote")
    git(root, "checkout", "-q", "main")
    git(root, "merge", "-q", "--no-ff", "promote", "-m", "Merge promote")


def build_alpha(root: Path) -> None:
    (root / "gates.yaml").write_text(GATES)
    (root / "dvcckpt.yaml").write_text(config("alpha"))
    run_name = "demo_tweets_sentiment_base_2026-01-05"
    add(
        root,
        "models/sentiment/step-100.pt",
        "dev.macro_f1=0.81",
        "test.macro_f1=0.91",
        run_name=run_name,
        dataset="tweets",
        tags=("baseline",),
    )
    add(
        root,
        "models/sentiment/step-200.pt",
        "dev.macro_f1=0.85:0.83:0.87",
        "test.macro_f1=0.93:0.90:0.95",
        run_name=run_name,
        dataset="tweets",
    )
    add(root, "models/ner/step-50.pt", "dev.entity_f1=0.7", run_name=NER, dataset="conll")
    add(root, "models/ner/step-60.pt", "dev.entity_f1=0.75", run_name=NER, dataset="conll")
    commit(root, "checkpoints")
    git(root, "rm", "-q", "models/ner/step-60.pt.ckpt.yaml", "models/ner/step-60.pt.dvc")
    commit(root, "drop ner 60")
    run(
        "evaluate",
        card_name(root, "models/sentiment/step-200.pt"),
        "--split",
        "test",
        "-m",
        "macro_f1=0.92:0.9:0.94",
    )
    commit(root, "evaluate")
    promote(root, "models/sentiment/step-200.pt", "best test f1")


def build_beta(root: Path) -> None:
    (root / "gates.yaml").write_text(GATES)
    (root / "dvcckpt.yaml").write_text(config("beta"))
    add(
        root,
        "models/sentiment/step-300.pt",
        "dev.macro_f1=0.79",
        "test.macro_f1=0.95",
        run_name="demo_reviews_sentiment_big_2026-01-07",
        dataset="reviews",
        tags=("sweep",),
    )
    add(
        root,
        "models/sentiment/step-400.pt",
        "dev.macro_f1=0.9",
        "test.macro_f1=0.89",
        run_name="demo_tweets_sentiment_big_2026-01-07",
        dataset="tweets",
    )
    add(
        root,
        "models/sentiment/step-500.pt",
        "dev.macro_f1=0.5",
        "test.macro_f1=0.99",
        run_name="demo_reviews_sentiment_big_2026-01-07",
        dataset="reviews",
    )
    make_hostile(root / "models/sentiment/step-500.pt.ckpt.yaml")
    commit(root, "checkpoints")
    promote(root, "models/sentiment/step-300.pt", "best on reviews")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def own_cache(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The warehouse cache (scan plans, slim copies of data files) in a folder of this module."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))


@pytest.fixture(scope="module")
def published(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("org")
    warehouse = base / "warehouse"
    repos = {}
    for name, build in (("alpha", build_alpha), ("beta", build_beta)):
        root = base / name
        shutil.copytree(template_repo, root, symlinks=True)
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(root)
            build(root)
            run("catalog", "publish", "--warehouse", str(warehouse))
        repos[name] = root
    return {"warehouse": warehouse, **repos}


def org(cli: Any, published: dict[str, Path], *args: str) -> Any:
    result = cli("org", *args, "--warehouse", str(published["warehouse"]))
    assert result.code == 0, result.err
    return result


def org_json(cli: Any, published: dict[str, Path], *args: str) -> list[dict[str, Any]]:
    return list(json.loads(org(cli, published, "find", "--json", *args).out))


def found(cli: Any, published: dict[str, Path], *args: str) -> list[tuple[str, str]]:
    return [(m["repository"], m["name"]) for m in org_json(cli, published, *args)]


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Commands run outside every repository: only --warehouse names the catalog."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_issues_question_is_one_command(
    cli: Any, published: dict[str, Path], elsewhere: Path
) -> None:
    """Production models across all repositories, trained on tweets, with test F1 >= 0.9."""
    where = 'data.dataset == "tweets" and test.macro_f1 >= 0.9'
    result = org(cli, published, "find", "--stage", "production", "--where", where)
    lines = result.out.splitlines()
    assert len(lines) == 2, result.out
    header, row = lines
    assert header.split()[:4] == ["repository", "checkpoint", "model", "stage"]
    assert "test.macro_f1" in header and "data.dataset" in header
    assert row.split()[:4] == [
        "acme/alpha",
        "sentiment-train-full-31c091-step000200",
        "sentiment",
        "production",
    ]
    assert "0.93 [0.9, 0.95]" in row and "tweets" in row
    # Each condition on its own does select others: the answer is their conjunction.
    holders = found(cli, published, "--stage", "production")
    assert sorted(holders) == [
        ("acme/alpha", "sentiment-train-full-31c091-step000200"),
        ("acme/beta", "sentiment-train-full-08835e-step000300"),
    ]
    assert ("acme/beta", "sentiment-train-full-1a0975-step000400") in found(
        cli, published, "--where", 'dataset == "tweets"'
    )


# Queries compared with `find` in each repository: metrics, estimates and their bounds,
# evaluations, text, lists, membership, negation of absent fields, ranking and sorting.
EQUIVALENT: list[tuple[str, ...]] = [
    (),
    ("--where", "test.macro_f1 >= 0.9"),
    ("--where", "dev.macro_f1.ci_low >= 0.83 or dev.macro_f1 > 0.88"),
    ("--where", "test.macro_f1.ci_high > 0.94"),
    ("--where", "evaluations.test.macro_f1 >= 0.9"),
    ("--where", 'not dev.macro_f1 >= 0.8 and phase in ["train", "finetune"]'),
    ("--where", '"sweep" in tags or not tags'),
    ("--where", 'dev.note == "n/a" or dev.note > 0'),
    ("--where", 'run.group != "x" and step > 100'),
    ("--where", 'data.version == null or data.dataset in ["conll", 7]'),
    ("--where", "dev.entity_f1"),
    ("--model", "sentiment", "--by", "dev.macro_f1", "--top", "2"),
    ("--by", "+test.macro_f1", "--top", "50%"),
    ("--sort", "-run.name,step"),
    ("--tag", "baseline"),
    ("--phase", "train", "--sort", "created_at"),
]


def in_order(matches: list[dict[str, Any]]) -> list[tuple[str, frozenset[str]]]:
    """(commit, paths) of consecutive matches of one commit: cards committed together tie
    on every key `find` orders by, and SQLite lists tied rows in no defined order."""
    groups: list[tuple[str, set[str]]] = []
    for match in matches:
        if not groups or groups[-1][0] != match["commit"]:
            groups.append((match["commit"], set()))
        groups[-1][1].add(match["path"])
    return [(commit, frozenset(paths)) for commit, paths in groups]


@pytest.mark.parametrize("query", EQUIVALENT, ids=lambda q: " ".join(q) or "everything")
def test_results_are_what_find_says_in_each_repository(
    cli: Any, published: dict[str, Path], monkeypatch: pytest.MonkeyPatch, query: tuple[str, ...]
) -> None:
    answers = []
    for name in ("alpha", "beta"):
        monkeypatch.chdir(published[name])
        local = cli("find", "--json", *query)
        if local.code == 2:  # a field no card of this repository has: refused alike
            monkeypatch.chdir(published["warehouse"].parent)
            refused = cli("org", "find", "--repo", f"acme/{name}", *query,
                          "--warehouse", str(published["warehouse"]))  # fmt: skip
            assert (refused.code, refused.err) == (2, local.err)
            answers.append(-1)
            continue
        assert local.code == 0, local.err
        expected = in_order(json.loads(local.out))
        monkeypatch.chdir(published["warehouse"].parent)
        matches = org_json(cli, published, "--repo", f"acme/{name}", *query)
        assert in_order(matches) == expected
        assert {m["repository"] for m in matches} <= {f"acme/{name}"}
        answers.append(len(matches))
    if -1 not in answers and not any(q.startswith("--top") for q in query):
        assert len(org_json(cli, published, *query)) == sum(answers)


def test_a_deleted_card_is_gone_and_json_carries_the_card(
    cli: Any, published: dict[str, Path], elsewhere: Path
) -> None:
    matches = org_json(cli, published, "--model", "ner")
    assert [m["path"] for m in matches] == ["models/ner/step-50.pt.ckpt.yaml"]
    assert matches[0]["card"]["metrics"]["dev"]["entity_f1"] == 0.7
    assert matches[0]["repo_id"] == "acme/alpha" and matches[0]["stage"] is None


def test_an_unknown_field_is_refused_with_the_closest_ones(
    cli: Any, published: dict[str, Path], elsewhere: Path
) -> None:
    for args in (("--where", "test.macro_f2 > 0.5"), ("--by", "test.macro_f2", "--top", "3")):
        result = cli("org", "find", *args, "--warehouse", str(published["warehouse"]))
        assert result.code == 2, result.err
        assert "has the field metrics.test.macro_f2" in result.err
        assert "closest fields: metrics.test.macro_f1" in result.err
    bound = cli(
        "org",
        "find",
        "--where",
        "dev.entity_f1.ci_low > 0",
        "--warehouse",
        str(published["warehouse"]),
    )
    assert bound.code == 2 and "need FIELD recorded as {value, ci}" in bound.err
    # A field only a few cards have is known: an empty answer, not an error.
    assert found(cli, published, "--where", "dev.entity_f1 > 0.99") == []


def test_hostile_strings_are_values_never_sql(
    cli: Any, published: dict[str, Path], elsewhere: Path
) -> None:
    literal = HOSTILE.replace("\\", "\\\\").replace('"', '\\"')
    hostile = ("acme/beta", "sentiment-train-full-08835e-step000500")
    assert found(cli, published, "--where", f'"{literal}" in tags') == [hostile]
    assert found(cli, published, "--where", f'run.group == "{literal}"') == [hostile]
    assert found(cli, published, "--tag", HOSTILE) == [hostile]
    assert (
        found(cli, published, "--where", "dev.note >= 0.5") == []
    )  # text never compares with numbers
    assert len(org_json(cli, published)) == 6  # the tables are all still there
    result = cli("org", "find", "--repo", HOSTILE, "--warehouse", str(published["warehouse"]))
    assert result.code == 2 and "published repositories: acme/alpha, acme/beta" in result.err


def test_a_bad_warehouse_is_a_clear_error(
    cli: Any, published: dict[str, Path], elsewhere: Path
) -> None:
    empty = elsewhere / "nothing-here"
    result = cli("org", "find", "--warehouse", str(empty))
    assert result.code == 4, result.err
    assert result.err.startswith("error: ") and "Traceback" not in result.err
    assert "dvcckpt catalog publish" in result.err
    unset = cli("org", "stages")
    assert unset.code == 3 and "no warehouse is configured" in unset.err
    remote = cli("org", "find", "--warehouse", "ftp://example.com/lake")
    assert remote.code == 3 and "only local folders and s3://" in remote.err


def test_log_follows_each_run_in_every_repository(
    cli: Any, published: dict[str, Path], elsewhere: Path
) -> None:
    rows = json.loads(
        org(cli, published, "log", "sentiment", "--metric", "dev.macro_f1", "--json").out
    )
    assert {r["repository"] for r in rows} == {"acme/alpha", "acme/beta"}
    alpha = [r for r in rows if r["repository"] == "acme/alpha"]
    assert [r["values"]["dev.macro_f1"] for r in alpha][-2:] == [0.85, 0.81]  # newest first
    added = [r for r in alpha if r["name"].endswith("step000200")][-1]
    assert added["deltas"]["dev.macro_f1"] == pytest.approx(0.04)
    assert added["intervals"]["dev.macro_f1"] == [0.83, 0.87]
    beta = [r for r in rows if r["repository"] == "acme/beta"]
    assert [(r["name"][-3:], r["deltas"]["dev.macro_f1"]) for r in beta[-3:]] == [
        ("500", pytest.approx(0.5 - 0.79)),
        ("400", None),
        ("300", None),
    ]  # first of each run
    table = org(cli, published, "log", "sentiment", "--metric", "dev.macro_f1", "-n", "2").out
    assert len(table.splitlines()) == 3 and table.split()[0] == "repository"
    missing = cli("org", "log", "nope", "--warehouse", str(published["warehouse"]))
    assert missing.code == 4 and "known models: ner, sentiment" in missing.err


def test_stages_list_every_repositorys_holders_and_history(
    cli: Any, published: dict[str, Path], elsewhere: Path
) -> None:
    result = json.loads(org(cli, published, "stages", "--json").out)
    held = {(h["repository"], h["model"], h["stage"]): h["holder"] for h in result["holders"]}
    assert held == {
        ("acme/alpha", "sentiment", "production"): "sentiment-train-full-31c091-step000200",
        ("acme/beta", "sentiment", "production"): "sentiment-train-full-08835e-step000300",
    }
    assert [e["reason"] for e in result["history"]] == ["best test f1", "best on reviews"]
    text = org(cli, published, "stages", "--history", "--repo", "acme/beta").out
    assert "best on reviews" in text and "acme/alpha" not in text
    assert "no stage holders" in org(cli, published, "stages", "--model", "ner").out


def table_rows(text: str) -> list[tuple[str, str, str]]:
    """(repository, checkpoint, commit) of each row of `org find --csv`."""
    lines = text.splitlines()[1:]
    return [(cells[0], cells[1], cells[6]) for cells in (line.split(",") for line in lines)]


@pytest.mark.parametrize("query", EQUIVALENT[:11], ids=lambda q: " ".join(q) or "everything")
def test_the_slim_copies_answer_as_the_whole_cards_do(
    cli: Any, published: dict[str, Path], elsewhere: Path, query: tuple[str, ...]
) -> None:
    """A listing reads only the cached `hot` sections; --json reads whole cards: same rows."""
    whole = [
        (m["repository"], m["name"], m["commit"][:8]) for m in org_json(cli, published, *query)
    ]
    assert table_rows(org(cli, published, "find", "--csv", *query).out) == whole


def test_the_cache_holds_slim_copies_and_an_unwritable_one_only_costs_time(
    cli: Any, published: dict[str, Path], elsewhere: Path, cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    expected = org(cli, published, "find", "--csv", "--where", "test.macro_f1 >= 0.9").out
    copies = list((cache / "dvcckpt" / "warehouse" / "files").glob("*.parquet"))
    data = list(published["warehouse"].glob("dvcckpt/card_versions/data/*/*.parquet"))
    # A slim copy of each data file, and each repository's current versions (from its copies).
    assert copies and len(copies) == len(data) + 2
    assert sum(c.stat().st_size for c in copies) < 2 * sum(d.stat().st_size for d in data)
    blocked = elsewhere / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    again = org(cli, published, "find", "--csv", "--where", "test.macro_f1 >= 0.9")
    assert again.out == expected


def test_the_cache_keeps_to_its_limit_removing_what_was_used_least_recently(
    cli: Any, published: dict[str, Path], elsewhere: Path, cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    everything = org(cli, published, "find", "--csv").out
    alpha = org(cli, published, "find", "--csv", "--repo", "acme/alpha").out
    copies = cache / "dvcckpt" / "warehouse" / "files"
    made = sorted(copies.glob("*.parquet"))
    hours_ago = time.time() - 2 * 3600
    for copy in made:
        os.utime(copy, (hours_ago, hours_ago))
    monkeypatch.setenv("DVCCKPT_WAREHOUSE_CACHE_MB", "0")
    # Only alpha's data files are read: beta's copies are the least recently used.
    assert org(cli, published, "find", "--csv", "--repo", "acme/alpha").out == alpha
    kept = sorted(copies.glob("*.parquet"))
    assert 0 < len(kept) < len(made) and all(c.stat().st_mtime > hours_ago + 3600 for c in kept)
    assert org(cli, published, "find", "--csv").out == everything  # made again as needed
    assert len(list(copies.glob("*.parquet"))) == len(made)  # all in use within the hour


def test_a_warehouse_on_s3_is_read_through_pyiceberg(
    repo: Path,
    cli: Any,
    dvc_s3: str,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    prefix = dvc_s3  # endpoint in .dvc/config, keys in .dvc/config.local
    (repo / "gates.yaml").write_text(GATES)
    (repo / "dvcckpt.yaml").write_text(config("gamma"))
    add(repo, "models/sentiment/step-100.pt", "dev.macro_f1=0.8:0.78:0.82", "test.macro_f1=0.9",
        run_name="demo_tweets_sentiment_s3_2026-01-09", dataset="tweets")  # fmt: skip
    commit(repo, "a checkpoint")
    options = (
        "--warehouse",
        f"s3://{BUCKET}/{prefix}-lake",
        "--catalog-uri",
        str(tmp_path / "c.db"),
    )
    assert cli("catalog", "publish", *options).code == 0
    result = cli("org", "find", "--where", "dev.macro_f1.ci_low >= 0.78", "--csv", *options)
    assert result.code == 0, result.err
    assert [row[:2] for row in table_rows(result.out)] == [
        ("acme/gamma", card_name(repo, "models/sentiment/step-100.pt"))
    ]
    log = cli("org", "log", "sentiment", "--metric", "dev.macro_f1", "--json", *options)
    assert json.loads(log.out)[0]["intervals"]["dev.macro_f1"] == [0.78, 0.82]
    assert SECRET_KEY not in result.out + result.err + log.out


def test_a_publishers_broken_rows_never_break_the_others_answers(
    repo: Path, cli: Any, tmp_path: Path
) -> None:
    """Rows another publisher wrote are untrusted: JSON that does not parse, nests beyond
    any stack or holds numbers beyond a double is left out, never an error for everyone."""
    from dvcckpt.adapters import iceberg
    from dvcckpt.publish.warehouse import open_warehouse

    (repo / "dvcckpt.yaml").write_text(config("gamma"))
    add(repo, "models/sentiment/step-100.pt", "test.macro_f1=0.9",
        run_name="demo_tweets_sentiment_x_2026-01-09", dataset="tweets")  # fmt: skip
    commit(repo, "a checkpoint")
    lake = tmp_path / "lake"
    assert cli("catalog", "publish", "--warehouse", str(lake)).code == 0
    hostile = ['{"name": "evil", "metrics": {"test": {"macro_f1": 0.7}}',  # cut short
               "[" * 100_000 + "]" * 100_000,
               '{"name": "huge", "model": "sentiment", "metrics": {"test": {"macro_f1": 1e999}}}',
               '{"name": "x", "model": "sentiment", "metrics": {"test": {"macro_f1": 0.6}}}']  # fmt: skip
    table = open_warehouse(None, str(lake)).ensure()["card_versions"]
    count = len(hostile)
    table.append(iceberg.arrow_rows(table, {
        "repo_id": ["evil"] * count, "commit": [f"{i:040d}" for i in range(count)],
        "blob": ["0" * 40] * count, "path": [f"p{i}.ckpt.yaml" for i in range(count)],
        "status": ["A"] * count, "generation": [1] * count,
        "name": ["evil", "deep", "huge", "on\x1b[2K\rscreen\x1b]0;title\x07\u202e"],
        "model": ["sentiment"] * count, "card": hostile}))  # fmt: skip
    options = ("--warehouse", str(lake))
    listed = cli("org", "find", "--where", "test.macro_f1 >= 0.5", "--csv", *options)
    assert listed.code == 0, listed.err
    names = [line.split(",")[1] for line in listed.out.splitlines()[1:]]
    assert names == [card_name(repo, "models/sentiment/step-100.pt"),
                     "on\\x1b[2K\\rscreen\\x1b]0;title\\x07\\u202e"]  # fmt: skip
    shown = cli("org", "find", *options).out  # text for a terminal: no control reaches it
    assert "\x1b" not in shown and "\u202e" not in shown and "\\x1b[2K" in shown
    everything = cli("org", "find", "--json", *options)
    assert everything.code == 0, everything.err
    found = {m["name"]: m["card"] for m in json.loads(everything.out)}  # strict JSON
    assert "evil" not in found and "deep" not in found and len(found) == 3
    assert found["huge"]["metrics"]["test"]["macro_f1"] is None  # 1e999 is no number
    logged = cli("org", "log", "sentiment", "--metric", "test.macro_f1", "--json", *options)
    assert logged.code == 0, logged.err


def test_bad_options_and_a_damaged_cache_are_clear_errors_or_nothing(
    cli: Any, published: dict[str, Path], elsewhere: Path, cache: Path
) -> None:
    """A field no JSON path can spell is refused by name (org log and log alike); a limit
    beyond 64 bits is refused by click; a damaged plan file is planned again."""
    for command in (("org", "log", "sentiment", "--warehouse", str(published["warehouse"])),
                    ("log", "sentiment")):  # fmt: skip
        if command[0] == "log":
            os.chdir(published["alpha"])
        refused = cli(*command, "--metric", 'test.f1"]x')
        assert refused.code == 2, refused.err
        assert refused.err.startswith("error: --metric: 'test.f1\"]x' is not a field")
    os.chdir(elsewhere)
    huge = cli("org", "find", "--limit", "9" * 23, "--warehouse", str(published["warehouse"]))
    assert huge.code == 2 and "--limit" in huge.err
    expected = org(cli, published, "find", "--csv").out
    for plan in (cache / "dvcckpt" / "warehouse" / "plans").glob("*.json"):
        plan.write_text("[1]")
    assert org(cli, published, "find", "--csv").out == expected
