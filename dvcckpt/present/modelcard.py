"""`dvcckpt card`: a model card (README) from a checkpoint card.

Follows the audit tip "state hypothesis, data version, code commit, gates
passed and known trade-offs", with the front matter the Hugging Face Hub reads:
`base_model` from a `finetuned_from` parent, `library_name`, `pipeline_tag` from
the task, `license`, `datasets`, and `model-index` holding the metrics (throughput
figures are not metrics). A card's `x-hf` section (`license`, `library_name`,
`pipeline_tag`, `base_model`, `datasets`, `language`) says what the card cannot.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

from dvcckpt.adapters import yamldoc
from dvcckpt.core import resources
from dvcckpt.core.fields import leaves
from dvcckpt.core.fields import number as metric_number
from dvcckpt.present.text import number, table


def render(card: Mapping[str, Any]) -> str:
    meta = card.get("checkpoint", {})
    code, data, run = card.get("code") or {}, card.get("data") or {}, card.get("run") or {}
    promotions = [d for d in card.get("decisions") or [] if d.get("verdict") == "promoted"]
    last = promotions[-1] if promotions else None
    env = card.get("env") or {}
    fill = {
        "front_matter": yamldoc.dump(_front_matter(card)).rstrip(),
        "name": card["name"],
        "summary": card.get("notes")
        or f"Checkpoint of `{card['model']}` at step {meta.get('step', '?')}.",
        "hypothesis": run.get("hypothesis") or "not recorded",
        "decision": _decision(last),
        "gates": _gates(last),
        "model": card["model"],
        "path": meta.get("path"),
        "sha256": meta.get("sha256"),
        "repo": code.get("repo") or "this repository",
        "commit": code.get("commit") or "unknown",
        "dataset": " ".join(str(x) for x in (data.get("dataset"), data.get("version")) if x)
        or "not recorded",
        "seed": (card.get("seeds") or {}).get("seed", "not recorded"),
        "environment": ", ".join(
            f"{k} {v}"
            for k, v in {"python": env.get("python"), **(env.get("libraries") or {})}.items()
            if v
        )
        or "not recorded",
        "metrics": _metrics_table(card.get("metrics") or {}),
        "tradeoffs": _tradeoffs(card, last),
    }
    template = resources.template_path("model_card.md").read_text(encoding="utf-8")
    # The Hub (and POSIX tools) expect a text file to end with one newline.
    return string.Template(template).safe_substitute(fill).rstrip("\n") + "\n"


def _front_matter(card: Mapping[str, Any]) -> dict[str, Any]:
    hub = _hub_section(card)
    run, data = card.get("run") or {}, card.get("data") or {}
    pipeline = hub.get("pipeline_tag") or pipeline_tag(run.get("task"))
    front: dict[str, Any] = {
        "base_model": hub.get("base_model") or _base_model(card.get("parents") or []),
        "library_name": hub.get("library_name") or library_name(card),
        "pipeline_tag": pipeline,
        "license": hub.get("license"),
        "language": hub.get("language"),
        "datasets": hub.get("datasets")
        or ([str(data["dataset"])] if data.get("dataset") else None),
        "tags": ["dvcckpt", *(card.get("tags") or [])],
    }
    front = {key: value for key, value in front.items() if value}
    # The Hub's task type: the pipeline tag when the task maps to one, else the card's own.
    results = _results(card, pipeline or run.get("task") or "other")
    if results:
        front["model-index"] = [{"name": card["name"], "results": results}]
    return front


def _results(card: Mapping[str, Any], task: str) -> list[dict[str, Any]]:
    dataset = (card.get("data") or {}).get("dataset") or "unknown"
    results = []
    for split, metrics in (card.get("metrics") or {}).items():
        values = [
            {"type": name, "value": value, "name": f"{split} {name}"}
            for name, value in _flat(metrics)
            if value is not None
        ]
        if values:
            results.append(
                {
                    "task": {"type": task},
                    "dataset": {"name": dataset, "type": dataset, "split": split},
                    "metrics": values,
                }
            )
    return results


# The Hub's own pipeline tags, and the names cards commonly give their tasks.
_PIPELINES = {
    "text-classification": ("sentiment", "classification", "text_classification", "nli", "intent",
                            "sequence-classification", "sequence_classification"),
    "token-classification": ("ner", "pos", "chunking", "token_classification", "tagging"),
    "question-answering": ("qa", "question_answering", "extractive-qa"),
    "text-generation": ("lm", "causal-lm", "causal_lm", "language-modeling", "language_modeling",
                        "generation", "chat", "text_generation"),
    "fill-mask": ("mlm", "masked-lm", "masked_lm", "fill_mask"),
    "summarization": ("summarisation",),
    "translation": ("mt", "machine-translation"),
    "text2text-generation": ("seq2seq", "text2text"),
    "image-classification": ("image_classification",),
    "object-detection": ("detection", "object_detection"),
    "automatic-speech-recognition": ("asr", "speech-recognition", "speech_recognition"),
    "feature-extraction": ("embedding", "embeddings", "sentence-embedding"),
}  # fmt: skip
_PIPELINE_OF = {alias: tag for tag, aliases in _PIPELINES.items() for alias in (tag, *aliases)}


def pipeline_tag(task: Any) -> str | None:
    """The Hub pipeline tag a card's task names (`sentiment` is text-classification)."""
    return _PIPELINE_OF.get(task.strip().lower()) if isinstance(task, str) else None


