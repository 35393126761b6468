"""`report --format html`: a valid, self-contained page rendered from the report's data.

The page is parsed by html5lib in strict mode (any parse error fails), its tree is read
back: tables keep every row, lists keep their items, the lineage is an SVG drawing, and
the comparison with the reference stage's holder appears only when there is a holder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import html5lib
import pytest
import yaml

from tests.conftest import git, write_checkpoint

NS = {"h": "http://www.w3.org/1999/xhtml", "s": "http://www.w3.org/2000/svg"}
CONFIG = "version: 1\nproject: demo\nstages: [dev]\n"
GATES = """\
version: 1
gates:
  - stage: dev
    rules:
      - {name: dev-f1, metric: metrics.dev.macro_f1, op: ">=", value: 0.8}
"""
HOSTILE = "</td></tr></table><script>alert(1)</script><img src=x onerror=alert(2)> \u202eevil"


def card_of(repo: Path, checkpoint: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((repo / f"{checkpoint}.ckpt.yaml").read_text())
    return data


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "--all")
    git(repo, "commit", "--no-verify", "-qm", message)


def add(cli: Any, repo: Path, checkpoint: str, seed: int, *args: str) -> str:
    write_checkpoint(repo / checkpoint, seed=seed)
    result = cli("add", checkpoint, *args)
    assert result.code == 0, result.err
    return str(card_of(repo, checkpoint)["name"])


@pytest.fixture
def reviewed(repo: Path, cli: Any) -> dict[str, str]:
    """main: `base` holds dev; branch `pr`: `child` fine-tuned from it, promoted to dev."""
    (repo / "dvcckpt.yaml").write_text(CONFIG)
    (repo / "gates.yaml").write_text(GATES)
    base = add(cli, repo, "models/m/step-1.pt", 1, "-m", "dev.macro_f1=0.8", "-m", "test.f1=0.7")
    commit(repo, "base")
    assert cli("promote", base, "--to", "dev", "--rationale", "first").code == 0
    commit(repo, "promote base")
    git(repo, "checkout", "-qb", "pr")
    child = add(
        cli, repo, "models/m/step-2.pt", 2, "-m", "dev.macro_f1=0.9", "-m", "test.f1=0.75",
        "--parent", f"finetuned_from={base}", "--notes", HOSTILE,
    )  # fmt: skip
    commit(repo, "child")
    promoted = cli("promote", child, "--to", "dev", "--rationale", "better <b>dev</b> F1")
    assert promoted.code == 0, promoted.err
    commit(repo, "promote child")
    return {"base": base, "child": child}


def parse(page: str) -> Any:
    """The document tree; html5lib's strict mode raises on any parse error."""
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=True).parse(page)


def texts(node: Any) -> str:
    return " ".join("".join(node.itertext()).split())


def test_page_is_valid_html5_with_tables_lists_and_a_drawn_lineage(
    reviewed: dict[str, str], cli: Any, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    assert cli("report", "--base", "main", "--format", "html", "--output", str(out)).code == 0
    page = out.read_text()
    tree = parse(page)
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">')
    ids = [e.get("id") for e in tree.iter() if e.get("id")]
    assert len(ids) == len(set(ids)), "duplicate ids"
    # self-contained and script-free: no external resource, no script, a strict CSP
    assert not re.search(r"<(script|link|iframe|img)\b", page, re.IGNORECASE)
    assert not [e for e in tree.iter() if e.get("src") or e.get("href")]
    policy = tree.find(".//h:meta[@http-equiv='Content-Security-Policy']", NS).get("content")
    assert "script-src 'none'" in policy and "default-src 'none'" in policy
    # every metric row is inside its table, the holder's values and the change beside it
    tables = tree.findall(".//h:table", NS)
    metrics = tables[0]
    header = [texts(th) for th in metrics.findall(".//h:thead//h:th", NS)]
    assert header == ["metric", "this", "dev", "Δ"]
    rows = [[texts(td) for td in tr] for tr in metrics.findall(".//h:tbody/h:tr", NS)]
    assert rows == [["dev.macro_f1", "0.9", "0.8", "+0.1"], ["test.f1", "0.75", "0.7", "+0.05"]]
    assert len(tree.findall(".//h:tr", NS)) == sum(len(t.findall(".//h:tr", NS)) for t in tables)
    gate_rows = tables[1].findall(".//h:tbody/h:tr", NS)
    assert [texts(td) for td in gate_rows[0]] == [
        "✓ pass",
        "dev-f1",
        "metrics.dev.macro_f1 >= 0.8",
        "0.9",
    ]
    # decisions are list items of a list; nothing is left as Markdown or Mermaid source
    items = tree.findall(".//h:ul[@class='decisions']/h:li", NS)
    assert len(items) == 1 and "promoted → dev by Ada Trainer" in texts(items[0])
    assert "better <b>dev</b> F1" in texts(items[0]) and "unsigned" in texts(items[0])
    body = texts(tree.find(".//h:main", NS))
    assert "```" not in body and "flowchart" not in body and "**" not in body
    svg = tree.find(".//s:svg", NS)
    assert svg is not None and svg.get("class") == "lineage"
    labels = [texts(t) for t in svg.findall(".//s:g/s:text", NS)]
    assert reviewed["child"] in labels and reviewed["base"] in labels and "finetuned_from" in labels
    if os.environ.get("DVCCKPT_SCREENSHOT_DIR"):
        (Path(os.environ["DVCCKPT_SCREENSHOT_DIR"]) / "report.html").write_text(page)


def test_card_text_stays_text_in_the_page(reviewed: dict[str, str], cli: Any) -> None:
    page = cli("report", "--base", "main", "--format", "html").out
    tree = parse(page)
    assert not tree.findall(".//h:script", NS) and not tree.findall(".//h:img", NS)
    assert not [a for e in tree.iter() for a in e.attrib if a.lower().startswith("on")]
    notes = [dd for dd in tree.findall(".//h:dd", NS) if "alert(1)" in texts(dd)]
    assert len(notes) == 1
    assert (
        texts(notes[0])
        == "</td></tr></table><script>alert(1)</script><img src=x onerror=alert(2)> evil"
    )
    assert "\u202e" not in page  # a bidi override cannot reverse what the reviewer reads


def test_without_a_holder_the_comparison_columns_are_left_out(repo: Path, cli: Any) -> None:
    (repo / "dvcckpt.yaml").write_text(CONFIG)
    git(repo, "checkout", "-qb", "pr")
    add(cli, repo, "models/m/step-1.pt", 1, "-m", "dev.macro_f1=0.8")
    commit(repo, "first")
    markdown = cli("report", "--base", "main").out
    assert "| metric | this |\n|---|---|\n| dev.macro_f1 | 0.8 |\n" in markdown
    assert "**Gates for dev**" not in markdown  # no gates.yaml: no gate section
    tree = parse(cli("report", "--base", "main", "--format", "html").out)
    (metrics,) = tree.findall(".//h:table", NS)
    assert [texts(th) for th in metrics.findall(".//h:th", NS)] == ["metric", "this"]
    assert "no dev holder to compare with" in texts(tree.find(".//h:h3", NS))
    assert tree.find(".//s:svg", NS) is None  # no parents and no promotion: no lineage


def test_a_branch_without_cards_says_so(repo: Path, cli: Any) -> None:
    git(repo, "checkout", "-qb", "pr")
    tree = parse(cli("report", "--base", "main", "--format", "html").out)
    assert "No checkpoint cards were added or changed" in texts(tree.find(".//h:main", NS))
