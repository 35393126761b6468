"""Lightning's checkpoint file names: `epoch=4-step=50-val_acc=0.840.ckpt`.

`ModelCheckpoint` joins the parts of its `filename` template with `-` and, by default
(`auto_insert_metric_name=True`), writes every placeholder as `key=value`. Only those
`key=value` parts are read, so a name is never guessed at:

- `epoch=4-step=50.ckpt`, `epoch=4-step=50-val_acc=0.840.ckpt`, `best-epoch=3-val_loss=0.25.ckpt`
  (literal text such as `best` is skipped) and a version suffix (`-v1`, Lightning's answer
  to a name that is taken) all read; `last.ckpt`, `last-v1.ckpt` and
  `auto_insert_metric_name=False` names such as `3-0.25.ckpt` encode no keys: nothing.
- A key never contains `-` (Lightning's join character): in `a-b=1` the key is `b`.
- A value is a number as Python formats one (`4`, `003`, `0.840`, `-1.2e-04`); NaN,
  infinities, negative epochs or steps, and a key given twice with different values are
  dropped (the card refuses them; a name is not worth failing a registration for).
- `epoch` is Lightning's 0-based epoch counter and `step` its `global_step`, as named.

Every other key is a metric, and its split comes from the metric's name (`split_metric`):
a `/` separates split and metric (`val/acc` -> `val.acc`); otherwise a `val_`, `train_`
or `test_` prefix is the split (`val_acc` -> `val.acc`, `train_loss_epoch` ->
`train.loss_epoch`); anything else goes to the `overall` split (`loss` -> `overall.loss`).
Lightning itself writes a `/` in a name as a folder (`{val/acc}` makes `epoch=4-val/`
holding `acc=0.84.ckpt`); only the file's own name is read here, which is why Lightning
suggests `auto_insert_metric_name=False` with `val_acc={val/acc:.2f}` for such names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from dvcckpt.core.fragments import DEFAULT_SPLIT

SUFFIX = ".ckpt"
SPLIT_PREFIXES = ("val", "train", "test")
POSITION_KEYS = ("epoch", "step")
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"
# A key=value part: the key runs back to the previous `-` (or the start), the value is
# a number that ends the part.
_PART = re.compile(rf"(?:^|-)(?P<key>[A-Za-z_][A-Za-z0-9_.]*)=(?P<value>{_NUMBER})(?=-|$)")
_VERSION = re.compile(r"-v\d+$")
# What a card accepts as a split or metric name (the schema's `key`).
_CARD_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")


def fragment(name: str) -> dict[str, Any]:
    """Epoch, step and metrics a Lightning file name encodes (empty if it encodes none)."""
    values = parts(name)
    result: dict[str, Any] = {}
    position = {key: values.pop(key) for key in POSITION_KEYS if key in values}
    position = {k: v for k, v in position.items() if isinstance(v, int) and v >= 0}
    if position:
        result["checkpoint"] = position
    metrics = grouped(values.items())
    if metrics:
        result["metrics"] = metrics
    return result


def parts(name: str) -> dict[str, int | float]:
    """The finite `key=value` parts of a `.ckpt` file name, by key (empty for other names)."""
    if not name.endswith(SUFFIX) or "/" in name:
        return {}
    stem = _VERSION.sub("", name[: -len(SUFFIX)])
    found: dict[str, int | float] = {}
    conflicting: set[str] = set()
    for match in _PART.finditer(stem):
        key, value = match["key"], _number(match["value"])
        if value is None:
            continue
        if key in found and found[key] != value:
            conflicting.add(key)
        found[key] = value
    return {key: value for key, value in found.items() if key not in conflicting}


def _number(text: str) -> int | float | None:
    """`003` -> 3, `0.840` -> 0.84; None for NaN and infinities."""
    try:
        return int(text)
    except ValueError:
        value = float(text)
    return value if math.isfinite(value) else None


def split_metric(name: str) -> tuple[str, str] | None:
    """`val/acc` or `val_acc` -> ("val", "acc"); `loss` -> ("overall", "loss").

    None when the name cannot be a card's split and metric name (a card key starts
    with a letter or digit, then letters, digits, `_`, `.` or `-`).
    """
    split, sep, metric = name.partition("/")
    if sep:
        metric = metric.replace("/", "_")
    else:
        prefix, _, rest = name.partition("_")
        split, metric = (
            (prefix, rest) if prefix in SPLIT_PREFIXES and rest else (DEFAULT_SPLIT, name)
        )
    if not (_CARD_KEY.fullmatch(split) and _CARD_KEY.fullmatch(metric)):
        return None
    return split, metric


def grouped(metrics: Iterable[tuple[str, float]]) -> dict[str, dict[str, float]]:
    """Flat metric names and values -> {split: {metric: value}} (`split_metric`'s rule)."""
    result: dict[str, dict[str, float]] = {}
    for name, value in metrics:
        where = split_metric(name)
        if where is not None:
            result.setdefault(where[0], {})[where[1]] = value
    return result
