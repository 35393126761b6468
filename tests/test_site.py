"""`dvcckpt site` on a real git + DVC repository: pages, links, content, escaping, scope,
atomic output and the refusals of a bad --output.

One registry is built per module (several models and runs, metrics with confidence
intervals, an evaluation, a lineage edge, a signed promotion merged into main, an
unsigned one that does not count, a checkpoint only on a branch, and a card whose
text is hostile); each test works on its own copy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import html5lib
import pytest
import yaml

from dvcckpt.cli import main
from dvcckpt.core import naming
from dvcckpt.present.html import script_hash
from dvcckpt.present.sitepage import slug
from tests.conftest import git, run_process, write_checkpoint
from tests.test_catalog import card_text
from tests.test_trust import keygen

GATES = """\
version: 1
gates:
  - stage: dev
    rules:
      - {name: dev-f1, metric: metrics.dev.macro_f1, op: ">=", value: 0.75}
  - stage: production
    rules:
      - {name: test-f1, metric: metrics.test.macro_f1, op: ">=", value: 0.85}
      - {name: no-regression, regression: metrics.dev.macro_f1, margin: 0.01}
"""
RUN = "demo_tweets_sentiment_lr1e-4_2026-01-05"
HOSTILE = '</script><script>alert(1)</script>"onload="alert(2)<img src=x onerror=alert(3)>'
PAGE_NAME = re.compile(r"(index|(models|checkpoints)/[a-z0-9-]+-[0-9a-f]{12}(-\d+)?)\.html")


def name(step: int) -> str:
    return f"sentiment-train-full-{naming.derived_run_id(RUN)}-step{step:06d}"


def run(*args: str) -> None:
    code = main(list(args))
    assert code == 0, f"dvcckpt {' '.join(args)} exited {code}"


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "--all")
    git(repo, "commit", "-q", "--no-verify", "-m", message)


def add_sentiment(repo: Path) -> None:
    for step, dev, test in ((100, "0.78:0.76:0.80", 0.83), (200, "0.82:0.80:0.84", 0.86),
                            (300, "0.84:0.82:0.86", 0.88)):  # fmt: skip
        write_checkpoint(repo / f"models/sentiment/step-{step}.pt", seed=step)
        parent = ["--parent", f"resumed_from={name(step - 100)}"] if step > 100 else []
        run("add", f"models/sentiment/step-{step}.pt", "-m", f"dev.macro_f1={dev}",
            "-m", f"test.macro_f1={test}", "--run", RUN, "--tag", "baseline", *parent)  # fmt: skip


def add_ner(repo: Path) -> None:
    for step in (50, 150):
        write_checkpoint(repo / f"models/ner/step-{step}.pt", seed=step + 1)
        run("add", f"models/ner/step-{step}.pt", "-m", f"dev.entity_f1=0.{step // 10 + 60}",
            "--run", "demo_conll_ner_base_2026-01-06")  # fmt: skip


def make_hostile(repo: Path) -> str:
    """A checkpoint whose card text tries every way into the page; returns its card path."""
    write_checkpoint(repo / "models/evil/step-1.pt", seed=9)
    run(
        "add",
        "models/evil/step-1.pt",
        "-m",
        "dev.macro_f1=0.5",
        "--run",
        "demo_x_evil_base_2026-01-07",
    )
    path = next((repo / "models/evil").glob("*.ckpt.yaml"))
    card = yaml.safe_load(path.read_text())
    card["notes"] = HOSTILE
    card["tags"] = [HOSTILE, "javascript:alert(4)"]
    card["run"]["name"] = HOSTILE
    card["code"]["repo"] = "javascript:alert(5)"
    card["params"] = {"homepage": " JaVaScRiPt:alert(6)", "ok": "https://example.com/?a=1&b=<2>"}
    card["metrics"]["dev"][HOSTILE] = 0.1
    path.write_text(yaml.safe_dump(card, sort_keys=False))
    return str(path.relative_to(repo))


@pytest.fixture(scope="module")
def registry(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The gallery registry, built once (see the module docstring)."""
    root = tmp_path_factory.mktemp("site") / "repo"
    shutil.copytree(template_repo, root, symlinks=True)
    keys = root.parent / "keys"
    keys.mkdir()
    alice = keygen(keys, "alice")
    kind, blob = alice.with_suffix(".pub").read_text().split()[:2]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        (root / "gates.yaml").write_text(GATES)
        (root / "dvcckpt.yaml").write_text(
            "version: 1\nproject: demo\nstages: [dev, staging, production]\n"
            "primary_metric: dev.macro_f1\n"
            "promotion: {allowed_signers: .dvcckpt/allowed_signers}\n"
            "owners:\n  - {model: '*', stage: '*', principals: [alice@example.com]}\n"
        )
        (root / ".dvcckpt").mkdir()
        (root / ".dvcckpt/allowed_signers").write_text(
            f'alice@example.com namespaces="dvcckpt" {kind} {blob}\n'
        )
        add_sentiment(root)
        add_ner(root)
        make_hostile(root)
        commit(root, "checkpoints")
        run("evaluate", name(300), "--split", "test", "-m", "macro_f1=0.87:0.85:0.89")
        commit(root, "evaluate 300")
        git(root, "config", "user.email", "alice@example.com")
        git(root, "config", "gpg.format", "ssh")
        git(root, "config", "user.signingkey", str(alice))
        git(root, "checkout", "-qb", "promote-300")
        run("promote", name(300), "--to", "dev", "--rationale", "best dev so far")
        commit(root, "promote 300")
        git(root, "checkout", "-q", "main")
        git(root, "merge", "-q", "--no-ff", "promote-300", "-m", "Merge promote-300")
        git(root, "checkout", "-qb", "experiment")
        write_checkpoint(root / "models/ner/step-900.pt", seed=90)
        run(
            "add",
            "models/ner/step-900.pt",
            "-m",
            "dev.entity_f1=0.91",
            "--run",
            "demo_conll_ner_big_2026-01-08",
        )
        commit(root, "an experiment")
        git(root, "checkout", "-q", "main")
    return root


