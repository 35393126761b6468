"""One reading of a card everywhere, and the resource limits every reader and writer share.

Every reader (the fast one behind the hook, catalog, `show` and gates; the
round-trip one behind editing; each from text, bytes or a file) either refuses a
document with a CardError or returns the same plain data as all the others.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dvcckpt.adapters import yamldoc, yamlstrict
from dvcckpt.core import limits, resources, schema
from dvcckpt.errors import CardError
from tests.conftest import write_checkpoint
from tests.corpus import assert_user_error, changed, snapshot

Reader = Callable[[bytes, Path], Any]


def _fast(data: bytes, path: Path) -> Any:
    return yamldoc.load_fast(data.decode("utf-8", "surrogatepass"), path.name)


def _fast_bytes(data: bytes, _path: Path) -> Any:
    return yamldoc.load_fast(data, _path.name)


def _round_trip(data: bytes, path: Path) -> Any:
    return yamldoc.to_plain(
        yamldoc.load_untrusted(data.decode("utf-8", "surrogatepass"), path.name)
    )


def _fast_file(data: bytes, path: Path) -> Any:
    path.write_bytes(data)
    return yamldoc.load_fast(yamldoc.read_text(path), str(path))


def _round_trip_file(data: bytes, path: Path) -> Any:
    path.write_bytes(data)
    return yamldoc.to_plain(yamldoc.read_file(path))


TEXT_READERS: dict[str, Reader] = {"fast": _fast, "round-trip": _round_trip}
READERS: dict[str, Reader] = {
    **TEXT_READERS,
    "fast-bytes": _fast_bytes,
    "fast-file": _fast_file,
    "round-trip-file": _round_trip_file,
}


def _outcome(reader: Reader, data: bytes, path: Path) -> tuple[str, str]:
    """("data", canonical JSON) or ("refused", message); anything else is a bug."""
    try:
        return "data", json.dumps(reader(data, path))
    except CardError as exc:
        return "refused", exc.message


def _nested_block(levels: int) -> str:
    return "".join(f"{'  ' * i}k{i}:\n" for i in range(levels)) + "  " * levels + "v: 1\n"


# (id, document, words the error must contain). Every reader must refuse each one.
HOSTILE: list[tuple[str, bytes, str]] = [
    ("yaml-1.1-directive", b"%YAML 1.1\n---\nswitch: yes\n", "line 1: YAML directives"),
    ("tag-directive", b"%TAG !e! tag:example.com:\n---\na: !e!x 1\n", "line 1: YAML directives"),
    ("merge-key", b"base: {f1: 0.9}\n<<: {f1: 0.1}\n", "line 2: the key `<<`"),
    ("quoted-merge-key", b"'<<': 1\n", "the key `<<`"),
    ("non-specific-tag", b"threshold: ! 12\n", "line 1: YAML tag '!'"),
    ("core-tag", b"threshold: !!float 1\n", "YAML tag"),
    ("python-tag", b"a: !!python/name:os.system x\n", "YAML tag"),
    ("anchor-alias", b"a: &x [1]\nb: *x\n", "anchors and aliases"),
    ("mixed-keys", b"floor: {0: .95, 1: .40, '1': .90}\n", "line 1: key '0' is not a string"),
    ("bool-key", b"true: 1\n", "key 'true' is not a string"),
    ("null-key", b"~: 1\n", "is not a string"),
    ("float-key", b"m:\n  1.5: x\n", "line 2: key '1.5' is not a string"),
    ("list-key", b"? [a, b]\n: 1\n", "mapping key must be a string"),
    ("mapping-key", b"m:\n? a: 1\n  b: 2\n", "mapping key must be a string"),
    ("duplicate-key", b"name: a\nname: b\n", "line 2: duplicate key 'name'"),
    ("quoted-duplicate", b"name: a\n'name': b\n", "duplicate key 'name'"),
    ("two-documents", b"a: 1\n---\na: 2\n", "more than one YAML document"),
    ("document-end", b"a: 1\n...\n", "line 2: the document end marker"),
    ("bom-inside", b"a: '\xef\xbb\xbfx'\n", "byte-order mark (U+FEFF) inside the file"),
    ("utf16-bom", "a: 1\n".encode("utf-16"), "UTF-16"),
    ("utf16-no-bom", "a: 1\n".encode("utf-16-le"), "NUL"),
    ("latin1", "notes: caf\xe9\n".encode("latin-1"), "not UTF-8"),
    ("line-separator", "a: 1\u2028b: 2\n".encode(), "U+2028"),
    ("next-line", "a: 'x\x85y'\n".encode(), "U+0085"),
    ("control-char", b"a: x\x07y\n", "U+0007"),
    ("deep-block-600", _nested_block(600).encode(), "nested deeper than 32 levels"),
    ("deep-flow-600", b"a: " + b"[" * 600 + b"]" * 600 + b"\n", "nested deeper than 32 levels"),
    ("deep-compact-50000", b"- " * 50_000 + b"x\n", "nested deeper than 32 levels"),
    ("deep-33", _nested_block(33).encode(), "nested deeper than 32 levels"),
    ("huge-int", b"step: 9223372036854775808\n", "outside the 64-bit integer range"),
    ("huge-negative", b"step: -9223372036854775809\n", "outside the 64-bit integer range"),
    ("5000-digit-int", b"step: " + b"9" * 5000 + b"\n", "64-bit integer range"),
    ("nan", b"f1: .nan\n", "f1: nan is not a finite number"),
    ("inf", b"f1: -.inf\n", "f1: -inf is not a finite number"),
    ("1e999", b"threshold: 1e999\n", "threshold: inf is not a finite number"),
    ("long-string", b"notes: " + b"x" * (limits.MAX_STRING_CHARS + 1) + b"\n", "character limit"),
    ("long-key", b"k" * (limits.MAX_KEY_CHARS + 1) + b": 1\n", "character key"),
    ("escaped-fffd", b'a: "\\uFFFD"\n', "U+FFFD"),
    ("raw-fffd", "a: \ufffd\n".encode(), "U+FFFD"),
    ("underscore-number", b"lr: 1_000\n", "read differently"),
    ("leading-underscore", b"lr: _1\n", "read differently"),
    ("dot-exponent", b"lr: .5e3\n", "read differently"),
    ("too-big", b"a: 1\n" + b"#" * (1 << 20) + b"\n", "byte limit"),
    ("syntax", b'notes: "R&D unterminated\n', "line 2, column 1"),
]


@pytest.mark.parametrize("reader", list(READERS), ids=list(READERS))
@pytest.mark.parametrize(
    ("document", "words"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_every_reader_refuses_hostile_documents(
    reader: str, document: bytes, words: str, tmp_path: Path
) -> None:
    path = tmp_path / "card.yaml"
    if reader in TEXT_READERS:
        try:
            document.decode("utf-8")
        except UnicodeDecodeError:
            pytest.skip("a text reader receives decoded text")
    with pytest.raises(CardError) as caught:
        READERS[reader](document, path)
    assert words in caught.value.message, caught.value.message
    assert "card.yaml" in caught.value.message
    assert caught.value.hint


ACCEPTED: list[tuple[str, bytes, Any]] = [
    ("leading-bom", b"\xef\xbb\xbfname: a\n", {"name": "a"}),
    ("leading-bom-only", b"\xef\xbb\xbf", None),
    ("explicit-start", b"---\na: 1\n", {"a": 1}),
    ("quoted-number-keys", b"floor: {'0': .95, '1': .40}\n", {"floor": {"0": 0.95, "1": 0.4}}),
    ("yaml-1.1-words-are-strings", b"a: [yes, no, on, off]\n", {"a": ["yes", "no", "on", "off"]}),
    ("timestamps-are-strings", b"at: 2026-01-05 10:00:00\n", {"at": "2026-01-05 10:00:00"}),
    ("octal-looking-is-decimal", b"a: 010\n", {"a": 10}),
    ("markers-in-text", b"notes: 'R&D * stars ! bang << %'\n", {"notes": "R&D * stars ! bang << %"}),
    ("int-limits", b"a: [9223372036854775807, -9223372036854775808]\n", {"a": [limits.MAX_INT, limits.MIN_INT]}),
    ("depth-32", _nested_block(31).encode(), None),
    ("crlf", b"a: 1\r\nb: [x, y]\r\n", {"a": 1, "b": ["x", "y"]}),
    ("names-with-underscores", b"run: bert_lr5e-5_2026-01-05\nx_1: a_b\n", {"run": "bert_lr5e-5_2026-01-05", "x_1": "a_b"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("document", "expected"), [a[1:] for a in ACCEPTED], ids=[a[0] for a in ACCEPTED]
)
def test_every_reader_reads_accepted_documents_alike(
    document: bytes, expected: Any, tmp_path: Path
) -> None:
    outcomes = {
        name: _outcome(reader, document, tmp_path / "c.yaml") for name, reader in READERS.items()
    }
    assert len(set(outcomes.values())) == 1, outcomes
    kind, value = outcomes["fast"]
    assert kind == "data", value
    if expected is not None:
        assert json.loads(value) == expected


# Card-like plain data: string keys, lists, and every scalar a card may hold.
_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\ufffd"), max_size=12)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(limits.MIN_INT, limits.MAX_INT)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
    | st.sampled_from(["yes", "no", "on", "1_000", "_1", ".5e3", "0x1F", "010", "1e3", "null",
                       "~", "2026-01-05", "12:30", "<<", "- x", "a: b", "#", "'", '"', "\ufeff",
                       "\u2028", "\x85", "\x00", "é", "\t", " ", "", "x\n", "!x", "&a", "*a"])
)  # fmt: skip
_PLAIN = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT | _SCALARS.filter(lambda v: isinstance(v, str)), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.dictionaries(_TEXT, _PLAIN, max_size=5))
def test_written_data_reads_back_identically_everywhere(
    data: dict[str, Any], tmp_path: Path
) -> None:
    if limits.problems(data):  # e.g. a `<<` key: the writer refuses what readers would
        with pytest.raises(CardError):
            yamldoc.dump(data)
        return
    text = yamldoc.dump(data)
    expected = json.dumps(data)
    for name, reader in READERS.items():
        assert _outcome(reader, text.encode(), tmp_path / "w.yaml") == ("data", expected), name


_TOKENS = st.sampled_from([
    "a", "b", "k1", "0", "1", "'1'", '"x"', "- ", ": ", "? ", ", ", "[", "]", "{", "}", "\n", "  ",
    "    ", "\t", "\r\n", "#c", "|\n", ">-\n", "~", "null", "true", "yes", "1e999", ".nan", ".inf",
    "1_0", ".5e3", "0x1F", "0o7", "0b1", "010", "-0", "+1", "1.", "2026-01-05", "12:30", "&a ",
    "*a", "! ", "!!str ", "%YAML 1.1\n", "---\n", "...\n", "<<: ", "\ufeff", "\u2028", "\x85",
    "é", "\\", "'", '"', "9223372036854775808", "@", "`", "%", "=", "-", "_",
    "\n  - ", "\n  k: ", "\n- ", "\nk: ", "'it''s'", '"a\\nb"', '"\\t"', '"\\x41"', '"\\u00e9"',
    "\n\n", " #x", "'multi\n  line'", '"multi\n line"', "a b", ": |\n  ", "- >\n  ", "\n   ",
    "k: v", "x:", "? k", "\n: v", "{a: 1}", "[a, b]", "{a}", "[a: b]", "1:2", "a:b", "-1", "- -",
    "0.", "1e-3", "1.5E+3", "0o17", "-.5", "+.inf", "NaN", "Null", "~x", "\r", " \n",
])  # fmt: skip


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parts=st.lists(_TOKENS, max_size=24), bom=st.booleans())
def test_any_text_is_refused_by_every_reader_or_read_alike(
    parts: list[str], bom: bool, tmp_path: Path
) -> None:
    data = (("\ufeff" if bom else "") + "".join(parts)).encode("utf-8")
    outcomes = {
        name: _outcome(reader, data, tmp_path / "h.yaml") for name, reader in READERS.items()
    }
    kinds = {kind for kind, _ in outcomes.values()}
    assert len(kinds) == 1, outcomes
    if kinds == {"data"}:
        assert len({value for _, value in outcomes.values()}) == 1, outcomes


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(_TOKENS, max_size=24))
def test_the_fast_path_reads_what_the_libyaml_reader_reads(parts: list[str]) -> None:
    """Text that `needs_scan` lets through to yaml-rs is read by yaml-rs as by libyaml."""
    text = "".join(parts)
    try:
        text = yamlstrict.prepare(text, "t")
    except CardError:
        return
    if yamlstrict.needs_scan(text):
        return
    import yaml_rs

    try:
        fast = json.dumps(yaml_rs.loads(text, parse_datetime=False))  # tuple keys: TypeError
        strict = json.dumps(yamlstrict.load(text, "t")[0])
    except Exception:  # either refuses: `load_fast` refuses (see the properties above)
        return
    assert fast == strict, text


_CARD = yamldoc.dump(
    {
        "schema": {"id": "dvcckpt/checkpoint", "version": "1.1"},
        "name": "bert-train-full-step0000100",
        "checkpoint": {"path": "m/a.pt", "step": 100, "sha256": "c9e9" * 16, "files": 1},
        "run": {"name": "bert_tweets_lr5e-5_2026-01-05", "command": "python train.py --lr 5e-5"},
        "params": {"lr": 5e-5, "batch_size": 32, "optimizer": "adamw", "tags": ["a", "b"]},
        "metrics": {"dev": {"macro_f1": 0.4708, "class_f1": {"neg": 0.44, "pos": 0.49}}},
        "notes": "Synthetic checkpoint 100 of bert.",
    }
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=st.lists(st.tuples(st.integers(0, len(_CARD)), _TOKENS), min_size=1, max_size=3))
def test_an_edited_card_is_refused_by_every_reader_or_read_alike(
    edits: list[tuple[int, str]], tmp_path: Path
) -> None:
    text = _CARD
    for position, token in sorted(edits, reverse=True):
        text = text[:position] + token + text[position:]
    outcomes = {n: _outcome(r, text.encode(), tmp_path / "e.yaml") for n, r in READERS.items()}
    assert len(set(outcomes.values())) == 1 or {k for k, _ in outcomes.values()} == {"refused"}, (
        outcomes
    )


def _deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"k": value}
    return value


WRITE_REFUSED: list[tuple[str, Any, str]] = [
    ("3-MB-notes", {"notes": "x" * 3_000_000}, "notes: a 3000000-character string"),
    ("huge-int", {"step": 1 << 64}, "step: 18446744073709551616 is outside"),
    ("nan", {"f1": float("nan")}, "f1: nan is not a finite number"),
    ("inf", {"f1": float("inf")}, "f1: inf is not a finite number"),
    ("deep", _deep(600), "nested deeper than 32 levels"),
    ("non-string-key", {"floor": {0: 0.95}}, "key 0 is a int, keys must be strings"),
    ("merge-key", {"<<": {"a": 1}}, "the key `<<`"),
    ("fffd", {"notes": "caf\ufffd"}, "U+FFFD"),
    ("surrogate", {"notes": "\udcff"}, "surrogate"),
    ("too-many-bytes", {f"k{i}": "x" * 60_000 for i in range(20)}, "byte limit"),
]


@pytest.mark.parametrize(
    ("data", "words"), [w[1:] for w in WRITE_REFUSED], ids=[w[0] for w in WRITE_REFUSED]
)
def test_writer_refuses_what_readers_would_refuse(data: Any, words: str) -> None:
    with pytest.raises(CardError, match=re.escape(words)):
        yamldoc.dump(data, source="card.yaml")


@pytest.mark.parametrize(
    ("data", "words"), [w[1:] for w in WRITE_REFUSED[:-1]], ids=[w[0] for w in WRITE_REFUSED[:-1]]
)
def test_schema_enforces_the_same_limits_without_recursion(data: Any, words: str) -> None:
    for name in ("checkpoint.v1", "config.v1", "gates.v1"):
        found = schema.problems(data, name)
        assert any(words in problem for problem in found), (name, found)


def _patterns(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        found += list(node.get("patternProperties", {}))
        return found + [p for value in node.values() for p in _patterns(value)]
    return [p for value in node for p in _patterns(value)] if isinstance(node, list) else []


@pytest.mark.parametrize("name", ["checkpoint.v1", "config.v1", "gates.v1"])
def test_no_schema_pattern_accepts_a_trailing_newline(name: str) -> None:
    document = resources.load_schema(name)
    for pattern in _patterns(document):
        compiled = re.compile(pattern)
        # Every anchored pattern ends with `$(?!\n)`: Python's `$` alone also matches
        # before a final newline (JSON Schema's ECMA `$` does not; both read this alike).
        if pattern.endswith("$") or "$(?!\\n)" in pattern:
            assert pattern.endswith("$(?!\\n)"), pattern
        for sample in ("x\n", "a-b\n", "1.1\n", "0" * 64 + "\n", "m/a.pt\n"):
            assert not (compiled.search(sample) and pattern.endswith("$(?!\\n)")), (pattern, sample)
    names = [n for n in _lengths(document) if n]
    assert all(length == limits.MAX_NAME_CHARS for length in names), names


def _lengths(node: Any) -> list[int]:
    if isinstance(node, dict):
        own = [node["maxLength"]] if "maxLength" in node and "pattern" in node else []
        return own + [n for value in node.values() for n in _lengths(value)]
    return [n for value in node for n in _lengths(value)] if isinstance(node, list) else []


def test_names_with_a_trailing_newline_fail_the_schema() -> None:
    card = {"schema": {"id": "dvcckpt/checkpoint", "version": "1.1"}, "name": "bert\n"}
    assert any(p.startswith("name:") for p in schema.card_problems(card))
    gates = {"version": 1, "stages": {"prod\n": {"rules": []}}}
    assert schema.problems(gates, "gates.v1")
    assert any(p.startswith("name:") for p in schema.card_problems({**card, "name": "b" * 201}))


# Through the real CLI: the hook's reader (`check`) and `show` refuse with one clean error.
CLI_HOSTILE = {
    "mixed-keys": lambda text: text.replace("metrics:\n", "x-floor: {0: .95, 1: .40, '1': .90}\nmetrics:\n"),
    "merge-key": lambda text: text + "<<: {name: other}\n",
    "directive": lambda text: "%YAML 1.1\n---\n" + text,
    "non-specific-tag": lambda text: text.replace("step: 7", "step: ! 7"),
    "nan": lambda text: text.replace("macro_f1: 0.8", "macro_f1: .nan"),
    "huge-step": lambda text: text.replace("step: 7", "step: 99999999999999999999"),
    "deep": lambda text: text + "x-deep:\n" + "".join(f"{'  ' * (i + 1)}k{i}:\n" for i in range(600)),
    "bom-inside": lambda text: text.replace("metrics:", "\ufeffmetrics:"),
    "underscore": lambda text: text.replace("step: 7", "step: 1_0"),
}  # fmt: skip


@pytest.fixture
def card_file(repo: Path, cli: Any) -> Path:
    write_checkpoint(repo / "m/a.pt")
    result = cli("add", "m/a.pt", "--step", "7", "-m", "dev.macro_f1=0.8")
    assert result.code == 0, result.err
    return repo / "m/a.pt.ckpt.yaml"


def _assert_refused(cli: Any, path: Path, *words: str) -> None:
    """`check` (the hook's reader) lists the problem and fails; `show` refuses (exit 3)."""
    checked = cli("check", str(path))
    assert_user_error(checked.code, checked.err)
    assert checked.code == 1 and all(w in checked.out for w in (path.name, *words)), checked
    shown = cli("show", str(path))
    assert_user_error(shown.code, shown.err, names=(path.name, *words))
    assert shown.code == 3, shown


@pytest.mark.parametrize("case", list(CLI_HOSTILE))
def test_check_and_show_refuse_hostile_cards_cleanly(
    case: str, card_file: Path, cli: Any, repo: Path
) -> None:
    card_file.write_text(CLI_HOSTILE[case](card_file.read_text()), encoding="utf-8")
    before = snapshot(repo)
    _assert_refused(cli, card_file)
    assert changed(before, snapshot(repo)) == []


def test_utf16_card_is_refused_cleanly(card_file: Path, cli: Any) -> None:
    card_file.write_bytes(card_file.read_text().encode("utf-16"))
    _assert_refused(cli, card_file, "UTF")


def test_card_with_a_leading_bom_reads_as_without(card_file: Path, cli: Any) -> None:
    plain = cli("show", str(card_file), "--json")
    card_file.write_bytes(b"\xef\xbb\xbf" + card_file.read_bytes())
    assert cli("check", str(card_file)).code == 0
    bom = cli("show", str(card_file), "--json")
    assert bom.code == 0, bom.err
    assert bom.out == plain.out


def test_card_writer_refuses_a_3_mb_notes_field(tmp_path: Path) -> None:
    from dvcckpt.cards import card

    target = tmp_path / "m.ckpt.yaml"
    document = {"schema": {"id": "dvcckpt/checkpoint", "version": "1.1"}, "notes": "x" * 3_000_000}
    with pytest.raises(CardError, match="notes: a 3000000-character string is over"):
        card.write(target, document)
    assert not target.exists()
    with pytest.raises(CardError, match="nested deeper than 32 levels"):
        card.write(target, {**document, "notes": "", "x-deep": _deep(5000)})
    assert not target.exists()


def test_add_with_a_3_mb_note_is_refused_before_anything_is_written(repo: Path, cli: Any) -> None:
    write_checkpoint(repo / "m/b.pt")
    before = snapshot(repo)
    result = cli("add", "m/b.pt", "--step", "1", "--notes", "x" * 3_000_000)
    assert_user_error(result.code, result.err, names=("notes",))
    assert changed(before, snapshot(repo)) == []


def test_the_hook_can_list_value_problems_with_the_schema_findings() -> None:
    """`values=False` hands NaN on to the schema pass (which lists it with the rest);
    depth and keys are refused by the reader whatever the caller asks."""
    text = "schema: {id: dvcckpt/checkpoint, version: '1.1'}\nmetrics: {dev: {f1: .nan}}\nbad: 1\n"
    document = yamldoc.load_fast(text, "c.yaml", values=False)
    found = schema.card_problems(document)
    assert "metrics.dev.f1: nan is not a finite number" in found
    assert any(p.startswith("bad: unknown field") for p in found)
    with pytest.raises(CardError, match="not a finite number"):
        yamldoc.load_fast(text, "c.yaml")
    for structural in (_nested_block(40), "m: {0: x}\n"):
        with pytest.raises(CardError):
            yamldoc.load_fast(structural, "c.yaml", values=False)


def test_readers_refuse_a_fifo_or_a_folder_without_blocking(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "card.yaml"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path):
        for read in (yamldoc.read_text, yamldoc.read_file):
            with pytest.raises(CardError, match="not a regular file"):
                read(path)
