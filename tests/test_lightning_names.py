"""Lightning's checkpoint file names read back: `core.lightningnames`, against Lightning's
own `ModelCheckpoint.format_checkpoint_name` (a property test) and by example."""

from __future__ import annotations

import math
import os
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dvcckpt.core import lightningnames

torch = pytest.importorskip("torch")
callbacks = pytest.importorskip("lightning.pytorch.callbacks")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("epoch=4-step=50.ckpt", {"checkpoint": {"epoch": 4, "step": 50}}),
        (
            "epoch=4-step=50-val_acc=0.840.ckpt",
            {"checkpoint": {"epoch": 4, "step": 50}, "metrics": {"val": {"acc": 0.84}}},
        ),
        ("epoch=4-step=50-v1.ckpt", {"checkpoint": {"epoch": 4, "step": 50}}),
        (
            "epoch=3-val_loss=0.25.ckpt",
            {"checkpoint": {"epoch": 3}, "metrics": {"val": {"loss": 0.25}}},
        ),
        (
            "best-epoch=003-train_loss_epoch=-1.20e-04-loss=2.ckpt",
            {
                "checkpoint": {"epoch": 3},
                "metrics": {"train": {"loss_epoch": -0.00012}, "overall": {"loss": 2}},
            },
        ),
        ("last.ckpt", {}),
        ("last-v1.ckpt", {}),
        ("3-0.25.ckpt", {}),  # auto_insert_metric_name=False: nothing is guessed
        ("epoch=4-step=50.pt", {}),  # not Lightning's extension
        ("epoch=4-step=fifty.ckpt", {"checkpoint": {"epoch": 4}}),
        ("epoch=-1-step=5.ckpt", {"checkpoint": {"step": 5}}),  # a negative epoch is no epoch
        ("epoch=1-val_acc=nan-val_f1=inf.ckpt", {"checkpoint": {"epoch": 1}}),
        ("epoch=1-epoch=2-step=3.ckpt", {"checkpoint": {"step": 3}}),  # contradicting: dropped
        ("epoch=4-val/acc=0.84.ckpt", {}),  # a path, not a file name
    ],
)
def test_lightning_names_read_back(name: str, expected: dict[str, Any]) -> None:
    assert lightningnames.fragment(name) == expected


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("val_acc", ("val", "acc")),
        ("val/acc", ("val", "acc")),
        ("test/f1/macro", ("test", "f1_macro")),
        ("train_loss_step", ("train", "loss_step")),
        ("validation_loss", ("overall", "validation_loss")),  # only val_, train_, test_
        ("loss", ("overall", "loss")),
        ("val_", ("overall", "val_")),
        ("lr-Adam", ("overall", "lr-Adam")),
        ("_hidden", None),  # a card key starts with a letter or digit
        ("val/", None),
        ("acc@1", None),
    ],
)
def test_metric_names_split(metric: str, expected: tuple[str, str] | None) -> None:
    assert lightningnames.split_metric(metric) == expected


# The metric names a Lightning module logs and puts into its file names: `/` is left
# out, as Lightning writes it as a folder (Lightning's own advice: auto_insert=False).
_names = st.from_regex(r"(val_|train_|test_)?[a-z][a-z0-9_]{0,12}", fullmatch=True).filter(
    lambda name: name not in lightningnames.POSITION_KEYS
)
_specs = st.sampled_from(["", ":.2f", ":.3f", ":.4g", ":.2e", ":.1E", ":08.3f"])
_values = st.floats(allow_nan=True, allow_infinity=True, width=32) | st.integers(-999, 10**6)


_FINITE = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


@st.composite
def _templates(draw: st.DrawFn) -> tuple[str | None, dict[str, Any], dict[str, str]]:
    """A filename template, the values it is given and each metric's format spec."""
    metrics = draw(st.dictionaries(_names, _values, max_size=4))
    specs = {name: draw(_specs) for name in metrics}
    parts = [draw(st.sampled_from(["{epoch}", "{epoch:03d}"]))] if draw(st.booleans()) else []
    if draw(st.booleans()):
        parts.append("{step}")
    parts += [f"{{{name}{specs[name]}}}" for name in metrics]
    if draw(st.booleans()):
        parts.insert(0, draw(st.sampled_from(["best", "model", "ckpt_1"])))
    template = "-".join(parts) or None  # None: Lightning's default `{epoch}-{step}`
    return template, metrics, specs


@settings(max_examples=150, deadline=None)
@given(
    _templates(),
    st.integers(0, 500),
    st.integers(0, 10**7),
    st.none() | st.integers(1, 12),
)
def test_lightning_formatted_names_round_trip(
    template: tuple[str | None, dict[str, Any], dict[str, str]], epoch: int, step: int, ver: Any
) -> None:
    text, metrics, specs = template
    tensors = {name: torch.tensor(value) for name, value in metrics.items()}
    given_values = {"epoch": torch.tensor(epoch), "step": torch.tensor(step), **tensors}
    checkpoint = callbacks.ModelCheckpoint(filename=text)
    name = os.path.basename(checkpoint.format_checkpoint_name(dict(given_values), ver=ver))

    found = lightningnames.fragment(name)

    position = found.get("checkpoint", {})
    uses = text or "{epoch}-{step}"
    assert position.get("epoch") == (epoch if "{epoch" in uses else None)
    assert position.get("step") == (step if "{step}" in uses else None)
    expected: dict[str, dict[str, float]] = {}
    for metric, tensor in tensors.items():
        written = format(tensor, specs[metric].lstrip(":"))  # what Lightning wrote
        # Not a number (`00000inf`, zero-padded infinity), NaN or infinite: not read.
        value = float(written) if _FINITE.fullmatch(written) else math.nan
        if math.isfinite(value):
            split, key = lightningnames.split_metric(metric) or ("?", "?")
            expected.setdefault(split, {})[key] = value
    assert found.get("metrics", {}) == expected, name


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 99), st.floats(0, 1, width=32))
def test_names_without_keys_are_never_guessed(epoch: int, loss: float) -> None:
    checkpoint = callbacks.ModelCheckpoint(
        filename="{epoch}-{val_loss:.2f}", auto_insert_metric_name=False
    )
    name = checkpoint.format_checkpoint_name({"epoch": epoch, "val_loss": torch.tensor(loss)})
    assert lightningnames.fragment(os.path.basename(name)) == {}
