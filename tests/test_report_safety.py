"""The review report is safe to post: card text cannot inject Markdown, HTML or mentions.

Card text is written by whoever opens the pull request. Each test puts one payload
into one card field (through the CLI where it accepts it, by hand-editing the card
where only the schema would refuse it) and renders the report on a real repository.
Policy changes are listed at the top, every decision shows whether it will count, and
the workflow only ever edits its own comment.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from itertools import groupby
from pathlib import Path
from typing import Any

import html5lib
import pytest
import yaml

from dvcckpt.present import report as render
from dvcckpt.project import Project
from dvcckpt.promotion import report as report_data
from tests.conftest import git, write_checkpoint

PAYLOAD = (
    "ok\n| fake | row | here | x |\r\n<!-- hide the rest\n```\n"
    "<img src=x onerror=alert(1)> <b>bold</b> @someone [link](https://evil.example) "
    "![pixel](https://evil.example/p.png) # heading *em* _em_ `code` ~~gone~~ $x$ \\ & "
    '"quoted" \u202eevil\u2028line --> end'
)
GATES = """\
version: 1
gates:
  - stage: dev
    rules:
      - {name: dev-f1, metric: metrics.dev.macro_f1, op: ">=", value: 0.9}
"""
CONFIG = "version: 1\nproject: demo\nstages: [dev, staging, production]\n"
ALPHA = "models/alpha/step-2.pt"  # the card carrying the payload (sorted first)
ZETA = "models/zeta/step-1.pt"  # committed on main, promoted with an override on the branch
OVERRIDE_LINE = "  - ⚠️ **OVERRIDE** of failing gates: "
MERMAID_LINE = re.compile(
    r'^    [A-Za-z0-9_]+\["[A-Za-z0-9\-_.:/ ]*"\]'
    r'(?: (?:-- "[A-Za-z0-9\-_.:/ ]*" )?--> [A-Za-z0-9_]+\["[A-Za-z0-9\-_.:/ ]*"\])?$'
)


def card_path(checkpoint: str) -> str:
    return f"{checkpoint}.ckpt.yaml"


def edit(repo: Path, checkpoint: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = repo / card_path(checkpoint)
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "--all")
    git(repo, "commit", "--no-verify", "-qm", message)


def card_name(repo: Path, checkpoint: str) -> str:
    return str(yaml.safe_load((repo / card_path(checkpoint)).read_text())["name"])


@pytest.fixture
def pr(repo: Path, cli) -> Path:
    """main: gates, config and zeta; branch `pr`: alpha added, zeta promoted with an override."""
    (repo / "gates.yaml").write_text(GATES)
    (repo / "dvcckpt.yaml").write_text(CONFIG)
    write_checkpoint(repo / ZETA, seed=1)
    assert cli("add", ZETA, "-m", "dev.macro_f1=0.8").code == 0
    commit(repo, "zeta")
    git(repo, "checkout", "-qb", "pr")
    write_checkpoint(repo / ALPHA, seed=2)
    assert cli("add", ALPHA, "-m", "dev.macro_f1=0.95", "--data", "tweets=v1").code == 0
    commit(repo, "alpha")
    return repo


def override_zeta(repo: Path, cli, reason: str = "dev set is noisy") -> None:
    zeta = card_name(repo, ZETA)
    args = ["--rationale", "needed", "--override", "--reason", reason]
    result = cli("promote", zeta, "--to", "dev", *args)
    assert result.code == 0, result.err
    commit(repo, "override zeta")


# -- one payload per vector ---------------------------------------------------------------


def via_notes(repo: Path, cli) -> None:
    edit(repo, ALPHA, lambda c: c.update(notes=PAYLOAD))
    commit(repo, "notes")


def via_notes_option(repo: Path, cli) -> None:
    write_checkpoint(repo / "models/alpha/step-3.pt", seed=3)
    added = cli("add", "models/alpha/step-3.pt", "-m", "dev.macro_f1=0.5", "--notes", PAYLOAD)
    assert added.code == 0, added.err
    commit(repo, "step 3")


def via_rationale(repo: Path, cli) -> None:
    promoted = cli("promote", card_name(repo, ALPHA), "--to", "dev", "--rationale", PAYLOAD)
    assert promoted.code == 0, promoted.err
    commit(repo, "promote alpha")


def via_override_reason(repo: Path, cli) -> None:
    pass  # the fixture's override itself carries the payload (see `reported`)


def via_gate_results(repo: Path, cli) -> None:
    assert cli("promote", card_name(repo, ALPHA), "--to", "dev", "--rationale", "best").code == 0

    def forge(card: dict[str, Any]) -> None:
        card["decisions"][-1]["gates"][0].update(rule=PAYLOAD, required=PAYLOAD, actual=PAYLOAD)

    edit(repo, ALPHA, forge)
    commit(repo, "promote alpha, gate results edited")


def via_decision_fields(repo: Path, cli) -> None:
    assert cli("reject", card_name(repo, ALPHA), "--reason", "meh", "--stage", "dev").code == 0

    def forge(card: dict[str, Any]) -> None:
        card["decisions"][-1].update(by={"name": PAYLOAD}, at=PAYLOAD, verdict=PAYLOAD)

    edit(repo, ALPHA, forge)
    commit(repo, "rejection with odd fields")


def via_dataset(repo: Path, cli) -> None:
    edit(repo, ALPHA, lambda c: c["data"].update(dataset=PAYLOAD, version=PAYLOAD))
    commit(repo, "dataset")


def via_parent(repo: Path, cli) -> None:
    edit(repo, ALPHA, lambda c: c.update(parents=[{"relation": PAYLOAD, "name": PAYLOAD}]))
    commit(repo, "parent")


def via_parent_option(repo: Path, cli) -> None:
    write_checkpoint(repo / "models/alpha/step-3.pt", seed=3)
    added = cli("add", "models/alpha/step-3.pt", "--parent", f"finetuned_from={PAYLOAD}")
    assert added.code == 0, added.err
    commit(repo, "step 3")


def via_names(repo: Path, cli) -> None:
    def rename(card: dict[str, Any]) -> None:
        card.update(name=PAYLOAD, model=PAYLOAD)
        card["checkpoint"].update(phase=PAYLOAD)

    edit(repo, ALPHA, rename)
    commit(repo, "names")


def via_metric_name(repo: Path, cli) -> None:
    edit(repo, ALPHA, lambda c: c["metrics"].update({PAYLOAD: {PAYLOAD: 0.5}}))
    commit(repo, "metric")


def via_policy_file_name(repo: Path, cli) -> None:
    folder = repo / ".github/workflows"
    folder.mkdir(parents=True)
    (folder / PAYLOAD.replace("/", "-")).write_text("on: push\n")
    commit(repo, "workflow with an odd name")


VECTORS = [
    via_notes,
    via_notes_option,
    via_rationale,
    via_override_reason,
    via_gate_results,
    via_decision_fields,
    via_dataset,
    via_parent,
    via_parent_option,
    via_names,
    via_metric_name,
    via_policy_file_name,
]


def expected_table_lines(repo: Path) -> int:
    """Lines of dvcckpt's own tables: header, separator and one per metric or gate result."""
    data = report_data.build(Project.discover(repo), "main")
    count = 0
    for entry in data.entries:
        metrics = render.metric_deltas(entry.card, entry.holder)
        count += len(metrics) + 2 if metrics else 0
        if entry.gate_stage and entry.gate_results:
            count += len(entry.gate_results) + 2
    return count


