"""Pure functions: naming patterns, credential stripping, command redaction, input parsing."""

from __future__ import annotations

import pytest

from dvcckpt.core import fragments, naming, redaction
from dvcckpt.errors import ConfigError


def test_default_run_pattern_renders_and_parses_the_practitioners_example() -> None:
    values = {
        "project": "sentiment",
        "task": "tweets",
        "model": "distilbert",
        "keyparam": naming.keyparam_token("lr", {"lr": 1e-4}),
        "date": "2026-01-05",
    }
    name = naming.render(naming.DEFAULT_RUN_PATTERN, values)
    assert name == "sentiment_tweets_distilbert_lr1e-4_2026-01-05"
    assert naming.parse(naming.DEFAULT_RUN_PATTERN, name) == values


def test_checkpoint_names_round_trip_including_hyphenated_models() -> None:
    fields = {
        "model": "xlm-roberta",
        "phase": "distill",
        "kind": "optimizer",
        "run_id": "a1b2c3",
        "step": 42,
    }
    name = naming.render(naming.DEFAULT_CHECKPOINT_PATTERN, fields)
    assert name == "xlm-roberta-distill-optimizer-a1b2c3-step000042"
    assert naming.parse(naming.DEFAULT_CHECKPOINT_PATTERN, name) == fields
    assert naming.parse(naming.DEFAULT_CHECKPOINT_PATTERN, "random-name") is None
    assert naming.render(naming.DEFAULT_CHECKPOINT_PATTERN, {**fields, "step": None}) is None


def test_unknown_placeholder_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown placeholder"):
        naming.placeholders("{model}-{color}")


@pytest.mark.parametrize(
    ("value", "text"), [(1e-4, "1e-4"), (2.5e-5, "2.5e-5"), (0.5, "0.5"), (32, "32"), (3e6, "3e6")]
)
def test_compact_numbers_for_run_names(value: float, text: str) -> None:
    assert naming.compact_number(value) == text


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://ada:ghp_tok@github.com/org/r.git", "https://github.com/org/r.git"),
        (
            "https://oauth2:tok@gitlab.example.com:8443/r.git?x=1",
            "https://gitlab.example.com:8443/r.git",
        ),
        ("git@github.com:org/r.git", "git@github.com:org/r.git"),
        (None, None),
    ],
)
def test_strip_credentials(url: str | None, clean: str | None) -> None:
    assert redaction.strip_credentials(url) == clean


def test_redact_command_hides_secret_looking_values() -> None:
    argv = [
        "train.py",
        "--lr",
        "1e-4",
        "--wandb-api-key",
        "k123",
        "--password=p",
        "HF_TOKEN=t",
        "s3://AKIA:sec@bucket/x",
    ]
    assert redaction.redact_command(argv) == (
        "train.py --lr 1e-4 --wandb-api-key '***' '--password=***' 'HF_TOKEN=***' 's3://***@bucket/x'"
    )


def test_scalars_and_nested_assignments() -> None:
    assert fragments.assignments(
        ["lr=1e-4", "opt.name=adamw", "amp=true", "n=3", "x=null"], "-p"
    ) == {
        "lr": 1e-4,
        "opt": {"name": "adamw"},
        "amp": True,
        "n": 3,
        "x": None,
    }


def test_dvclive_style_metrics_split_into_sections() -> None:
    fragment = fragments.metrics_fragment(
        {"step": 9, "eval": {"f1": 0.8}, "accuracy": 0.9, "latency_ms_p95": 110}
    )
    assert fragment == {
        "metrics": {"eval": {"f1": 0.8}, "overall": {"accuracy": 0.9}},
        "resources": {"latency_ms_p95": 110},
        "checkpoint": {"step": 9},
    }


def test_merge_lets_explicit_values_win_and_unions_tags() -> None:
    base = {"params": {"lr": 1, "bs": 2}, "tags": ["a"], "notes": "x"}
    assert fragments.merge(base, {"params": {"lr": 3}, "tags": ["b", "a"]}) == {
        "params": {"lr": 3, "bs": 2},
        "tags": ["a", "b"],
        "notes": "x",
    }
