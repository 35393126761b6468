"""dvcckpt: a Git-native checkpoint registry built on DVC.

    import dvcckpt
    saved = dvcckpt.save("models/sentiment/step-000300.pt", model="sentiment", step=300,
                         metrics={"dev": {"macro_f1": 0.84}}, params={"lr": 1e-4}, seeds=42)
    card = dvcckpt.load_card(saved.name)  # e.g. sentiment-train-full-3f9a1c-step000300
    dvcckpt.evaluate(saved.name, split="test",
                     metrics={"macro_f1": 0.81})  # staged: commit it

Attributes are imported lazily so `dvcckpt --help` and the hook start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "Card",
    "Catalog",
    "__version__",
    "evaluate",
    "load",
    "load_card",
    "open_safetensors",
    "save",
    "wait",
]

if TYPE_CHECKING:
    from dvcckpt.api import Catalog, evaluate, load, load_card, open_safetensors, save, wait
    from dvcckpt.cards.card import Card


def __getattr__(name: str) -> Any:
    if name in __all__ and name not in ("Card", "__version__"):  # the Python face, `api`
        from dvcckpt import api

        return getattr(api, name)
    if name == "Card":
        from dvcckpt.cards.card import Card

        return Card
    raise AttributeError(f"module 'dvcckpt' has no attribute {name!r}")
