"""Final models (run records without a step) and the `seed` parameter, on real repositories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dvcckpt.cards import card
from dvcckpt.core import finalname, naming
from tests.conftest import git, write_checkpoint

RECORD = Path(__file__).parent / "data/seed003_run.json"
RUN_NAME = "demo_t_m_seed7_2026-01-05"  # follows the default run pattern, as the hook wants


def load(path: Path) -> dict:
    return card.read(path).data


def add_seed003(repo: Path, cli) -> dict:
    write_checkpoint(repo / "models/sentiment/weights.pt")
    result = cli("add", "models/sentiment/weights.pt", "--from", str(RECORD))
    assert result.code == 0, result.err
    return load(repo / "models/sentiment/weights.pt.ckpt.yaml")


def test_seed003_record_as_is_registers_a_final_model(repo: Path, cli) -> None:
    data = add_seed003(repo, cli)
    source = json.loads(RECORD.read_text())
    # The record has no run_id: the id is derived from its run name, and recorded.
    run_id = naming.derived_run_id(source["run_name"])
    assert data["name"] == f"sentiment-train-full-{run_id}-final"
    assert "step" not in data["checkpoint"]
    assert data["run"] == {"name": source["run_name"], "task": "text_classification", "id": run_id}
    assert data["params"] == source["params"]
    assert data["seeds"] == {"seed": 42}
    assert data["metrics"] == {"dev": source["metrics"]["dev"]}
    assert data["resources"] == {"latency_ms_p95": 110}
    assert data["code"] == {"repo": "nlp-project", "commit": "abc1234"}
    assert data["env"]["libraries"] == source["env"]["libs"]
    assert data["tags"] == source["tags"] and data["notes"] == source["notes"]
    assert finalname.parse(naming.DEFAULT_CHECKPOINT_PATTERN, data["name"]) == {
        "model": "sentiment",
        "phase": "train",
        "kind": "full",
        "run_id": run_id,
    }


def test_seed003_final_model_commits_through_the_hook(repo: Path, cli) -> None:
    add_seed003(repo, cli)
    checked = cli("check")
    assert checked.code == 0, checked.out + checked.err
    git(repo, "commit", "-q", "-m", "final model")
    assert cli("check", "--all").code == 0


def test_a_checkpoint_without_step_and_without_run_still_needs_a_step(repo: Path, cli) -> None:
    write_checkpoint(repo / "m/a.pt")
    result = cli("add", "m/a.pt")
    assert result.code == 2
    assert "needs step" in result.err and "--run NAME" in result.err
    assert not (repo / "m/a.pt.ckpt.yaml").exists()


@pytest.mark.parametrize(
    ("pattern", "final"),
    [
        (naming.DEFAULT_CHECKPOINT_PATTERN, "{model}-{phase}-{kind}-{run_id}-final"),
        # Final models differ per run: a pattern without {run_id} gets one.
        ("{model}-{phase}-{kind}-step{step:06d}", "{model}-{phase}-{kind}-{run_id}-final"),
        ("{model}-{step}", "{model}-{run_id}-final"),
        ("step{step:06d}-{model}", "{run_id}-final-{model}"),
        ("{model}_s{seed}_{kind}.it{step}.x", "{model}_s{seed}_{kind}.{run_id}-final.x"),
        ("{model}-{run_id}-s{step}", "{model}-{run_id}-final"),
        ("{model}-{phase}", None),
    ],
)
def test_final_pattern_replaces_the_step_word(pattern: str, final: str | None) -> None:
    assert finalname.final_pattern(pattern) == final
    if final is not None:
        values = {"model": "bert", "seed": 3, "kind": "full", "phase": "ft", "run_id": "r1"}
        name = naming.render(final, values)
        assert name is not None and finalname.parse(pattern, name) is not None


def seeds_of(repo: Path, cli, name: str, *args: str) -> dict:
    write_checkpoint(repo / f"m/{name}.pt")
    result = cli("add", f"m/{name}.pt", "--step", "1", *args)
    assert result.code == 0, result.err
    return load(repo / f"m/{name}.pt.ckpt.yaml").get("seeds", {})


def test_a_seed_parameter_fills_seeds_the_same_way_in_every_spelling(repo: Path, cli) -> None:
    (repo / "params.json").write_text(json.dumps({"seed": 7, "lr": 0.1}))
    (repo / "run.json").write_text(json.dumps({"run_name": RUN_NAME, "params": {"seed": 7}}))
    spellings = {
        "option": ("-p", "seed=7"),
        "file": ("--params", "params.json"),
        "record": ("--from", "run.json"),
    }
    found = {key: seeds_of(repo, cli, key, *args) for key, args in spellings.items()}
    assert found == {key: {"seed": 7} for key in spellings}


def test_an_explicit_seed_wins_and_a_later_param_updates_the_record_seed(repo: Path, cli) -> None:
    (repo / "run.json").write_text(json.dumps({"run_name": RUN_NAME, "params": {"seed": 7}}))
    assert seeds_of(repo, cli, "explicit", "-p", "seed=7", "--seed", "3") == {"seed": 3}
    assert seeds_of(repo, cli, "both", "--from", "run.json", "-p", "seed=9") == {"seed": 9}
    assert seeds_of(repo, cli, "flag", "-p", "seed=true") == {}


def test_save_api_applies_the_same_seed_and_final_model_rules(repo: Path) -> None:
    import dvcckpt

    write_checkpoint(repo / "m/a.pt")
    saved = dvcckpt.save("m/a.pt", model="m", step=2, params={"seed": 5})
    assert saved.data["seeds"] == {"seed": 5}
    write_checkpoint(repo / "m/b.pt", seed=2)
    explicit = dvcckpt.save("m/b.pt", model="m", step=3, params={"seed": 5}, seeds=8)
    assert explicit.data["seeds"] == {"seed": 8}
    write_checkpoint(repo / "m/final.pt", seed=3)
    final = dvcckpt.save("m/final.pt", model="m", run="demo_t_m_run1_2026-01-05")
    assert final.data["name"] == f"m-train-full-{final.data['run']['id']}-final"
    assert "step" not in final.data["checkpoint"]