def assert_safe_markdown(markdown: str, table_lines: int) -> None:
    lines = markdown.splitlines()
    assert lines[0] == render.MARKER and markdown.count("<!--") == 1  # only dvcckpt's marker
    assert not re.search(r"<[A-Za-z/!?]", "\n".join(lines[1:])), "raw HTML"
    assert not re.search(r"@[A-Za-z0-9]", markdown), "a bare mention"
    assert "\u202e" not in markdown and "\u2028" not in markdown and "\r" not in markdown
    rows = [line for line in lines if line.startswith("|")]
    assert len(rows) == table_lines
    tables = [list(t) for is_table, t in groupby(lines, lambda x: x.startswith("|")) if is_table]
    for table in tables:  # metrics: 2 columns, 4 against a holder; gates: 4
        columns = len(re.findall(r"(?<!\\)\|", table[0]))
        assert columns in (3, 5), table[0]
        assert all(len(re.findall(r"(?<!\\)\|", row)) == columns for row in table), "extra cells"
    fences = [i for i, line in enumerate(lines) if line.startswith("```")]
    assert len(fences) == 2 * lines.count("**Lineage**")
    for start, end in zip(fences[::2], fences[1::2], strict=True):
        assert lines[start] == "```mermaid" and lines[end] == "```"
        assert lines[start + 1] == "flowchart BT"
        assert all(MERMAID_LINE.match(line) for line in lines[start + 2 : end]), lines[start:end]
    overrides = [line for line in lines if line.startswith(OVERRIDE_LINE)]
    assert len(overrides) == 1