@pytest.fixture
def repo(registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(registry, copy, symlinks=True)
    monkeypatch.chdir(copy)
    return copy


def build(cli: Any, *args: str) -> dict[str, Any]:
    result = cli("site", "--json", *args)
    assert result.code == 0, result.err
    return dict(json.loads(result.out))


def pages(folder: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(folder.rglob("*.html")):
        yield str(path.relative_to(folder)), path.read_text(encoding="utf-8")


def parse(text: str) -> Any:
    """The page as html5lib's tree, in strict mode: any parse error fails the test."""
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(text)


def page_of(folder: Path, prefix: str) -> str:
    found = sorted((folder / prefix.split("/")[0]).glob(prefix.split("/")[1] + "-*.html"))
    assert len(found) == 1, found
    return found[0].read_text(encoding="utf-8")


# -- the pages --------------------------------------------------------------------------


def test_every_page_is_valid_html_links_resolve_and_sizes_are_bounded(repo: Path, cli) -> None:
    written = build(cli)
    site = Path(written["output"])
    assert site == repo / "site" and written["count"] == len(written["pages"])
    # the index, 3 models, 3 + 2 + 1 checkpoints on main (not the branch's)
    assert written["count"] == 1 + 3 + 6
    for relative, text in pages(site):
        assert PAGE_NAME.fullmatch(relative), relative
        assert len(text.encode()) < 2 * 1024 * 1024
        tree = parse(text)
        assert text.startswith("<!DOCTYPE html>") and tree.get("lang") == "en"
        for anchor in tree.iter("a"):
            href = anchor.get("href")
            url = urlparse(href)
            if url.scheme:  # only card links to the web are absolute
                assert url.scheme in ("http", "https"), href
                continue
            target = (site / relative).parent / unquote(url.path)
            assert target.resolve().is_file(), f"{relative}: dead link {href}"
    index = (site / "index.html").read_text()
    for model in ("sentiment", "ner", "evil"):
        assert f'href="models/{slug(model)}.html"' in index


def test_index_model_and_checkpoint_pages_show_the_registry(repo: Path, cli) -> None:
    site = Path(build(cli)["output"])
    index = (site / "index.html").read_text()
    assert name(300) in index and '<th scope="col" aria-sort="none">dev</th>' in index
    assert "production</th>" not in index  # no model holds it: no empty column
    model = page_of(site, "models/sentiment")
    assert model.count("<svg") >= 2 and 'class="ci"' in model  # plots with CI bands
    assert "✔ verified (alice@example.com)" in model and "best dev so far" in model
    assert 'id="checkpoints"' in model and 'class="filter"' in model
    assert 'data-sort="0.84"' in model  # the raw number the sorter reads
    checkpoint = page_of(site, f"checkpoints/{name(300)}")
    assert "0.84 [0.82, 0.86]" in checkpoint
    assert "macro_f1 = 0.87 [0.85, 0.89]" in checkpoint  # the evaluation
    assert "dev: 1 of 1 gate(s) pass" in checkpoint
    assert (
        "production: 2 of 2 gate(s) pass" in checkpoint and "staging: no gates apply" in checkpoint
    )
    first = page_of(site, f"checkpoints/{name(100)}")
    assert "production: 1 of 2 gate(s) pass" in first and "✘ fail" in first  # test 0.83
    assert "resumed_from" in checkpoint and "<svg" in checkpoint.split("Lineage")[1]
    diagram = checkpoint.split('class="lineage"')[1].split("</svg>")[0]
    assert diagram.count('<a href="../checkpoints/') == 2  # the parents' boxes open their pages
    assert "model-index:" in checkpoint  # the model card
    assert f'href="../checkpoints/{slug(name(200), "models/sentiment/step-200.pt.ckpt.yaml")}' in (
        checkpoint
    )


def test_gate_results_are_what_dvcckpt_gate_says(repo: Path, cli) -> None:
    from dvcckpt.present import modelcard
    from dvcckpt.project import Project
    from dvcckpt.publish import site

    data = site.gather(Project.discover(), modelcard.render, "test")
    checkpoints = {c.version.name: c for m in data.models for c in m.checkpoints}
    for checkpoint_name in (name(100), name(300)):
        for stage in ("dev", "production"):
            result = cli("gate", checkpoint_name, "--stage", stage, "--json")
            expected = json.loads(result.out)
            assert checkpoints[checkpoint_name].gates[stage] == expected["gates"]
            assert checkpoints[checkpoint_name].baselines[stage] == expected["holder"]


def test_the_filter_and_sorter_are_the_pages_only_scripts(repo: Path, cli) -> None:
    site = Path(build(cli)["output"])
    for relative, text in pages(site):
        tree = parse(text)
        scripts = [s.text or "" for s in tree.iter("script")]
        policy = next(m.get("content") for m in tree.iter("meta") if m.get("http-equiv"))
        assert "default-src 'none'" in policy and "http" not in policy
        for source in scripts:
            assert script_hash(source) in policy, relative
        assert len(scripts) <= 1


# -- untrusted card text ----------------------------------------------------------------


def test_hostile_card_text_renders_inert(repo: Path, cli) -> None:
    site = Path(build(cli)["output"])
    shown = 0
    for relative, text in pages(site):
        tree = parse(text)
        assert len(list(tree.iter("script"))) <= 1 and not list(tree.iter("img")), relative
        for element in tree.iter():
            for attribute, value in element.attrib.items():
                assert not attribute.lower().startswith("on"), (relative, attribute)
                if attribute in ("href", "src"):
                    assert not value.strip().lower().startswith("javascript"), (relative, value)
        if "alert(1)" in text:
            shown += 1
            assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in text
            assert "&quot;onload=&quot;alert(2)" in text
    assert shown >= 2  # the model page (run, tags) and the checkpoint page
    evil = page_of(site, "checkpoints/evil")
    assert "javascript:alert(5)" in evil and 'href="javascript' not in evil.lower()
    assert 'href="https://example.com/?a=1&amp;b=&lt;2&gt;"' in evil


def test_hostile_names_make_safe_distinct_file_names() -> None:
    names = ["../../etc/passwd", "a/b", "a-b", "A-B", "", "<script>", "..", "x" * 500, "ü/ß"]
    stems = [slug(n) for n in names]
    assert len(set(stems)) == len(names)
    for stem in stems:
        assert re.fullmatch(r"[a-z0-9-]{1,49}-[0-9a-f]{12}", stem), stem
    assert slug("same", "path/one") != slug("same", "path/two")


def test_a_renamed_hostile_model_and_card_get_pages_too(repo: Path, cli) -> None:
    path = repo / next((repo / "models/evil").glob("*.ckpt.yaml"))
    card = yaml.safe_load(path.read_text())
    card["model"], card["name"] = "../<b>evil</b>/model", "</script>../../index"
    path.write_text(yaml.safe_dump(card, sort_keys=False))
    commit(repo, "rename")
    written = build(cli)
    assert all(PAGE_NAME.fullmatch(p) for p in written["pages"])
    assert written["count"] == 10
    index = (repo / "site/index.html").read_text()
    assert "../&lt;b&gt;evil&lt;/b&gt;/model" in index


# -- scope, empty repository, output ----------------------------------------------------


def test_all_includes_the_cards_of_every_branch(repo: Path, cli) -> None:
    assert not any("step000900" in p for p in build(cli)["pages"])
    everything = build(cli, "--all")
    assert everything["count"] == 1 + 3 + 7
    ner = page_of(repo / "site", "models/ner")
    assert "step000900" in ner and "scope all refs" in ner


def test_an_empty_repository_gets_a_clear_page(
    template_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    root = tmp_path / "empty"
    shutil.copytree(template_repo, root, symlinks=True)
    monkeypatch.chdir(root)
    written = build(cli)
    assert written["pages"] == ["index.html"]
    index = (root / "site/index.html").read_text()
    parse(index)
    assert "No checkpoint cards in this repository yet" in index


def test_the_index_lists_unreadable_cards_that_head_still_holds(
    template_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    """A card broken once and fixed since is history, not a problem of the site's scope."""
    root = tmp_path / "broken"
    shutil.copytree(template_repo, root, symlinks=True)
    monkeypatch.chdir(root)
    (root / "models").mkdir()
    (root / "models/fixed.pt.ckpt.yaml").write_text("name: [unclosed\n")
    (root / "models/still.pt.ckpt.yaml").write_text("name: {also: [unclosed\n")
    commit(root, "two broken cards")
    (root / "models/fixed.pt.ckpt.yaml").unlink()
    commit(root, "remove the first")
    build(cli)
    index = (root / "site/index.html").read_text()
    assert "1 card version(s) cannot be read" in index
    assert "models/still.pt.ckpt.yaml" in index and "models/fixed.pt.ckpt.yaml" not in index
    build(cli, "--all")
    index = (root / "site/index.html").read_text()
    assert "2 card version(s) cannot be read" in index and "models/fixed.pt.ckpt.yaml" in index


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("train.py", "is a file"),
        (".git/site", "inside .git/"),
        (".dvc/site", "inside .dvc/"),
        (".", "is the repository or holds it"),
        ("..", "is the repository or holds it"),
        ("models", "holds something else than a dvcckpt site"),
    ],
)
def test_a_bad_output_is_refused_before_anything_is_written(
    repo: Path, cli, output: str, message: str
) -> None:
    before = git(repo, "status", "--porcelain", "--ignored")
    result = cli("site", "--output", output)
    assert result.code == 2 and message in result.err and "Traceback" not in result.err
    assert result.err.count("error:") == 1 and "hint:" in result.err
    assert git(repo, "status", "--porcelain", "--ignored") == before


def test_a_failed_build_leaves_the_old_site_and_no_leftovers(
    repo: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dvcckpt.present import site as rendering

    build(cli, "--output", "public")
    old = dict(pages(repo / "public"))

    def broken(data: Any) -> Iterator[tuple[str, str]]:
        yield "index.html", "<!DOCTYPE html>"
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(rendering, "pages", broken)
    assert cli("site", "--output", "public").code == 70
    assert dict(pages(repo / "public")) == old
    assert sorted(p.name for p in repo.iterdir() if "public" in p.name) == ["public"]


def test_a_build_killed_before_the_swap_leaves_the_old_site_and_is_swept(repo: Path) -> None:
    first = run_process("site", "--output", "out", cwd=repo)
    assert first.code == 0, first.err
    old = dict(pages(repo / "out"))
    (repo / "models/sentiment/step-100.pt.ckpt.yaml").unlink()
    commit(repo, "drop a card")
    killed = run_process(
        "site", "--output", "out", cwd=repo, env={"DVCCKPT_FAULT_POINT": "site-before-swap"}
    )
    assert killed.code == -9
    assert dict(pages(repo / "out")) == old
    assert any(p.name.endswith(".building") for p in repo.iterdir())
    again = run_process("site", "--output", "out", cwd=repo)
    assert again.code == 0, again.err
    assert not any(p.name.startswith(".out.") for p in repo.iterdir())
    assert len(dict(pages(repo / "out"))) == len(old) - 1


def test_model_cards_rendered_in_worker_processes_and_cached_by_blob(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dvcckpt.present import modelcard
    from dvcckpt.project import Project
    from dvcckpt.publish import sitecards

    project = Project.discover()
    cards = [(v.blob, v.card or {}) for v in project.catalog.find()]
    monkeypatch.setattr(sitecards, "PARALLEL_FROM", 1)
    monkeypatch.setattr(sitecards, "CHUNK", 2)
    parallel = sitecards.ModelCards(project, modelcard.render, "v1")
    parallel.prepare(cards)
    assert {b: parallel.get(b, c) for b, c in cards} == {
        b: (modelcard.render(c), None) for b, c in cards
    }
    parallel.save()

    def refuse(card: Any) -> str:
        raise AssertionError("a cached model card was rendered again")

    cached = sitecards.ModelCards(project, refuse, "v1")
    cached.prepare(cards)
    assert cached.get(*cards[0])[0] == modelcard.render(cards[0][1])
    other = sitecards.ModelCards(project, lambda card: "new renderer", "v2")
    assert other.get(*cards[0]) == ("new renderer", None)


def test_a_long_checkpoint_table_keeps_the_newest_and_every_holder(
    repo: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dvcckpt.present import sitemodel

    monkeypatch.setattr(sitemodel, "MAX_TABLE_ROWS", 1)
    git(repo, "checkout", "-q", "-b", "newer")
    write_checkpoint(repo / "models/sentiment/step-400.pt", seed=400)
    run("add", "models/sentiment/step-400.pt", "-m", "dev.macro_f1=0.7", "--run", RUN)
    commit(repo, "a newer checkpoint")
    site = Path(build(cli)["output"])
    table = page_of(site, "models/sentiment").split('id="checkpoints"')[1].split("</table>")[0]
    assert table.count("<tr>") == 1 + 2  # the newest (400) and the dev holder (300)
    assert name(400) in table and name(300) in table and name(200) not in table
    assert "2 older ones: dvcckpt find --model sentiment" in page_of(site, "models/sentiment")


# -- cards the site must not trust -------------------------------------------------------


def card_repo(template_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cards"
    shutil.copytree(template_repo, root, symlinks=True)
    monkeypatch.chdir(root)
    (root / "gates.yaml").write_text("version: 1\ngates: []\n")
    (root / "models/sentiment").mkdir(parents=True)
    return root


def test_a_rerun_writing_where_the_holder_was_does_not_inherit_its_stage(
    template_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    """The holder is the card the decision names and binds (name, sha256), never whatever
    card now sits at its path; a holder whose card is gone or retired is shown as such."""
    root = card_repo(template_repo, tmp_path, monkeypatch)
    path = root / "models/sentiment/step-100.pt.ckpt.yaml"
    path.write_text(card_text("sentiment-old-step100", "sentiment", 100, {"test": {"f1": 0.9}}))
    commit(root, "a card")
    run("promote", "sentiment-old-step100", "--to", "production", "--rationale", "best")
    commit(root, "promote")
    promoted = yaml.safe_load(path.read_text())
    rerun = yaml.safe_load(
        card_text("sentiment-new-step100", "sentiment", 100, {"test": {"f1": 0.1}})
    )
    rerun["checkpoint"]["sha256"] = "c" * 64
    path.write_text(yaml.safe_dump(rerun))
    commit(root, "a re-run into the same folder")
    site = Path(build(cli)["output"])
    new = page_of(site, "checkpoints/sentiment-new-step100")
    assert "<dt>holds</dt><dd>no stage</dd>" in new
    held = page_of(site, "models/sentiment").split("<dl>")[1].split("</dl>")[0]
    assert "sentiment-old-step100" in held and "not in this site" in held and "href" not in held
    index = (site / "index.html").read_text()
    assert "sentiment-new-step100" not in index and "not in this site" in index

    # The old card back (retired), the re-run's card beside it: the holder is the old one.
    old = {**promoted, "tombstone": {"reason": "superseded by a re-run", "at": "2026-01-06"}}
    path.with_name("step-100.pt.rerun.ckpt.yaml").write_text(yaml.safe_dump(rerun))
    path.write_text(yaml.safe_dump(old))
    commit(root, "retire the old card, keep the re-run's")
    site = Path(build(cli)["output"])
    held = page_of(site, "models/sentiment").split("<dl>")[1].split("</dl>")[0]
    assert "sentiment-old-step100</a>" in held and "(retired)" in held
    assert "<dt>holds</dt><dd>production</dd>" in page_of(site, "checkpoints/sentiment-old-step100")
    assert "<dt>holds</dt><dd>no stage</dd>" in page_of(site, "checkpoints/sentiment-new-step100")


@pytest.mark.parametrize("model", ["", "model: {a: 1}\n", "model: [x]\n", "model: 7\n"])
def test_a_card_without_a_model_name_gets_its_own_section(
    template_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli, model: str
) -> None:
    root = card_repo(template_repo, tmp_path, monkeypatch)
    (root / "models/sentiment/step-1.pt.ckpt.yaml").write_text(
        card_text("sentiment-step1", "sentiment", 1, {"test": {"f1": 0.8}})
    )
    (root / "models/nomodel.pt.ckpt.yaml").write_text(
        f"name: nomodel\n{model}checkpoint: {{step: 1}}\nmetrics: {{test: {{f1: 0.3}}}}\n"
    )
    commit(root, "two cards, one without a model name")
    site = Path(build(cli)["output"])
    index = (site / "index.html").read_text()
    assert "(no model)" in index and "sentiment" in index
    assert "nomodel" in page_of(site, "checkpoints/nomodel")
    for _, text in pages(site):
        parse(text)


def test_a_dense_lineage_keeps_every_page_small_and_follows_only_the_sites_scope(
    template_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    """25 cards that each list the 24 others (600 edges per card's lineage unbounded), and a
    grandparent only on a branch: followed with --all, not at HEAD."""
    from dvcckpt.present.lineage import MAX_EDGES

    root = card_repo(template_repo, tmp_path, monkeypatch)
    names = [f"dense-n{i:02d}" for i in range(25)]
    for i, own in enumerate(names):
        parents = [{"name": o, "relation": "from"} for o in names if o != own]
        (root / f"models/sentiment/{i}.pt.ckpt.yaml").write_text(
            card_text(own, "sentiment", i, {"test": {"f1": 0.5}}, parents=parents)
        )
    (root / "models/child.pt.ckpt.yaml").write_text(
        card_text("child", "other", 1, {"test": {"f1": 0.5}}, parents=[{"name": "parent"}])
    )
    (root / "models/parent.pt.ckpt.yaml").write_text(
        card_text("parent", "other", 2, {"test": {"f1": 0.5}}, parents=[{"name": "grandpa"}])
    )
    commit(root, "dense cards")
    git(root, "checkout", "-qb", "side")
    (root / "models/grandpa.pt.ckpt.yaml").write_text(
        card_text("grandpa", "other", 3, {"test": {"f1": 0.5}}, parents=[{"name": "adam"}])
    )
    commit(root, "a grandparent on a branch")
    git(root, "checkout", "-q", "main")
    written = build(cli)
    assert written["largest"]["bytes"] < 200_000
    dense = page_of(Path(written["output"]), "checkpoints/dense-n00").split("<h2>Lineage</h2>")[1]
    listed = dense.split("<ul>")[1].split("</ul>")[0]
    assert listed.count("<li>") == MAX_EDGES + 1
    assert f"… and {24 * 25 - MAX_EDGES} more parent link(s), not listed" in listed
    child = page_of(Path(written["output"]), "checkpoints/child").split("<h2>Lineage</h2>")[1]
    assert "grandpa" in child and "adam" not in child
    everything = build(cli, "--all")
    child = page_of(Path(everything["output"]), "checkpoints/child").split("<h2>Lineage</h2>")[1]
    assert "adam" in child


def test_a_page_over_the_size_limit_is_refused_and_the_old_site_stays(repo: Path, cli) -> None:
    from dvcckpt.errors import StateError
    from dvcckpt.publish import sitefiles

    build(cli, "--output", "public")
    old = dict(pages(repo / "public"))
    huge = "<!DOCTYPE html>" + "x" * sitefiles.MAX_PAGE_BYTES
    with pytest.raises(StateError, match="over the 2 MiB a page may be") as refused:
        sitefiles.write(repo / "public", [("index.html", "ok"), ("models/big.html", huge)])
    assert "models/big.html" in refused.value.message and refused.value.hint
    assert dict(pages(repo / "public")) == old
    assert sorted(p.name for p in repo.iterdir() if "public" in p.name) == ["public"]


def test_a_symlinked_output_is_refused_and_leftover_links_are_swept(repo: Path, cli) -> None:
    import subprocess

    target = repo.parent / "target"
    target.mkdir()
    (repo / "site").symlink_to(target, target_is_directory=True)
    result = cli("site")
    assert result.code == 2 and "is a symbolic link" in result.err and "hint:" in result.err
    assert "Traceback" not in result.err and (repo / "site").is_symlink()
    assert not any(target.iterdir()) and not any(
        p.name.startswith(".site.") for p in repo.iterdir()
    )
    (repo / "site").unlink()
    (target / "keep.txt").write_text("not the site's")

    # A link left by an older build, renamed aside by a process that is gone: swept by
    # unlinking it, never by following it.
    dead = subprocess.Popen(["true"])
    dead.wait()
    leftover = repo / f".site.{dead.pid}-0123abcd.old"
    leftover.symlink_to(target, target_is_directory=True)
    build(cli)
    assert not os.path.lexists(leftover) and (repo / "site/index.html").exists()
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def test_the_model_card_cache_key_covers_every_module_the_renderer_uses(tmp_path: Path) -> None:
    """A changed renderer (its YAML writer, its text helpers, its template) never serves
    texts cached by the old one."""
    from dvcckpt.cli import site as command

    sources = command.renderer_sources()
    names = {str(p.relative_to(Path(command.__file__).parents[2])) for p in sources}
    assert {"dvcckpt/present/modelcard.py", "dvcckpt/present/text.py",
            "dvcckpt/adapters/yamldoc.py", "dvcckpt/adapters/yamlfast.py",
            "templates/model_card.md"} <= names  # fmt: skip
    copies = []
    for number, source in enumerate(sources):
        copy = tmp_path / f"{number}-{source.name}"
        copy.write_bytes(source.read_bytes())
        copies.append(copy)
    before = command._renderer_version(*copies)
    assert before == command._renderer_version(*copies)
    for copy in copies:
        copy.write_bytes(copy.read_bytes() + b"\n# changed\n")
        assert command._renderer_version(*copies) != before
        before = command._renderer_version(*copies)
