"""The fast emitter writes exactly what ruamel writes, or leaves the document to ruamel."""

from __future__ import annotations

import io
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dvcckpt.adapters import yamldoc, yamlfast


def ruamel_text(document: dict[str, Any]) -> str:
    stream = io.StringIO()
    yamldoc._yaml().dump(document, stream)
    return stream.getvalue()


# Strings near every boundary the emitter draws: words, digests, versions, YAML 1.1
# booleans and numbers, dates, indicators, spaces, quotes, non-ASCII, long ones.
TRICKY = st.sampled_from([
    "sentiment", "Hello world", "apache-2.0", "x/y", "_p", "a b  c", " lead", "trail ",
    "3f9a1c", "12e4", "1e5", "0x1f", "0o17", "3.11.7", "2.13.0+cpu", "1.2", "1_000", "1:20",
    "2026-12-01", "2026-12-01T10:00:00Z", "yes", "No", "ON", "off", "y", "n", "null", "Null",
    "~", "true", "False", ".inf", "-.5", "+1", "-", "a: b", "x #y", "#c", "'q'", '"q"',
    "@home", "`t`", "a,b", "[x]", "{x}", "*a", "&a", "!t", "%d", "|", ">", "?", "é", "",
    "line\nbreak", "tab\there", "x" * 1200, "ok.name", "name(1)", "a+b", "v1.0",
    "https://github.com/acme/x.git", "a:b", "a:", "a :b", "http://h:80/p", "key=value",
    "--lr=0.1", "python train.py --lr=0.1", "2026-12-01T10:00:00+00:00", "it's", "0123",
    "2026-12-01 10:00:00", "2026-1-2", "2026-12-01T10:00:00.5Z", "2026-12-01x", "1999-99-99",
])  # fmt: skip
TEXT = st.one_of(TRICKY, st.text(alphabet="abcXYZ019 _./+@()=-:#'\"é,", max_size=12))
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), TEXT,
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=20,
)
DOCUMENTS = st.dictionaries(TEXT, VALUES, min_size=1, max_size=6)


@settings(max_examples=1500, deadline=None)
@given(DOCUMENTS)
def test_the_fast_text_is_ruamels_text_whenever_it_is_given(document: dict[str, Any]) -> None:
    fast = yamlfast.emit(document)
    if fast is not None:
        assert fast == ruamel_text(document)


def test_typical_documents_take_the_fast_path_and_read_back() -> None:
    front = {
        "base_model": "acme/bert-base", "library_name": "transformers", "license": "apache-2.0",
        "datasets": ["tweets"], "tags": ["dvcckpt", "sentiment"], "empty": {}, "none": None,
        "model-index": [{"name": "sentiment-train-full-3f9a1c-step000300", "results": [
            {"task": {"type": "text-classification"}, "metrics": [
                {"type": "macro_f1", "value": 0.91}, {"type": "loss", "value": 1e-05}]}]}],
        "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "python": "3.11.7", "torch": "2.13.0+cpu", "step": 300, "ok": True,
    }  # fmt: skip
    fast = yamlfast.emit(front)
    assert fast is not None and fast == ruamel_text(front)
    assert yamldoc.dump(front) == fast and yamldoc.load_fast(fast, "x") == front


def test_anything_ruamel_must_judge_is_left_to_it() -> None:
    for value in (
        "é",
        "x" * 2000,
        [[1]],
        float("inf"),
        "line\nbreak",
        "it's",
        ("t",),
        "a: b",
        "1e5",
    ):
        assert yamlfast.emit({"k": value}) is None, value
    for value in ("yes", "0123", "2026-12-01", "2026-12-01T10:00:00+00:00"):
        assert yamlfast.emit({"k": value}) == ruamel_text({"k": value}) == f"k: '{value}'\n"
    commented = yamldoc.load_untrusted("a: 1  # why\n", "x")
    assert yamldoc.dump(commented) == "a: 1  # why\n"  # round-trip data keeps its comment
