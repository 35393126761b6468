"""Card reading and writing: round-trips, canonical text, atomic writes, the schema itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from dvcckpt.adapters import yamldoc
from dvcckpt.cards import card
from dvcckpt.core import fields, resources, schema
from dvcckpt.errors import CardError
from tests.conftest import write_checkpoint


@pytest.fixture
def card_file(repo: Path, cli) -> Path:
    write_checkpoint(repo / "m/a.pt")
    result = cli(
        "add",
        "m/a.pt",
        "--step",
        "7",
        "-m",
        "dev.macro_f1=0.8",
        "--tag",
        "yes",
        "-p",
        "version=1.10",
        "-p",
        "lr=1e-5",
        "-p",
        "switch=on",
    )
    assert result.code == 0, result.err
    return repo / "m/a.pt.ckpt.yaml"


def test_round_trip_keeps_comments_and_order_and_only_appends(card_file: Path) -> None:
    original = (
        card_file.read_text()
        .replace("metrics:\n", "# reviewed by Grace: dev split is balanced\nmetrics:\n")
        .replace("  step: 7\n", "  step: 7  # end of warm-up\n")
    )
    card_file.write_text(original)

    loaded = card.read(card_file, editable=True)
    loaded.document["evaluations"] = [
        {"step": 7, "split": "test", "metrics": {"macro_f1": 0.79}, "at": "2026-01-05T10:00:00Z"}
    ]
    card.write(card_file, loaded.document)

    updated = card_file.read_text()
    assert updated.startswith(original)  # every original byte kept, comments included
    assert updated[len(original) :].startswith("evaluations:\n")


def test_canonical_text_is_stable_and_reads_the_same_in_yaml_1_1(card_file: Path) -> None:
    text = card_file.read_text()
    assert text.splitlines()[0] == card.HEADER
    data = card.read(card_file).data
    again = yamldoc.dump(fields.ordered(data), header=card.HEADER)
    assert again == text  # writing the same card twice gives the same bytes
    # PyYAML (YAML 1.1) must not turn 'yes', '1.10', 'on' or 1e-05 into something else.
    assert yaml.safe_load(text) == data
    assert data["params"] == {"version": 1.1, "lr": 1e-05, "switch": "on"}
    assert data["tags"] == ["yes"]


def test_failed_write_leaves_the_card_untouched(card_file: Path) -> None:
    before = card_file.read_text()
    broken = card.read(card_file, editable=True).document
    broken["checkpoint"]["sha256"] = "not-a-hash"
    with pytest.raises(CardError, match=r"checkpoint\.sha256"):
        card.write(card_file, broken)
    assert card_file.read_text() == before
    assert [p.name for p in card_file.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_atomic_write_replaces_in_one_step(tmp_path: Path) -> None:
    from dvcckpt.adapters import atomic

    target = tmp_path / "card.yaml"
    target.write_text("old\n")
    target.chmod(0o640)
    atomic.write_text(target, "new\n")
    assert target.read_text() == "new\n"
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.yaml"]


@pytest.mark.parametrize("loader", [yamldoc.load_untrusted, yamldoc.load_fast])
def test_duplicate_keys_are_refused(loader) -> None:
    # A reviewer reads the first `sha256:`, a lax parser keeps the last: refuse both.
    with pytest.raises(CardError, match="line 2"):
        loader("name: a\nname: b\n", "dup.yaml")


TRICKY = """\
bools: [true, False, yes, no, on, off, y, n]
ints: [012, 0o17, 0x1F, 1000, -3, +4]
floats: [1e-4, 1.0e+20, .5, -.5, 1., 0.5e-3, -0.0]
strings: ['1.10', "12", 2026-01-05, 2026-01-05T10:00:00Z, 1:20, ~user, null-ish]
nulls: [null, ~, Null]
nested: {a: [1, {b: c}], "quoted key": 'v'}
"""


def test_fast_reader_agrees_with_round_trip_reader(card_file: Path) -> None:
    assert yamldoc.load_fast(TRICKY, "t") == yamldoc.to_plain(yamldoc.load_untrusted(TRICKY, "t"))
    text = card_file.read_text()
    assert yamldoc.load_fast(text, "c") == yamldoc.to_plain(yamldoc.load_untrusted(text, "c"))


@pytest.mark.parametrize("loader", [yamldoc.load_untrusted, yamldoc.load_fast])
def test_anchors_and_custom_tags_refused_by_both_readers(loader) -> None:
    with pytest.raises(CardError, match="anchors and aliases"):
        loader("a: &x [1]\nb: *x\n", "bomb.yaml")
    with pytest.raises(CardError, match="tag"):
        loader("a: !!python/name:os.system x\n", "evil.yaml")
    assert loader("notes: 'R&D * stars ! bang'\n", "ok.yaml")["notes"] == "R&D * stars ! bang"


def _fields(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    for key, sub in node.get("properties", {}).items():
        found.append((f"{path}.{key}", sub))
        found.extend(_fields(sub, f"{path}.{key}"))
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            found.extend(_fields(node[key], f"{path}[]"))
    return found


@pytest.mark.parametrize("name", ["checkpoint.v1", "config.v1"])
def test_schemas_are_valid_and_document_every_field(name: str) -> None:
    document = resources.load_schema(name)
    jsonschema.Draft202012Validator.check_schema(document)
    assert document["$id"].endswith(f"{name}.schema.json")
    nodes = _fields(document) + [
        (f"$defs.{key}", sub) for key, sub in document.get("$defs", {}).items()
    ]
    for defname, sub in document.get("$defs", {}).items():
        nodes.extend(_fields(sub, f"$defs.{defname}"))
    undocumented = [
        path for path, sub in nodes if not (sub.get("title") and sub.get("description"))
    ]
    assert undocumented == []
    assert len(nodes) > 12


def test_every_design_section_is_in_the_card_schema() -> None:
    sections = set(resources.load_schema("checkpoint.v1")["properties"])
    assert set(fields.SECTIONS) <= sections


def test_metric_values_numbers_or_estimates() -> None:
    base = json.loads(json.dumps(_minimal_card()))
    ok = {
        "dev": {
            "f1": 0.8,
            "acc": {"value": 0.9, "ci": [0.88, 0.92], "method": "bootstrap"},
            "class_f1": {"neg": 0.7},
        }
    }
    assert schema.card_problems({**base, "metrics": ok}) == []
    bad = {"dev": {"f1": "0.8"}}
    assert any("metrics.dev" in p for p in schema.card_problems({**base, "metrics": bad}))
    nan = {"dev": {"f1": float("nan")}}
    assert schema.card_problems({**base, "metrics": nan})[0].startswith("metrics.dev.f1: nan")
    assert schema.card_problems({**base, "x-team": {"any": "thing"}}) == []
    assert schema.card_problems({**base, "foo": 1}) == [
        "foo: unknown field (extensions go under `x-` keys)"
    ]


def test_paths_in_cards_cannot_escape(tmp_path: Path) -> None:
    for bad in ("../secrets.pt", "/etc/passwd", "a/../../b"):
        problems = schema.card_problems(
            {**_minimal_card(), "checkpoint": {**_minimal_card()["checkpoint"], "path": bad}}
        )
        assert any(p.startswith("checkpoint.path") for p in problems), bad


def _minimal_card() -> dict[str, Any]:
    return {
        "schema": {"id": "dvcckpt/checkpoint", "version": "1.0"},
        "name": "m-train-full-step000001",
        "model": "m",
        "checkpoint": {
            "path": "m/a.pt",
            "format": "file",
            "kind": "full",
            "phase": "train",
            "size": 1,
            "sha256": "0" * 64,
            "created_at": "2026-01-05T10:00:00Z",
            "dvc": {"file": "m/a.pt.dvc", "md5": "0" * 32, "size": 1},
        },
    }


@pytest.mark.parametrize("loader", [yamldoc.load_untrusted, yamldoc.load_fast])
def test_syntax_error_in_text_with_alias_markers_is_a_card_error(loader) -> None:
    with pytest.raises(CardError, match="line 2, column 1"):
        loader('notes: "R&D unterminated\n', "broken.yaml")


def test_atomic_write_never_touches_the_process_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other threads of a training process must never see a temporarily cleared umask."""
    import os

    from dvcckpt.adapters import atomic

    current = os.umask(0o027)
    os.umask(current | 0o027)
    try:

        def forbidden(_mask: int) -> int:
            raise AssertionError("atomic.write_text changed the umask")

        monkeypatch.setattr(os, "umask", forbidden)
        fresh = tmp_path / "fresh.yaml"
        atomic.write_text(fresh, "a\n")
        assert fresh.stat().st_mode & 0o777 == 0o666 & ~(current | 0o027)
        kept = tmp_path / "kept.yaml"
        kept.write_text("old\n")
        kept.chmod(0o600)
        atomic.write_text(kept, "new\n")
        assert kept.stat().st_mode & 0o777 == 0o600 and kept.read_text() == "new\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.yaml", "kept.yaml"]
    finally:
        monkeypatch.undo()
        os.umask(current)
