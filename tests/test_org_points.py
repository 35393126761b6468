"""`org find` reads metrics from the slim copies' `points` map and each repository's cached
current versions: the answers are the ones the whole cards give, for every shape of metric
another publisher may have written (estimates, duplicate or dotted keys, booleans, numbers
beyond a double, text, lists), and the ones a brute-force evaluation in Python gives.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

# (repository, metrics section as JSON text): duplicate keys only survive as text.
SHAPES = [
    ("r1", '{"test": {"f1": 0.95}, "dev": {"f1": 0.5}}'),
    ("r1", '{"test": {"f1": {"value": 0.92, "ci": [0.9, 0.94]}}, "dev": {"f1": 0.7}}'),
    ("r1", '{"test": {"f1": 0.1, "f1": 0.99}, "dev": {"f1": 0.8}}'),  # the first counts
    ("r1", '{"test": {"f1": 0.97}, "test": {"f1": 0.2}}'),
    ("r1", '{"test": {"f1.x": 0.5, "f1": 0.93}, "dev": {"f1": 0.9}}'),  # unspellable key
    ("r2", '{"test": {"f1": true}, "dev": {"f1": false}}'),
    ("r2", '{"test": {"f1": 1e999}, "dev": {"f1": -1e999}}'),
    ("r2", '{"test": {"f1": "0.95"}, "dev": {"f1": null}}'),
    ("r2", '{"test": {"f1": 123456789012345678901234}, "dev": {"f1": -7}}'),
    ("r2", "[0.9]"),
    ("r2", '{"test": 5, "dev": [1]}'),
    ("r2", '{"test": {"f1": {"value": "x", "ci": ["a", 0.3]}}, "dev": {"f1": {"ci": [0.1]}}}'),
    ("r3", '{"test": {"f1": [0.9]}, "dev": {"f1": {"value": 0.6, "ci": [0.5, 0.7, 0.9]}}}'),
    ("r3", '{"te\\"st": {"f1": 0.91}, "test": {"f1": 0.91}, "dev": {"f\\u00fc": 0.2}}'),
    ("r3", '{"test": {"": 0.4, "f1": 0.96}, "": {"f1": 0.3}}'),
    ("r3", "null"),
    ("r3", '{"test": {"f1": {"value": 0.94, "ci": [0.93, 1e999]}}, "dev": {"f1": 0.65}}'),
]
QUERIES: list[tuple[str, ...]] = [
    ("--where", "test.f1 >= 0.9"),
    ("--where", "test.f1 < 0.5 or dev.f1 >= 0.7"),
    ("--where", "test.f1.ci_low > 0 or dev.f1.ci_high >= 0.7"),
    ("--where", "not test.f1 > 0.5"),
    ("--where", "test.f1 == 1 or test.f1 != 0.1"),
    ("--where", "test.f1 == null"),
    ("--where", "dev.f1"),
    ("--by", "test.f1", "--top", "5"),
    ("--by", "+dev.f1", "--top", "40%"),
    ("--sort", "-test.f1.ci_high,dev.f1"),
    ("--where", "test.f1 >= 0.9", "--by", "dev.f1", "--top", "3", "--repo", "r1"),
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse holding one card per shape (and an older version of each, with other
    metrics, that a newer one replaces), written as another publisher would."""
    from dvcckpt.adapters import iceberg
    from dvcckpt.publish.warehouse import open_warehouse

    folder = tmp_path_factory.mktemp("points") / "lake"
    tables = open_warehouse(None, str(folder)).ensure()
    table = tables["card_versions"]
    published = {"repo_id": ["r1", "r2", "r3"], "name": ["acme/r1", "acme/r2", "acme/r3"]}
    tables["repositories"].append(iceberg.arrow_rows(tables["repositories"], published))
    for repo in ("r1", "r2", "r3"):
        mine = [(i, text) for i, (owner, text) in enumerate(SHAPES) if owner == repo]
        rows: dict[str, list[Any]] = {key: [] for key in ("repo_id", "commit", "blob", "path",
                                      "status", "generation", "name", "model", "card")}  # fmt: skip
        for generation, (index, text) in [(1, m) for m in mine] + [(2, m) for m in mine]:
            metrics = '{"test": {"f1": 0.999}, "dev": {"f1": 0.999}}' if generation == 1 else text
            values = {"repo_id": repo, "commit": f"{generation}{index:039d}", "blob": "0" * 40,
                      "path": f"m/c{index}.ckpt.yaml", "status": "A", "generation": generation,
                      "name": f"card-{index}", "model": "m",
                      "card": f'{{"name": "card-{index}", "model": "m", "metrics": {metrics}}}'}  # fmt: skip
            for key, value in values.items():
                rows[key].append(value)
        table.append(iceberg.arrow_rows(table, rows))
    return folder


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def names(cli: Any, lake: Path, *args: str, fmt: str) -> list[str]:
    result = cli("org", "find", fmt, *args, "--warehouse", str(lake))
    assert result.code == 0, result.err
    if fmt == "--json":
        return [m["name"] for m in json.loads(result.out)]
    return [line.split(",")[1] for line in result.out.splitlines()[1:]]


@pytest.mark.parametrize("query", QUERIES, ids=" ".join)
def test_the_map_answers_as_the_whole_cards_do(
    cli: Any, lake: Path, query: tuple[str, ...]
) -> None:
    """--csv reads `points` and the cached current versions; --json the whole cards' JSON."""
    listed = names(cli, lake, *query, fmt="--csv")
    assert listed and listed == names(cli, lake, *query, fmt="--json")


def point(metrics: Any, split: str, metric: str) -> float | None:
    """A metric's number as `find` reads it (first of duplicate keys: see `first_keys`)."""
    section = metrics.get(split) if isinstance(metrics, dict) else None
    value = section.get(metric) if isinstance(section, dict) else None
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(float(value)):
        return float(value)
    return None


def first_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        found.setdefault(key, value)
    return found


def test_a_threshold_and_ranking_are_what_python_computes(cli: Any, lake: Path) -> None:
    expected = []
    for index, (_, text) in enumerate(SHAPES):
        metrics = json.loads(text, object_pairs_hook=first_keys)
        test, dev = point(metrics, "test", "f1"), point(metrics, "dev", "f1")
        if test is not None and test >= 0.9 and dev is not None:
            expected.append((-dev, f"card-{index}"))
    ranked = [name for _, name in sorted(expected)][:4]
    found = names(cli, lake, "--where", "test.f1 >= 0.9", "--by", "dev.f1", "--top", "4",
                  fmt="--csv")  # fmt: skip
    assert found == ranked and len(ranked) == 4


def test_a_damaged_cached_current_set_is_an_error_or_made_again(
    cli: Any, lake: Path, tmp_path: Path
) -> None:
    """A cached file cut short is never read as fewer rows: the query fails with one line
    (the cache is a folder the user may delete), and deleting it rebuilds the answer."""
    expected = names(cli, lake, "--where", "test.f1 >= 0.9", fmt="--csv")
    files = sorted((tmp_path / "cache" / "dvcckpt" / "warehouse" / "files").glob("*.parquet"))
    assert files
    for file in files:
        file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    broken = cli("org", "find", "--csv", "--where", "test.f1 >= 0.9", "--warehouse", str(lake))
    assert broken.code != 0 and broken.err.startswith("error: ") and "Traceback" not in broken.err
    for file in files:
        file.unlink()
    assert names(cli, lake, "--where", "test.f1 >= 0.9", fmt="--csv") == expected
