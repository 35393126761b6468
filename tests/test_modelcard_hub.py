"""`dvcckpt card` as the Hugging Face Hub reads it, checked with huggingface_hub.ModelCard."""

from __future__ import annotations

from pathlib import Path

import pytest

import dvcckpt
from dvcckpt.present import modelcard
from tests.conftest import git, write_checkpoint

torch = pytest.importorskip("torch", reason="torch comes with the integrations extra")
transformers = pytest.importorskip("transformers")
hub = pytest.importorskip("huggingface_hub")


def tiny_bert_folder(folder: Path) -> Path:
    """A save_pretrained folder of a one-layer BERT, with the optimizer state Trainer adds."""
    config = transformers.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=37, num_labels=2)  # fmt: skip
    model = transformers.BertForSequenceClassification(config)
    model.save_pretrained(folder)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    torch.save(optimizer.state_dict(), folder / "optimizer.pt")
    return folder


EVAL = {"accuracy": 0.81, "loss": 0.42, "runtime": 1.25, "samples_per_second": 320.0,
        "steps_per_second": 10.0, "epoch": 2.0}  # fmt: skip


def fine_tuned(repo: Path, hub_id: str | None) -> tuple[str, str]:
    """A base checkpoint and a fine-tuned HF folder; returns (base name, fine-tuned name)."""
    write_checkpoint(repo / "models/base/step-100.pt")
    base = dvcckpt.save("models/base/step-100.pt", model="base", step=100,
                        metrics={"dev": {"loss": 2.0}}).name  # fmt: skip
    parent = {"name": base, **({"x-hf": hub_id} if hub_id else {})}
    tiny_bert_folder(repo / "models/sentiment/checkpoint-40")
    saved = dvcckpt.save(
        "models/sentiment/checkpoint-40",
        model="sentiment",
        step=40,
        run={"task": "sentiment"},
        data={"dataset": "tweets", "version": "v1"},
        metrics={"eval": EVAL, "train": {"loss": 0.3, "total_flos": 1.5e12, "train_runtime": 9.0}},
        parents=[{"relation": "finetuned_from", **parent}],
        extra={"x-hf": {"license": "apache-2.0", "language": ["en"]}},
    )
    git(repo, "add", "--all")
    git(repo, "commit", "-qm", "two checkpoints")
    return base, saved.name


def rendered(cli, name: str, out: Path) -> tuple[str, object]:
    result = cli("card", name, "--output", str(out))
    assert result.code == 0, result.err
    return out.read_text(encoding="utf-8"), hub.ModelCard.load(out)


def test_fine_tuned_hf_folder_has_the_front_matter_the_hub_reads(
    repo: Path, cli, tmp_path: Path
) -> None:
    _, name = fine_tuned(repo, "google-bert/bert-base-uncased")
    text, card = rendered(cli, name, tmp_path / "README.md")
    assert text.endswith("_\n") and not text.endswith("\n\n")
    data = card.data
    assert data.base_model == "google-bert/bert-base-uncased"
    assert data.library_name == "transformers" and data.pipeline_tag == "text-classification"
    assert data.license == "apache-2.0" and data.datasets == ["tweets"]
    assert data.language == ["en"] and "dvcckpt" in data.tags
    assert data.model_name == name
    metrics = {(r.dataset_split, r.metric_type): r.metric_value for r in data.eval_results}
    assert metrics == {("eval", "accuracy"): 0.81, ("eval", "loss"): 0.42, ("train", "loss"): 0.3}
    assert {r.task_type for r in data.eval_results} == {"text-classification"}
    assert "samples_per_second" not in text and "total_flos" not in text
    assert "optimizer.pt" in text and "trusted source" in text  # the pickle is flagged
    # What the Hub would store round-trips: the front matter survives a re-serialisation.
    again = hub.ModelCard(str(card))
    assert again.data.to_dict()["base_model"] == "google-bert/bert-base-uncased"


def test_base_model_is_the_parent_name_without_a_hub_id(repo: Path, cli, tmp_path: Path) -> None:
    base, name = fine_tuned(repo, None)
    _, card = rendered(cli, name, tmp_path / "README.md")
    assert card.data.base_model == base


def test_a_plain_file_card_claims_no_library_and_keeps_an_unknown_task() -> None:
    document = {
        "name": "m-step1", "model": "m",
        "checkpoint": {"path": "m.pt", "format": "file", "step": 1, "sha256": "0" * 64},
        "run": {"task": "Protein folding"},
        "metrics": {"dev": {"rmsd": 1.5, "eval_runtime": 3.0}},
    }  # fmt: skip
    card = hub.ModelCard(modelcard.render(document))
    assert card.data.library_name is None and card.data.pipeline_tag is None
    assert card.data.base_model is None and card.data.license is None
    assert [(r.task_type, r.metric_type) for r in card.data.eval_results] == [
        ("Protein folding", "rmsd")
    ]
    del document["run"]
    assert {r.task_type for r in hub.ModelCard(modelcard.render(document)).data.eval_results} == {
        "other"
    }


@pytest.mark.parametrize(
    ("task", "tag"),
    [("sentiment", "text-classification"), ("NER", "token-classification"),
     ("text-generation", "text-generation"), ("qa", "question-answering"), ("mystery", None)],
)  # fmt: skip
def test_tasks_map_to_hub_pipeline_tags(task: str, tag: str | None) -> None:
    assert modelcard.pipeline_tag(task) == tag
