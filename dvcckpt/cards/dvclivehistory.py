"""dvclive's per-step history (`plots/metrics/**/*.tsv`): metrics at a checkpoint's step.

A dvclive folder given as `--metrics` (or the `metrics.json` inside one) is read at the
checkpoint's step, never at dvclive's own position:

- `metrics.json` is not read: it holds only the latest value of each metric, and its
  `step` is dvclive's counter of `next_step()` calls (Hugging Face's dvclive callback
  steps once per log call, so its 13 is the trainer's step 160).
- Each `plots/metrics/<name>.tsv` holds one row per logged value (`[timestamp] step
  value`). For every metric the card takes the last row logged at exactly the
  checkpoint's step. A metric not logged at that step is left out (an evaluation from an
  earlier step is not this checkpoint's); if no metric was logged at that step, or the
  step is unknown, the registration is refused, naming the steps the folder holds,
  rather than given another step's values.
- A metric's folders are its place on the card, as in dvclive's own `metrics.json`: the
  first folder is the split as dvclive names it (`train/loss` -> `train.loss`,
  `eval/acc` -> `eval.acc`, Lightning's `val/` and `test/` alike; `train/epoch/loss` ->
  the group `train.epoch.loss`). A metric without a folder lands where a metrics file's
  top-level numbers do (`fragments.metrics_fragment`): resource names in `resources`,
  `epoch` in `checkpoint.epoch`, anything else in the `overall` split.

The files come from a training run, so they are read as untrusted: regular files only
(no symbolic links), bounded in size, rows and line length, UTF-8, every row of the
header's width with a whole-number step; a value that is not finite is refused when it
is the one the card would take. Each problem is one `UsageError` naming the file.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from dvcckpt.core import fragments, limits
from dvcckpt.errors import UsageError

HISTORY = Path("plots") / "metrics"
# dvclive writes a few dozen bytes a row: 256 MiB is millions of logged steps.
MAX_TSV_BYTES = 256 << 20
MAX_TSV_FILES = 4096
MAX_LINE_BYTES = 4096
MAX_FOLDER_DEPTH = 8
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf|infinity)", re.I)
# The same rules for a whole block of rows at once (bounded, so a row stays a short line).
_BLOCK_BYTES = 1 << 20
_VALUE = (
    rb"[-+]?(?:\d{1,300}(?:\.\d{0,300})?|\.\d{1,300})(?:[eE][-+]?\d{1,4})?"
    rb"|[-+]?(?i:nan|inf|infinity)"
)
# dvclive writes no leading zeros; a step of 18 digits or fewer fits 64 bits.
_STEP = rb"(?:0|[1-9]\d{0,17})"
_STEP_COLUMN = re.compile(rb"^(?:\d+\t)?(\d+)\t", re.M)
_ROWS = {
    # Each row atomic (`(?>...)`, `*+`): a bad row fails the block at once, no backtracking.
    width: re.compile(rb"(?>" + rb"\d{1,20}\t" * (width - 2) + _STEP + rb"\t(?:" + _VALUE
                      + rb")\r?\n)*+")
    for width in (2, 3)
}  # fmt: skip
# What Hugging Face's dvclive callback writes to params.yaml (TrainingArguments).
_TRAINER_PARAMS = ("output_dir", "logging_steps", "save_steps")
_STEP_HINT = "pass --step N, the step dvclive was at when the checkpoint was saved (`live.step`)"


@dataclass
class _Reading:
    """One metric's value at the wanted step, and the line it was read from (0: none)."""

    value: float | int | None = None
    line: int = 0


def metrics_at(source: Path, step: int | None) -> dict[str, Any] | None:
    """Metrics of a dvclive folder at `step`; None if `source` is not a dvclive folder."""
    folder = dvclive_folder(source)
    if folder is None:
        return None
    label = f"--metrics {source}"
    if step is None:
        raise UsageError(
            f"{label}: dvclive keeps a value per step, and this checkpoint's step is unknown",
            hint=_STEP_HINT,
        )
    _refuse_trainer_counter(folder, label)
    files = dict(_metric_files(folder, label))
    readings = {name: _read(file, name, step) for name, file in files.items()}
    if not readings:
        raise UsageError(
            f"{label}: no per-step history in {folder / HISTORY}",
            hint="log metrics with `live.log_metric(...)` (plot=True), or pass a metrics file",
        )
    found = {name: reading.value for name, reading in readings.items() if reading.line}
    if not found:
        raise UsageError(
            f"{label}: no metric was logged at step {step} ({_covered(files.values(), step)})",
            hint=f"{_STEP_HINT}; another step's metrics are not this checkpoint's: give "
            "them with -m if they are",
        )
    return _fragment(found, readings, label)


