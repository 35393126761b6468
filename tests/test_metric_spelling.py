"""`-m SPLIT.METRIC=VALUE:LOW:HIGH[:METHOD]` records a metric with its confidence interval.

`0.86[0.84,0.88]` (the way tables print an estimate) is the same value; a spelling that
is no interval (low above high, the value outside, not numbers) is refused naming the
option and the metric, and nothing is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dvcckpt.core import fragments
from dvcckpt.errors import UsageError
from tests.conftest import git, write_checkpoint
from tests.corpus import assert_user_error, changed, snapshot

SPELLINGS = [
    ("0.86:0.84:0.88", {"value": 0.86, "ci": [0.84, 0.88]}),
    ("0.86:0.84:0.88:bootstrap", {"value": 0.86, "ci": [0.84, 0.88], "method": "bootstrap"}),
    ("0.86[0.84,0.88]", {"value": 0.86, "ci": [0.84, 0.88]}),
    ("0.86 [0.84, 0.88] t-test", {"value": 0.86, "ci": [0.84, 0.88], "method": "t-test"}),
    ("0.86 : 0.86 : 0.9", {"value": 0.86, "ci": [0.86, 0.9]}),  # a bound may equal the value
    ("-1.5:-2:-1", {"value": -1.5, "ci": [-2.0, -1.0]}),
]


@pytest.mark.parametrize(("text", "recorded"), SPELLINGS)
def test_each_spelling_records_one_estimate(text: str, recorded: Any) -> None:
    assert fragments.metric_assignments([f"test.f1={text}"]) == {"test": {"f1": recorded}}


def test_interval_metrics_nest_like_plain_ones() -> None:
    given = ["test.class_f1.neg=0.8:0.68:0.9", "test.class_f1.pos=0.88", "dev.f1=0.8"]
    assert fragments.metric_assignments(given) == {
        "test": {"class_f1": {"neg": {"value": 0.8, "ci": [0.68, 0.9]}, "pos": 0.88}},
        "dev": {"f1": 0.8},
    }


def test_metrics_relative_to_a_split_given_elsewhere() -> None:
    """The spelling `dvcckpt evaluate --split S -m METRIC=VALUE` reads, naming its option."""
    parsed = fragments.metric_assignments(["macro_f1=0.81:0.8:0.83"], option="-m", need_split=False)
    assert parsed == {"macro_f1": {"value": 0.81, "ci": [0.8, 0.83]}}
    with pytest.raises(UsageError, match=r"^-m macro_f1: malformed CI, low 0.9"):
        fragments.metric_assignments(["macro_f1=0.81:0.9:0.8"], option="-m", need_split=False)


BAD = [
    ("0.86:0.88:0.84", "malformed CI, low 0.88 is above high 0.84"),
    ("0.9:0.84:0.88", "malformed CI, value 0.9 is outside [0.84, 0.88]"),
    ("0.86[0.88,0.84]", "malformed CI, low 0.88 is above high 0.84"),
    ("0.86:low:0.88", "'low' is not a number"),
    ("0.86:nan:0.88", "nan is not a finite number"),
    ("0.86:0.84", "'0.86:0.84' is not a metric value"),
    ("0.86:0.84:0.88:boot strap:x", "is not a metric value"),
    ("0.86:0.84:0.88:", "'' is not a method name"),
    ("0.86:0.84:0.88:$(rm)", "'$(rm)' is not a method name"),
    ("0.86[0.84,]", "'' is not a number"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_a_spelling_that_is_no_interval_is_a_usage_error(text: str, message: str) -> None:
    with pytest.raises(UsageError) as raised:
        fragments.metric_assignments([f"test.f1={text}"])
    assert str(raised.value).startswith("--metric test.f1: "), raised.value
    assert message in str(raised.value)
    assert raised.value.hint


# -- add and show on a real repository -------------------------------------------------------


@pytest.fixture
def project(repo: Path) -> Path:
    (repo / "dvcckpt.yaml").write_text("version: 1\nproject: demo\nstages: [dev, production]\n")
    write_checkpoint(repo / "models/sentiment/step-100.pt")
    return repo


ADD = ("add", "models/sentiment/step-100.pt", "--seed", "42", "--data", "tweets=v1")


def test_add_records_a_ci_that_show_prints_and_the_card_keeps(project: Path, cli: Any) -> None:
    args = ["-m", "test.f1=0.86:0.84:0.88:bootstrap", "-m", "test.class_f1.neg=0.8[0.68,0.9]"]
    added = cli(*ADD, *args, "-m", "dev.f1=0.83")
    assert added.code == 0, added.err
    assert cli("check").code == 0  # the hook accepts what add staged
    git(project, "commit", "-qm", "a checkpoint with intervals")
    card_text = (project / "models/sentiment/step-100.pt.ckpt.yaml").read_text()
    name = json.loads(cli("show", "models/sentiment/step-100.pt", "--json").out)["name"]
    shown = json.loads(cli("show", name, "--json").out)["metrics"]
    assert shown["test"]["f1"] == {"value": 0.86, "ci": [0.84, 0.88], "method": "bootstrap"}
    assert shown["test"]["class_f1"]["neg"] == {"value": 0.8, "ci": [0.68, 0.9]}
    assert shown["dev"]["f1"] == 0.83
    table = cli("show", name)
    assert table.code == 0 and "0.86 [0.84, 0.88]" in table.out, table.out
    assert "0.84:0.88" not in card_text  # the spelling is input only; the card holds the estimate


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0.86:0.88:0.84", "low 0.88 is above high 0.84"),
        ("0.95:0.84:0.88", "value 0.95 is outside [0.84, 0.88]"),
        ("0.86:a:b", "'a' is not a number"),
    ],
)
def test_add_refuses_an_interval_that_is_none_and_writes_nothing(
    project: Path, cli: Any, value: str, message: str
) -> None:
    before = snapshot(project)
    refused = cli(*ADD, "-m", f"test.f1={value}")
    assert_user_error(refused.code, refused.err, names=("--metric", "test.f1", message))
    assert refused.code == 2
    assert changed(before, snapshot(project)) == []