def assert_renders_as_text(markdown: str) -> None:
    """A CommonMark renderer with raw HTML on (as GitHub allows) finds no tag, link or image."""
    markdown_it = pytest.importorskip("markdown_it")
    rendered = markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table")
    page = rendered.render(markdown)
    tags = set(re.findall(r"<([a-z0-9]+)", page))
    assert tags <= {"h2", "h3", "p", "ul", "li", "strong", "em", "code", "pre", "table",
                    "thead", "tbody", "tr", "th", "td"}, tags  # fmt: skip
    assert page.count("<!--") == 1 and "⚠️ <strong>OVERRIDE</strong> of failing gates" in page


HTML_TAGS = frozenset({"html", "head", "body", "main", "section", "meta", "title", "style", "h1",
             "h2", "h3", "p", "ul", "li", "strong", "code", "span", "br", "dl", "dt", "dd",
             "table", "thead", "tbody", "tr", "th", "td", "figure", "svg", "g", "rect", "path",
             "polygon", "text"})  # fmt: skip
VOID_TAGS = frozenset({"meta", "br"})


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.seen: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.add(tag)
        if tag not in VOID_TAGS:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open.pop() == tag, f"unbalanced </{tag}>"


def assert_balanced_html(page: str) -> None:
    parser = Tags()
    parser.feed(page)
    assert not parser.open and parser.seen <= HTML_TAGS, (parser.open, parser.seen)
    html5lib.HTMLParser(strict=True).parse(page)  # raises on any parse error


@pytest.mark.parametrize("vector", VECTORS, ids=[v.__name__ for v in VECTORS])
def test_card_text_cannot_inject_markup(pr: Path, cli, vector: Callable[..., None]) -> None:
    override_zeta(pr, cli, PAYLOAD if vector is via_override_reason else "dev set is noisy")
    vector(pr, cli)
    result = cli("report", "--base", "main")
    assert result.code == 0, result.err
    markdown = result.out
    assert_safe_markdown(markdown, expected_table_lines(pr))
    assert_renders_as_text(markdown)
    page = cli("report", "--base", "main", "--format", "html").out
    assert_balanced_html(page)
    assert "<img" not in page and "<b>" not in page and "<!--" not in page
    assert "&amp;lt;" not in page and "&amp;#" not in page  # entities render, not garbage
    if "&lt;img" in markdown:  # shown as text (parents appear only as Mermaid labels)
        assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_escaping_keeps_ordinary_text_readable() -> None:
    assert render.md_text("metrics.dev.macro_f1 >= 0.8") == "metrics.dev.macro_f1 >= 0.8"
    assert render.md_text("a\n\tb\r\nc") == "a b c"
    assert render.md_text("<!-- x") == "&lt;!-- x"
    assert render.md_text("> quote") == "&gt; quote"
    assert render.md_text("ping @ada") == "ping @\u200dada"
    assert render.md_text("_x_ a_b *y*") == "&#95;x&#95; a_b &#42;y&#42;"
    assert render.md_text("x" * 1000, limit=10) == "x" * 9 + "…"
    assert render._label('a"]; click b `x`\nend') == "a click b x end"


def test_mermaid_ids_never_merge_two_names() -> None:
    chart = render.mermaid("a-b", [("a-b", "resumed_from", "a_b"), ("a_b", "x", "end")])
    assert 'a_b["a-b"]' in chart and 'a_b_2["a_b"]' in chart and 'n_end["end"]' in chart


# -- decisions show whether they will count -----------------------------------------------


def decision_status_lines(markdown: str) -> list[str]:
    lines = markdown.splitlines()
    return [lines[i + 1] for i, line in enumerate(lines) if line.startswith("- **")]


def test_forged_gate_results_are_shown_invalid_never_verified(pr: Path, cli) -> None:
    via_gate_results(pr, cli)
    markdown = cli("report", "--base", "main").out
    [status] = decision_status_lines(markdown)
    assert status.startswith("  - ❌ invalid: ") and "✅" not in markdown
    assert "recorded by a promotion that does not verify" in markdown
    assert cli("check", "--all", "--base", "main").code == 1  # what CI refuses