def dvclive_folder(source: Path) -> Path | None:
    """The dvclive output folder `source` names (the folder or its metrics.json), if any."""
    if source.is_dir():
        if (source / HISTORY).is_dir() or (source / "metrics.json").is_file():
            return source
        return None
    if source.name == "metrics.json" and (
        (source.parent / HISTORY).is_dir() or source.parent.name == "dvclive"
    ):
        return source.parent
    return None


def _refuse_trainer_counter(folder: Path, label: str) -> None:
    """Hugging Face's dvclive callback steps per log call: its steps are not the trainer's."""
    params = folder / "params.yaml"
    try:
        if not params.is_file() or params.stat().st_size > limits.HARD_MAX_BYTES:
            return
        text = params.read_text("utf-8", errors="replace")
    except OSError:
        return
    if all(re.search(rf"^{key}:", text, re.M) for key in _TRAINER_PARAMS):
        raise UsageError(
            f"{label}: written by Hugging Face's dvclive callback, whose steps count log "
            "calls, not training steps, so no row can be matched to this checkpoint",
            hint="leave out --metrics: `dvcckpt add checkpoint-N/` reads the metrics at its "
            "step from the folder's trainer_state.json",
        )


def _metric_files(folder: Path, label: str) -> Iterator[tuple[str, Path]]:
    """(`eval/loss`, file) for each TSV under plots/metrics, refusing what dvclive never writes."""
    top = folder / HISTORY
    if not top.is_dir():
        return
    count = 0
    for current, dirs, files in os.walk(top, followlinks=False):
        here = Path(current)
        depth = len(here.relative_to(top).parts)
        for name in sorted(dirs):
            if (here / name).is_symlink():
                raise _bad(label, here / name, "a symbolic link (dvclive writes folders)")
            if depth >= MAX_FOLDER_DEPTH:
                raise _bad(label, here / name, f"nested deeper than {MAX_FOLDER_DEPTH} folders")
        dirs.sort()
        for name in sorted(files):
            if not name.endswith(".tsv"):
                continue
            count += 1
            if count > MAX_TSV_FILES:
                raise _bad(label, top, f"more than {MAX_TSV_FILES} metric files")
            file = here / name
            metric = file.relative_to(top).with_suffix("").as_posix()
            for part in metric.split("/"):
                if not _NAME.fullmatch(part) or len(part) > limits.MAX_NAME_CHARS:
                    raise _bad(label, file, f"{metric!r} cannot be a card's metric name",
                               hint="name metrics with letters, digits, `_`, `.` and `-`")  # fmt: skip
            yield metric, file


def _read(file: Path, metric: str, step: int) -> _Reading:
    """Stream one TSV: validate every row, keep the last value logged at `step`."""
    label = f"--metrics {file}"
    info = file.lstat()
    if not stat.S_ISREG(info.st_mode):
        raise _bad(label, None, "not a regular file (dvclive writes plain TSV files)")
    if info.st_size > MAX_TSV_BYTES:
        raise _bad(label, None, f"{info.st_size} bytes is over the {MAX_TSV_BYTES}-byte limit")
    reading = _Reading()
    with file.open("rb") as handle:
        first = handle.readline(MAX_LINE_BYTES + 1)
        if not first:
            return reading
        header = _fields(first, file, 1)
        width = _check_header(header, file, metric.rsplit("/", 1)[-1])
        number = 1
        for block in _blocks(handle):
            number = _scan(block, width, file, number, step, reading)
    if reading.line and reading.value is not None and not math.isfinite(reading.value):
        raise _bad(label, None, f"line {reading.line}: {metric} is {reading.value} at step "
                   f"{step}", hint="a card holds finite numbers: fix the run, or leave out "
                   "--metrics and give the metrics with -m")  # fmt: skip
    return reading


def _blocks(handle: BinaryIO) -> Iterator[bytes]:
    """The rows after the header in blocks of whole lines (a runaway line on its own)."""
    tail = b""
    while chunk := handle.read(_BLOCK_BYTES):
        data = tail + chunk
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
        if cut:
            yield data[:cut]
        if len(tail) > MAX_LINE_BYTES:
            yield tail  # no newline within the limit: the row-by-row reading names it
            tail = b""
    if tail:
        yield tail


