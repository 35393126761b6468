"""The directory-manifest rule: one format, used by `add` to record and `verify` to check."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from dvcckpt.cards import card
from dvcckpt.core import manifest
from tests.conftest import write_checkpoint


def test_manifest_is_sha256sum_format_sorted_by_path() -> None:
    a, b, c = (hashlib.sha256(data).hexdigest() for data in (b"a", b"b", b"c"))
    # Given out of order; "sub-x" sorts before "sub/y" ("-" < "/"), as in `sort` under C locale.
    entries = [("sub/y.bin", c), ("model.bin", a), ("sub-x", b)]
    text = manifest.manifest_text(entries)
    assert text == f"{a}  model.bin\n{b}  sub-x\n{c}  sub/y.bin\n"
    assert manifest.manifest_sha256(entries) == hashlib.sha256(text.encode()).hexdigest()
    assert manifest.manifest_sha256(iter(entries)) == manifest.manifest_sha256(reversed(entries))


def test_added_directory_verifies_against_the_manifest_of_its_files(repo: Path, cli) -> None:
    tree = repo / "models/d/ckpt-7"
    write_checkpoint(tree / "model.bin", size=30_000, seed=1)
    write_checkpoint(tree / "config.json", size=200, seed=2)
    write_checkpoint(tree / "optim/state.pt", size=5_000, seed=3)
    write_checkpoint(tree / "optim/shards/part-0001.bin", size=1_000, seed=4)
    added = cli("add", "models/d/ckpt-7", "--model", "d", "--step", "7")
    assert added.code == 0, added.err
    name = card.read(repo / "models/d/ckpt-7.ckpt.yaml").data["name"]

    expected = manifest.manifest_sha256(
        (p.relative_to(tree).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
        for p in tree.rglob("*")
        if p.is_file()
    )
    result = cli("verify", name, "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["ok"] is True
    [checked] = report["checkpoints"]
    assert checked["format"] == "directory" and checked["status"] == "ok"
    assert checked["sha256"] == expected
    assert {where: c["sha256"] for where, c in checked["copies"].items()} == {
        "workspace": expected,
        "cache": expected,
    }


def test_manifest_refuses_names_that_would_forge_lines() -> None:
    import pytest

    from dvcckpt.errors import UsageError

    digest = hashlib.sha256(b"x").hexdigest()
    for name in ("a\nb", f"a\n{digest}  b", "tab\there", "esc\x1b", "del\x7f"):
        with pytest.raises(UsageError, match="control character"):
            manifest.manifest_text([(name, digest)])
