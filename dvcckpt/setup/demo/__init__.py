"""Tiny, seeded text-sentiment classifier used by ``dvcckpt quickstart``.

The quickstart needs *something* to checkpoint that is real enough to have
weights, metrics and latency, yet trains in well under a second with nothing
but numpy. This module provides exactly that: a bag-of-words multinomial
logistic regression trained with minibatch SGD on a small bundled tweet
dataset, fully determined by its seed so repeated runs produce byte-identical
checkpoints.
"""

from __future__ import annotations

import csv
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "LABELS",
    "EpochResult",
    "data_files",
    "hyperparameters",
    "save_weights",
    "train",
]

LABELS: tuple[str, ...] = ("neg", "neu", "pos")

MODEL_NAME = "bow-logreg"
DEFAULT_LR = 0.5
DEFAULT_EPOCHS = 4
DEFAULT_SEED = 42
BATCH_SIZE = 16
MAX_FEATURES = 1000
L2 = 1e-4

_SPLITS: tuple[str, ...] = ("train", "dev", "test")
_TOKEN_RE = re.compile(r"[a-z']+")

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class EpochResult:
    """Everything the quickstart records for one epoch's checkpoint."""

    epoch: int
    step: int
    weights: dict[str, NDArray[np.generic]]
    metrics: dict[str, dict[str, object]]
    latency_ms_p50: float
    latency_ms_p95: float


@dataclass(frozen=True)
class _Split:
    """A vectorised split, so features are computed once, not per epoch."""

    x: FloatArray
    y: IntArray


def data_files() -> dict[str, Path]:
    """Locate the bundled CSVs relative to this file so it works when installed."""
    here = Path(__file__).parent
    return {split: here / f"tweets_{split}.csv" for split in _SPLITS}


def hyperparameters() -> dict[str, object]:
    """Report the defaults so the model card matches what ``train()`` uses."""
    return {
        "model": MODEL_NAME,
        "lr": DEFAULT_LR,
        "batch_size": BATCH_SIZE,
        "epochs": DEFAULT_EPOCHS,
        "max_features": MAX_FEATURES,
        "l2": L2,
        "seed": DEFAULT_SEED,
    }


def _tokenize(text: str) -> list[str]:
    """Lowercase word tokens; punctuation, @ and # are dropped as noise."""
    return _TOKEN_RE.findall(text.lower())


def _read_csv(path: Path) -> tuple[list[str], list[int]]:
    """Load ``text,label`` rows; labels become indices into ``LABELS``."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [r["text"] for r in rows], [LABELS.index(r["label"]) for r in rows]


def _build_vocab(texts: Sequence[str], max_features: int) -> list[str]:
    """Most document-frequent tokens, ties broken alphabetically for determinism."""
    df: Counter[str] = Counter()
    for text in texts:
        df.update(set(_tokenize(text)))
    ranked = sorted(df.items(), key=lambda kv: (-kv[1], kv[0]))
    return sorted(tok for tok, _ in ranked[:max_features])


def _vectorize(texts: Sequence[str], index: dict[str, int]) -> FloatArray:
    """Binary presence features: repeated words in a tweet rarely add signal."""
    x = np.zeros((len(texts), len(index)), dtype=np.float64)
    for row, text in enumerate(texts):
        x[row, [index[t] for t in _tokenize(text) if t in index]] = 1.0
    return x


def _softmax(logits: FloatArray) -> FloatArray:
    """Numerically stable softmax over classes."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    result: FloatArray = z / z.sum(axis=1, keepdims=True)
    return result


def _sgd_step(w: FloatArray, b: FloatArray, x: FloatArray, y: IntArray, lr: float) -> None:
    """One in-place cross-entropy + L2 gradient step on a minibatch."""
    probs = _softmax(x @ w + b)
    probs[np.arange(len(y)), y] -= 1.0
    probs /= len(y)
    w -= lr * (x.T @ probs + L2 * w)
    b -= lr * probs.sum(axis=0)


def _class_f1(y: IntArray, pred: IntArray) -> dict[str, float]:
    """Unrounded per-class F1 (0.0 if a class is neither predicted nor present)."""
    scores: dict[str, float] = {}
    for k, name in enumerate(LABELS):
        tp = int(np.sum((pred == k) & (y == k)))
        denom = int(np.sum(pred == k)) + int(np.sum(y == k))
        scores[name] = 2.0 * tp / denom if denom else 0.0
    return scores


def _evaluate(w: FloatArray, b: FloatArray, split: _Split) -> dict[str, object]:
    """Plain-float, rounded metrics so they serialise cleanly onto the card."""
    probs = _softmax(split.x @ w + b)
    pred = probs.argmax(axis=1)
    picked = probs[np.arange(len(split.y)), split.y]
    loss = float(-np.mean(np.log(np.maximum(picked, 1e-12))))
    class_f1 = _class_f1(split.y, pred)
    return {
        "accuracy": round(float(np.mean(pred == split.y)), 4),
        "macro_f1": round(sum(class_f1.values()) / len(class_f1), 4),
        "loss": round(loss, 4),
        "class_f1": {name: round(f1, 4) for name, f1 in class_f1.items()},
    }


def _latency_ms(
    w: FloatArray, b: FloatArray, texts: Sequence[str], index: dict[str, int]
) -> tuple[float, float]:
    """Time end-to-end single-example prediction, as a serving call would see it."""
    samples = []
    for text in texts:
        start = time.perf_counter()
        int(np.argmax(_vectorize([text], index) @ w + b))
        samples.append((time.perf_counter() - start) * 1000.0)
    p50, p95 = np.percentile(np.asarray(samples), [50, 95])
    return round(float(p50), 4), round(float(p95), 4)


def train(
    epochs: int = DEFAULT_EPOCHS, seed: int = DEFAULT_SEED, lr: float = DEFAULT_LR
) -> Iterator[EpochResult]:
    """Train the demo model, yielding a checkpointable result after each epoch.

    Weights start at zero and the only randomness is the per-epoch shuffle
    drawn from ``seed``, so equal arguments give identical metrics and weights.
    """
    raw = {name: _read_csv(path) for name, path in data_files().items()}
    vocab = _build_vocab(raw["train"][0], MAX_FEATURES)
    index = {tok: i for i, tok in enumerate(vocab)}
    splits = {
        name: _Split(_vectorize(texts, index), np.asarray(labels, dtype=np.int64))
        for name, (texts, labels) in raw.items()
    }
    rng = np.random.default_rng(seed)
    w = np.zeros((len(vocab), len(LABELS)), dtype=np.float64)
    b = np.zeros(len(LABELS), dtype=np.float64)
    train_split, step = splits["train"], 0
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(train_split.y))
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            _sgd_step(w, b, train_split.x[batch], train_split.y[batch], lr)
            step += 1
        p50, p95 = _latency_ms(w, b, raw["dev"][0], index)
        yield EpochResult(
            epoch=epoch,
            step=step,
            weights={"W": w.copy(), "b": b.copy(), "vocab": np.asarray(vocab)},
            metrics={name: _evaluate(w, b, s) for name, s in splits.items()},
            latency_ms_p50=p50,
            latency_ms_p95=p95,
        )


def save_weights(path: Path, weights: dict[str, NDArray[np.generic]]) -> None:
    """Write an uncompressed ``.npz`` so identical weights give identical bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        # numpy's stub types **kwds against the `allow_pickle: bool` keyword too.
        np.savez(fh, **weights)  # type: ignore[arg-type]