# The weight files `save_pretrained` writes (sharded ones carry -00001-of-00003).
_HF_WEIGHTS = re.compile(
    r"(model|pytorch_model|tf_model|flax_model|adapter_model)(-\d{5}-of-\d{5})?"
    r"\.(safetensors|bin|h5|msgpack)"
)


def meta_files(card: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The card's per-file serialization entries (a directory checkpoint's data files)."""
    files = (card.get("checkpoint") or {}).get("serialization_files") or []
    return [entry for entry in files if isinstance(entry, Mapping)]


def library_name(card: Mapping[str, Any]) -> str | None:
    """`transformers` for a save_pretrained folder (`peft` for an adapter), else unknown."""
    if (card.get("checkpoint") or {}).get("format") != "directory":
        return None
    names = [str(entry.get("path", "")).rsplit("/", 1)[-1] for entry in meta_files(card)]
    kinds = {m.group(1) for name in names if (m := _HF_WEIGHTS.fullmatch(name))}
    if "adapter_model" in kinds:
        return "peft"
    return "transformers" if kinds else None


def _base_model(parents: list[Any]) -> str | list[str] | None:
    """The models this one was fine-tuned from: a Hub id recorded as `x-hf`, else the name."""
    found = []
    for parent in parents:
        if isinstance(parent, Mapping) and parent.get("relation") == "finetuned_from":
            hub = parent.get("x-hf")
            hub_id = hub.get("id") if isinstance(hub, Mapping) else hub
            found.append(str(hub_id if isinstance(hub_id, str) and hub_id else parent["name"]))
    return found[0] if len(found) == 1 else (found or None)


_HUB_KEYS = ("license", "library_name", "pipeline_tag", "base_model", "datasets", "language")


def _hub_section(card: Mapping[str, Any]) -> dict[str, Any]:
    """What the card's `x-hf` section says for the Hub (strings or lists of strings only)."""
    hub = card.get("x-hf")
    if not isinstance(hub, Mapping):
        return {}
    return {key: hub[key] for key in _HUB_KEYS if _text_or_texts(hub.get(key))}


def _text_or_texts(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(isinstance(item, str) and item.strip() for item in value)
    return isinstance(value, str) and bool(value.strip())


# Throughput and bookkeeping figures frameworks log beside metrics (HF's eval_runtime,
# eval_samples_per_second, total_flos; the epoch): they describe the run, not the model.
_NOT_METRICS = re.compile(r"(?:^|[._])(?:runtime|total_flos|flos|epoch|step)$|per_second$")


def _flat(metrics: Mapping[str, Any]) -> list[tuple[str, float | None]]:
    return [
        (name, metric_number(value))
        for name, value in leaves(metrics)
        if value != {} and not _NOT_METRICS.search(name)
    ]


def _metrics_table(metrics: Mapping[str, Any]) -> str:
    rows = [
        [split, name, number(value)] for split, m in metrics.items() for name, value in _flat(m)
    ]
    return table(["split", "metric", "value"], rows, "md") if rows else "_none recorded_"


def _decision(last: Mapping[str, Any] | None) -> str:
    if last is None:
        return "not promoted"
    who = (last.get("by") or {}).get("name") or "?"
    return (
        f"promoted to {last.get('stage')} by {who} at {last.get('at')}: {last.get('rationale', '')}"
    )


def _gates(last: Mapping[str, Any] | None) -> str:
    if last is None or not last.get("gates"):
        return "none evaluated"
    passed = [g["rule"] for g in last["gates"] if g.get("verdict") == "pass"]
    failed = [g["rule"] for g in last["gates"] if g.get("verdict") != "pass"]
    text = ", ".join(passed) or "none"
    return text + (f" (overridden: {', '.join(failed)})" if failed else "")


def _tradeoffs(card: Mapping[str, Any], last: Mapping[str, Any] | None) -> str:
    notes = []
    if last and last.get("override"):
        notes.append(f"- Promoted with failing gates overridden: {last.get('reason')}")
    resources_ = card.get("resources") or {}
    if "latency_ms_p95" in resources_:
        notes.append(f"- p95 latency {number(resources_['latency_ms_p95'])} ms")
    unsafe = [str(entry.get("path")) for entry in meta_files(card) if entry.get("unsafe")]
    if unsafe:
        notes.append(f"- Holds pickled files ({', '.join(unsafe)}): loading them can run code, "
                     "so load them only from a trusted source")  # fmt: skip
    if card.get("notes"):
        notes.append(f"- {card['notes']}")
    return "\n".join(notes) or "None recorded."
