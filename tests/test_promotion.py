"""Quality gates, promotions reviewed as pull requests, stages, report, model card, GTO/DVC interop."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dvcckpt.cards import card
from dvcckpt.core import gates, naming
from dvcckpt.errors import ConfigError
from dvcckpt.project import load_gates
from tests.conftest import git, write_checkpoint

SEED_GATES = """\
version: 1
gates:
  - stage: production
    rules:
      - {name: test-macro-f1, metric: metrics.test.macro_f1, op: ">=", value: 0.85}
      - {name: class-floor, each: metrics.test.class_f1, op: ">=", value: 0.70}
      - {name: latency-p95, metric: resources.latency_ms_p95, op: "<=", value: 120}
  - stage: staging
    rules:
      - {name: dev-macro-f1, metric: metrics.dev.macro_f1, op: ">=", value: 0.80}
      - {name: no-regression, regression: metrics.dev.macro_f1, margin: 0.01}
  - model: ner
    stage: production
    rules:
      - {name: org-floor, metric: metrics.test.entity_f1.ORG, op: ">", value: 0.80}
"""


# -- rule evaluation (seed 003's worked examples) -------------------------------------


def verdicts(
    card_data: dict[str, Any], rules: list[dict[str, Any]], holder: Any = None
) -> dict[str, str]:
    return {r.rule: r.verdict for r in gates.evaluate(card_data, rules, holder)}


def test_example_1_macro_f1_0_84_fails_the_0_85_gate() -> None:
    baseline = {
        "metrics": {
            "test": {"macro_f1": 0.84, "class_f1": {"neg": 0.83, "neu": 0.81, "pos": 0.88}}
        },
        "resources": {"latency_ms_p95": 110},
    }
    rules = gates.rules_for(yaml.safe_load(SEED_GATES), "sentiment", "production")
    assert verdicts(baseline, rules) == {
        "test-macro-f1": "fail",
        "class-floor": "pass",
        "latency-p95": "pass",
    }


def test_example_3_run_b_passes_the_org_floor_where_run_a_fails() -> None:
    rules = gates.rules_for(yaml.safe_load(SEED_GATES), "ner", "production")
    assert [r["name"] for r in rules] == [
        "test-macro-f1",
        "class-floor",
        "latency-p95",
        "org-floor",
    ]
    org = [r for r in rules if r["name"] == "org-floor"]
    run_a = {"metrics": {"test": {"micro_f1": 0.88, "entity_f1": {"ORG": 0.80}}}}
    run_b = {"metrics": {"test": {"micro_f1": 0.885, "entity_f1": {"ORG": 0.83}}}}
    assert verdicts(run_a, org) == {"org-floor": "fail"}
    assert verdicts(run_b, org) == {"org-floor": "pass"}


def test_missing_values_fail_as_missing_never_pass() -> None:
    rules = gates.rules_for(yaml.safe_load(SEED_GATES), "sentiment", "production")
    assert set(verdicts({"metrics": {}}, rules).values()) == {"missing"}


def test_confidence_interval_lower_bound_must_clear_the_threshold() -> None:
    rule = [{"name": "f1", "metric": "metrics.test.f1", "op": ">=", "value": 0.85}]
    wide = {"metrics": {"test": {"f1": {"value": 0.86, "ci": [0.84, 0.88], "method": "bootstrap"}}}}
    tight = {
        "metrics": {"test": {"f1": {"value": 0.87, "ci": [0.855, 0.885], "method": "bootstrap"}}}
    }
    result = gates.evaluate(wide, rule)[0]
    assert result.verdict == "fail" and result.actual == "0.86 (CI low 0.84)"
    assert verdicts(tight, rule) == {"f1": "pass"}


def test_robustness_regression_and_evidence_rules() -> None:
    rules = [
        {
            "name": "dialects",
            "subsets": "metrics.test_dialects",
            "metric": "macro_f1",
            "max_relative_drop": 0.05,
        },
        {"name": "vs-holder", "regression": "metrics.dev.f1", "margin": 0.01},
        {
            "name": "latency-vs-holder",
            "regression": "resources.latency_ms_p95",
            "higher_is_better": False,
        },
        {"name": "evidence", "require": ["seeds.seed", "data.splits"]},
        {"name": "confusion", "artifact": "confusion_matrix"},
    ]
    candidate = {
        "metrics": {
            "dev": {"f1": 0.795},
            "test_dialects": {"en-us": {"macro_f1": 0.86}, "en-in": {"macro_f1": 0.83}},
        },
        "resources": {"latency_ms_p95": 90},
        "seeds": {"seed": 1},
        "artifacts": [{"path": "reports/confusion_matrix.png"}],
    }
    holder = {"name": "old", "metrics": {"dev": {"f1": 0.80}}, "resources": {"latency_ms_p95": 100}}
    assert verdicts(candidate, rules, holder) == {
        "dialects": "pass",
        "vs-holder": "pass",
        "latency-vs-holder": "pass",
        "evidence": "missing",
        "confusion": "pass",
    }
    candidate["metrics"]["test_dialects"]["aae"] = {"macro_f1": 0.80}  # 7% below en-us
    holder["metrics"]["dev"]["f1"] = 0.83
    result = {r.rule: r for r in gates.evaluate(candidate, rules, holder)}
    assert result["dialects"].verdict == "fail" and result["dialects"].actual == "7.0% (aae)"
    assert result["vs-holder"].verdict == "fail"
    assert verdicts(candidate, rules[1:2], None) == {"vs-holder": "pass"}  # no holder yet


def test_gates_file_is_validated(tmp_path: Path) -> None:
    (tmp_path / "gates.yaml").write_text(
        "version: 1\ngates:\n  - stage: production\n    rules:\n      - {name: x, op: '>='}\n"
    )
    with pytest.raises(ConfigError, match=r"gates\.yaml"):
        load_gates(tmp_path)


# -- promotions in a real repository ---------------------------------------------------


@pytest.fixture
def registry(repo: Path, cli) -> Path:
    """Three checkpoints of `sentiment` committed on main, with gates and config."""
    (repo / "gates.yaml").write_text(SEED_GATES)
    (repo / "dvcckpt.yaml").write_text(
        "version: 1\nproject: demo\nstages: [dev, staging, production]\n"
        "promotion: {require_previous_stage: true}\n"
    )
    for step, dev, test in ((100, 0.78, 0.83), (200, 0.82, 0.86), (300, 0.84, 0.88)):
        write_checkpoint(repo / f"models/sentiment/step-{step}.pt", seed=step)
        args = [
            "-m",
            f"dev.macro_f1={dev}",
            "-m",
            f"test.macro_f1={test}",
            "-m",
            "test.class_f1.neg=0.75",
            "-m",
            "test.class_f1.pos=0.9",
            "-r",
            "latency_ms_p95=100",
            "--seed",
            "42",
            "--data",
            "tweets=v1",
            "--run",
            RUN,
        ]
        assert cli("add", f"models/sentiment/step-{step}.pt", *args).code == 0
    git(repo, "add", "--all")
    git(repo, "commit", "-qm", "three checkpoints")
    return repo


# One named run: its checkpoints share the run id derived from the run name.
RUN = "demo_tweets_sentiment_lr1e-4_2026-01-05"


def name(step: int) -> str:
    return f"sentiment-train-full-{naming.derived_run_id(RUN)}-step{step:06d}"


def merge(repo: Path, branch: str) -> None:
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", branch, "-m", f"Merge {branch}")


def test_gate_command_table_and_exit_code(registry: Path, cli) -> None:
    failing = cli("gate", name(100), "--stage", "production")
    assert failing.code == 1 and "✗ fail" in failing.out and "test-macro-f1" in failing.out
    assert "fails 1 gate(s) for production" in failing.err
    passing = json.loads(cli("gate", name(200), "--json").out)
    assert passing["passed"] is True and passing["stage"] == "production"
    assert [g["verdict"] for g in passing["gates"]] == ["pass", "pass", "pass"]


def test_promote_records_a_reviewable_decision(registry: Path, cli) -> None:
    git(registry, "checkout", "-qb", "promote-200")
    result = cli("promote", name(200), "--to", "dev", "--rationale", "best dev so far")
    assert result.code == 0, result.err
    decision = card.read(registry / "models/sentiment/step-200.pt.ckpt.yaml").data["decisions"][-1]
    assert decision["verdict"] == "promoted" and decision["stage"] == "dev"
    assert decision["by"] == {"name": "Ada Trainer", "email": "ada@example.com"}
    assert decision["rationale"] == "best dev so far" and "override" not in decision
    assert decision["gates_blob"] == git(registry, "hash-object", "gates.yaml").strip()
    assert "models/sentiment/step-200.pt.ckpt.yaml" in git(
        registry, "diff", "--cached", "--name-only"
    )
    assert cli("check").code == 0  # an appended decision is a legal change
    skipped = cli("promote", name(300), "--to", "staging", "--rationale", "skip dev")
    assert skipped.code == 1 and "never promoted to dev" in skipped.err


def test_failing_gates_refuse_unless_overridden_and_the_report_flags_it(
    registry: Path, cli
) -> None:
    git(registry, "checkout", "-qb", "promote-100")
    assert cli("promote", name(100), "--to", "dev", "--rationale", "baseline").code == 0
    assert cli("promote", name(100), "--to", "staging", "--rationale", "baseline").code == 1
    refused = cli("promote", name(100), "--to", "staging", "--rationale", "x", "--override")
    assert refused.code == 2 and "--override needs --reason" in refused.err
    result = cli(
        "promote",
        name(100),
        "--to",
        "staging",
        "--rationale",
        "needed for the demo",
        "--override",
        "--reason",
        "dev set is noisy; accepted by the lead",
    )
    assert result.code == 0 and "(OVERRIDE)" in result.out
    decision = card.read(registry / "models/sentiment/step-100.pt.ckpt.yaml").data["decisions"][-1]
    assert decision["override"] is True and decision["reason"].startswith("dev set is noisy")
    assert {g["rule"]: g["verdict"] for g in decision["gates"]}["dev-macro-f1"] == "fail"
    git(registry, "commit", "-qm", "promote 100")
    report = cli("report", "--base", "main")
    assert report.code == 0
    assert "**OVERRIDE** of failing gates: dev set is noisy" in report.out
    assert "| ❌ | dev-macro-f1 | metrics.dev.macro_f1 >= 0.8 | 0.78 |" in report.out


def test_stage_holder_follows_first_parent_history_across_a_merged_pr(registry: Path, cli) -> None:
    git(registry, "checkout", "-qb", "pr-1")
    assert cli("promote", name(200), "--to", "dev", "--rationale", "first").code == 0
    git(registry, "commit", "-qm", "promote 200 to dev")
    git(registry, "checkout", "-q", "main")
    git(registry, "checkout", "-qb", "pr-2")
    assert cli("promote", name(300), "--to", "dev", "--rationale", "second").code == 0
    git(registry, "commit", "-qm", "promote 300 to dev")
    git(registry, "checkout", "-q", "main")
    assert "no stage holders" in cli("stages").out  # nothing merged yet
    merge(registry, "pr-2")  # merged first although decided later...
    merge(registry, "pr-1")  # ...so pr-1's decision is the latest on main
    holders = json.loads(cli("stages", "sentiment", "--json").out)["holders"]
    assert holders["sentiment@dev"]["name"] == name(200)
    shown = json.loads(cli("show", "sentiment@dev", "--json").out)
    assert shown["name"] == name(200)
    table = cli("stages", "--history").out
    assert "sentiment  dev    " in table and "first" in table and "second" in table
    git(registry, "checkout", "-q", "pr-1")  # a branch's own decisions never move main's stages
    assert json.loads(cli("show", "sentiment@dev", "--json").out)["name"] == name(200)


def test_reject_and_archive_are_recorded_and_archiving_vacates_the_stage(
    registry: Path, cli
) -> None:
    assert cli("promote", name(300), "--to", "dev", "--rationale", "good").code == 0
    git(registry, "commit", "-qm", "dev")
    assert cli("reject", name(100), "--reason", "underfits", "--stage", "dev").code == 0
    assert cli("archive", name(300), "--reason", "data leak found").code == 0
    git(registry, "commit", "-qm", "decisions")
    verdicts_100 = [
        d["verdict"]
        for d in card.read(registry / "models/sentiment/step-100.pt.ckpt.yaml").data["decisions"]
    ]
    assert verdicts_100 == ["rejected"]
    assert json.loads(cli("stages", "--json").out)["holders"] == {}
    missing = cli("show", "sentiment@dev")
    assert missing.code == 4 and "holds dev" in missing.err


def normalize(text: str) -> str:
    text = re.sub(r"\b[0-9a-f]{40}\b|\b[0-9a-f]{7,12}\b", "<sha>", text)
    text = re.sub(r"`[0-9a-f]{16}…`", "`<sha256>…`", text)
    return re.sub(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", "<time>", text)


GOLDEN = Path(__file__).parent / "data/report.golden.md"


def test_report_markdown_golden(registry: Path, cli) -> None:
    git(registry, "checkout", "-qb", "promote")
    assert cli("promote", name(300), "--to", "dev", "--rationale", "highest dev macro-F1").code == 0
    git(registry, "commit", "-qm", "promote 300")
    write_checkpoint(registry / "models/sentiment/step-400.pt", seed=4)
    assert (
        cli(
            "add",
            "models/sentiment/step-400.pt",
            "-m",
            "dev.macro_f1=0.85",
            "-m",
            "test.macro_f1=0.84",
            "--parent",
            f"finetuned_from={name(300)}",
            "--run",
            RUN,
        ).code
        == 0
    )
    git(registry, "commit", "-qm", "step 400")
    text = normalize(cli("report", "--base", "main").out)
    if os.environ.get("DVCCKPT_UPDATE_GOLDEN"):  # regenerate deliberately, then review the diff
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()
    html = cli("report", "--base", "main", "--format", "html").out
    assert html.startswith("<!DOCTYPE html>") and "<table" in html and 'class="lineage"' in html
    assert "```" not in html and "flowchart" not in html  # the lineage is drawn, not its source


def test_model_card_has_hub_front_matter(registry: Path, cli, tmp_path: Path) -> None:
    assert cli("promote", name(300), "--to", "dev", "--rationale", "solid").code == 0
    out = tmp_path / "README.md"
    assert cli("card", name(300), "--output", str(out)).code == 0
    text = out.read_text()
    front = yaml.safe_load(text.split("---")[1])
    results = front["model-index"][0]["results"]
    assert front["model-index"][0]["name"] == name(300)
    assert {m["name"]: m["value"] for r in results for m in r["metrics"]}["test macro_f1"] == 0.88
    assert "promoted to dev" in text and "tweets v1" in text and "Hypothesis" in text


@pytest.mark.skipif(
    shutil.which("gto") is None and not (Path(sys.executable).parent / "gto").exists(),
    reason="gto is installed with dvc",
)
def test_tag_makes_gto_and_dvc_artifacts_see_the_registry(
    registry: Path, cli, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), "remote", "add", "-d", "local", str(remote)],
        cwd=registry,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), "push", "-q"], cwd=registry, check=True
    )
    git(registry, "commit", "-qam", "remote")
    git(registry, "checkout", "-qb", "pr")
    assert cli("promote", name(300), "--to", "dev", "--rationale", "go").code == 0
    git(registry, "commit", "-qm", "promote")
    merge(registry, "pr")
    result = cli("tag")
    assert (
        result.code == 0
        and "tagged sentiment@v0.1.0" in result.out
        and "tagged sentiment#dev#1" in result.out
    )
    assert cli("tag").out.strip() == "nothing to tag"
    gto = subprocess.run(
        [str(Path(sys.executable).parent / "gto"), "show", "--json"],
        cwd=registry,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(gto.stdout)["sentiment"] == {
        "version": "v0.1.0",
        "stage": {"dev": "v0.1.0"},
        "registered": True,
        "active": True,
    }
    target = tmp_path / "fetched.pt"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "dvc"),
            "artifacts",
            "get",
            str(registry),
            "sentiment",
            "-o",
            str(target),
        ],
        check=True,
        capture_output=True,
    )
    assert target.read_bytes() == (registry / "models/sentiment/step-300.pt").read_bytes()