def _scan(block: bytes, width: int, file: Path, number: int, step: int, into: _Reading) -> int:
    """Read a block whose first line is `number + 1`; returns the number of its last line.

    A block of well-formed rows (one regular expression over it, in C) is searched for
    the step's rows; any other block is read row by row, which names the bad line.
    """
    if _ROWS[width].fullmatch(block):
        # The step column starts a row, or follows the timestamp: the last such row wins.
        mark = str(step).encode()
        if width == 2:  # `at`: where the row starts, or the tab before its step
            at = (b"\n" + block).rfind(b"\n" + mark + b"\t")
        else:
            at = block.rfind(b"\t" + mark + b"\t")
        if at >= 0:
            begin = at + len(mark) + (1 if width == 2 else 2)
            value = block[begin : block.index(b"\n", begin)].rstrip(b"\r")
            into.value = _number(value.decode("ascii"))
            into.line = number + block.count(b"\n", 0, at) + 1
        return number + block.count(b"\n")
    for raw in block.splitlines(keepends=True):
        number += 1
        _take(_fields(raw, file, number), width, file, number, step, into)
    return number


def _fields(raw: bytes, file: Path, number: int) -> list[str]:
    if len(raw) > MAX_LINE_BYTES:
        raise _bad(f"--metrics {file}", None, f"line {number} is over {MAX_LINE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad(f"--metrics {file}", None, f"line {number} is not UTF-8 (byte "
                   f"0x{raw[exc.start]:02x})", hint="dvclive writes UTF-8: was the file "
                   "replaced?") from None  # fmt: skip
    return text.rstrip("\r\n").split("\t")


def _check_header(header: list[str], file: Path, stem: str) -> int:
    """dvclive's header: `[timestamp] step <metric>`; returns the row width."""
    if header not in (["step", stem], ["timestamp", "step", stem]):
        found = " ".join(header)[:80]
        raise _bad(
            f"--metrics {file}",
            None,
            f"line 1: expected the header `step {stem}` "
            f"(tab-separated, after an optional `timestamp`), found {found!r}",
        )
    return len(header)


def _take(row: list[str], width: int, file: Path, number: int, step: int, into: _Reading) -> None:
    label = f"--metrics {file}"
    if len(row) != width:
        raise _bad(label, None, f"line {number} has {len(row)} columns, the header {width}")
    step_text, value_text = row[-2], row[-1]
    if not step_text.isascii() or not step_text.isdigit() or int(step_text) > limits.MAX_INT:
        raise _bad(label, None, f"line {number}: step {step_text[:40]!r} is not a whole number")
    if not _NUMBER.fullmatch(value_text):
        raise _bad(label, None, f"line {number}: {value_text[:40]!r} is not a number")
    if int(step_text) == step:  # a later row at the same step is a re-log: it wins, as in dvclive
        into.value, into.line = _number(value_text), number


def _number(text: str) -> float | int:
    """dvclive writes ints as `3` and floats as `3.0`: keep which it was."""
    return int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)


def _fragment(found: dict[str, Any], readings: dict[str, _Reading], label: str) -> dict[str, Any]:
    """`{"eval/acc": 0.8}` -> the card fragment, nested as dvclive's metrics.json nests."""
    document: dict[str, Any] = {}
    for name, value in sorted(found.items()):
        *groups, leaf = name.split("/")
        place = document
        for group in groups:
            place = place.setdefault(group, {})
            if not isinstance(place, dict):
                raise _conflict(label, name, readings)
        if isinstance(place.get(leaf), dict):
            raise _conflict(label, name, readings)
        place[leaf] = value
    document.pop("step", None)  # dvclive's own position, never the checkpoint's
    return fragments.metrics_fragment(document)


def _conflict(label: str, name: str, readings: dict[str, _Reading]) -> UsageError:
    clash = next(other for other in readings if other != name and (
        other.startswith(f"{name}/") or name.startswith(f"{other}/")))  # fmt: skip
    return UsageError(
        f"{label}: {name!r} and {clash!r} are both a metric and a group of metrics",
        hint="rename one of them in the training script",
    )


def _covered(files: Iterable[Path], step: int) -> str:
    """The steps the (already validated) files hold, for the message that none is the one."""
    steps: list[int] = []
    for file in files:
        with file.open("rb") as handle:
            handle.readline()
            for block in _blocks(handle):
                steps += (int(found) for found in _STEP_COLUMN.findall(block))
    if not steps:
        return "its metric files hold no rows"
    before = [found for found in steps if found < step]
    nearest = f"; the last before {step} is {max(before)}" if before else ""
    return f"its rows cover steps {min(steps)} to {max(steps)}{nearest}"


def _bad(label: str, file: Path | None, problem: str, hint: str = "") -> UsageError:
    where = f"{label}: {file}: " if file is not None else f"{label}: "
    return UsageError(
        f"{where}{problem}", hint=hint or "pass the dvclive output folder as dvclive wrote it"
    )