def test_an_override_the_base_policy_accepts_is_shown_unsigned(pr: Path, cli) -> None:
    override_zeta(pr, cli)
    markdown = cli("report", "--base", "main").out
    assert decision_status_lines(markdown) == ["  - unsigned"]
    assert cli("check", "--all", "--base", "main").code == 0


def test_signed_decisions_show_their_principal_or_why_they_do_not_count(
    pr: Path, cli, tmp_path: Path
) -> None:
    keys = {}
    for who in ("alice", "mallory"):
        keys[who] = tmp_path / who
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", who,
                        "-f", str(keys[who])], check=True)  # fmt: skip
    signers = "".join(
        f'{who}@example.com namespaces="dvcckpt" '
        + " ".join(keys[who].with_suffix(".pub").read_text().split()[:2])
        + "\n"
        for who in keys
    )
    git(pr, "checkout", "-q", "main")
    (pr / "keys").mkdir()
    (pr / "keys/allowed_signers").write_text(signers)
    (pr / "dvcckpt.yaml").write_text(
        CONFIG + "promotion: {require_signed: true, allowed_signers: keys/allowed_signers}\n"
        "owners:\n  - {model: '*', stage: '*', principals: [alice@example.com]}\n"
    )
    commit(pr, "signed decisions")
    git(pr, "checkout", "-qb", "signed")
    git(pr, "config", "gpg.format", "ssh")
    for who, checkpoint in (("alice", ZETA), ("mallory", ZETA)):
        git(pr, "config", "user.email", f"{who}@example.com")
        git(pr, "config", "user.signingkey", str(keys[who]))
        verdict = ["reject", card_name(pr, checkpoint), "--reason", f"by {who}", "--stage", "dev"]
        assert cli(*verdict).code == 0
    commit(pr, "two rejections")
    statuses = decision_status_lines(cli("report", "--base", "main").out)
    assert statuses[0] == "  - ✅ verified (signed by alice@\u200dexample.com)"
    assert statuses[1].startswith("  - ❌ invalid: ") and "mallory" in statuses[1]


# -- policy changes at the top ------------------------------------------------------------


def test_policy_changes_are_listed_at_the_top(repo: Path, cli) -> None:
    (repo / "gates.yaml").write_text(GATES)
    (repo / "keys").mkdir()
    (repo / "keys/allowed_signers").write_text("")
    (repo / "dvcckpt.yaml").write_text(
        CONFIG + "promotion: {allowed_signers: ./keys/allowed_signers}\n"
    )
    commit(repo, "policy")
    git(repo, "checkout", "-qb", "lower-the-bar")
    (repo / "gates.yaml").write_text(GATES.replace("0.9", "0.1"))
    (repo / "dvcckpt.yaml").write_text(CONFIG)
    (repo / "keys/allowed_signers").write_text("mallory@example.com ssh-ed25519 AAAA\n")
    (repo / ".github/workflows").mkdir(parents=True)
    (repo / ".github/workflows/ci.yml").write_text("on: push\n")
    (repo / ".dvc/config").write_text("[core]\n    autostage = true\n")
    (repo / "train.py").write_text("print('other')\n")
    commit(repo, "lower the bar")
    git(repo, "checkout", "-q", "main")
    (repo / "CODEOWNERS").write_text("* @owners\n")  # on main after the branch: not the PR's
    commit(repo, "codeowners")
    git(repo, "checkout", "-q", "lower-the-bar")

    result = cli("report", "--base", "main")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[3] == f"**{render.POLICY_TITLE}**"
    listed = []
    for line in lines[5:]:
        if not line.startswith("- "):
            break
        listed.append(line)
    assert sorted(listed) == sorted(
        f"- `{path}`"
        for path in (
            ".dvc/config",
            ".github/workflows/ci.yml",
            "dvcckpt.yaml",
            "gates.yaml",
            "keys/allowed_signers",
        )
    )
    assert "No checkpoint cards were added or changed" in result.out  # listed even so
    data = report_data.build(Project.discover(repo), "main")
    assert "CODEOWNERS" not in data.policy_changes and "train.py" not in data.policy_changes


def test_a_change_without_policy_edits_has_no_policy_section(pr: Path, cli) -> None:
    assert render.POLICY_TITLE not in cli("report", "--base", "main").out
