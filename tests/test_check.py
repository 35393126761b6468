"""`dvcckpt check` rules, `doctor`, `init`, `migrate` and `install-hook` on real repositories."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

from dvcckpt.cards import card
from tests.conftest import git, write_checkpoint


def staged_card(repo: Path, cli, name: str = "m/step-1.pt", *args: str) -> Path:
    write_checkpoint(repo / name)
    result = cli("add", name, *args)
    assert result.code == 0, result.err
    return repo / f"{name}.ckpt.yaml"


def findings(cli, *args: str) -> list[dict[str, str]]:
    result = cli("check", "--json", *args)
    return json.loads(result.out)["findings"]


def test_clean_staged_card_passes(repo: Path, cli) -> None:
    staged_card(repo, cli)
    result = cli("check")
    assert result.code == 0 and "ok: 1 card(s) checked" in result.err


def test_all_schema_violations_are_listed_with_field_paths(repo: Path, cli) -> None:
    card_file = staged_card(repo, cli, "m/step-1.pt", "-m", "dev.f1=0.5")
    text = card_file.read_text().replace("kind: full", "kind: fp8").replace("f1: 0.5", "f1: .nan")
    card_file.write_text(text + "surprise: 1\n")
    result = cli("check", str(card_file))
    assert result.code == 1
    assert "m/step-1.pt.ckpt.yaml: checkpoint.kind: 'fp8' is not one of" in result.out
    assert "metrics.dev.f1: nan is not a finite number" in result.out
    assert "surprise: unknown field (extensions go under `x-` keys)" in result.out
    assert result.err.startswith("error: 3 problem(s) in 1 file(s)")


def test_naming_convention_is_enforced_unless_disabled(repo: Path, cli) -> None:
    # add refuses such names itself; registered while naming is off, they meet the hook
    # once it is on again.
    (repo / "dvcckpt.yaml").write_text("version: 1\nproject: p\nnaming: {enforce: false}\n")
    staged_card(repo, cli, "m/a.pt", "--name", "my-favourite", "--step", "3")
    staged_card(repo, cli, "m/b.pt", "--step", "4", "--run", "final-run")
    (repo / "dvcckpt.yaml").unlink()
    found = {(f["file"], f["field"]) for f in findings(cli)}
    assert ("m/a.pt.ckpt.yaml", "name") in found and ("m/b.pt.ckpt.yaml", "run.name") in found
    (repo / "dvcckpt.yaml").write_text("version: 1\nproject: p\nnaming: {enforce: false}\n")
    assert findings(cli) == []


def test_name_must_agree_with_the_fields_it_encodes(repo: Path, cli) -> None:
    card_file = staged_card(repo, cli, "m/step-5.pt")
    card_file.write_text(card_file.read_text().replace("step: 5", "step: 6"))
    messages = [f["message"] for f in findings(cli, str(card_file))]
    assert "encodes step 5 but the card says 6" in messages


def test_required_fields_follow_the_phase_policy(repo: Path, cli) -> None:
    (repo / "dvcckpt.yaml").write_text(
        "version: 1\nproject: p\nrequired:\n  all: [seeds.seed]\n"
        "  phases: {finetune: [data.splits, code.commit]}\n"
    )
    staged_card(repo, cli, "m/step-1.pt", "--phase", "finetune", "--draft")
    found = {f["field"]: f["message"] for f in findings(cli)}
    assert found["seeds.seed"] == "is missing (required for every card by dvcckpt.yaml)"
    assert found["data.splits"] == "is missing (required for phase 'finetune' by dvcckpt.yaml)"
    assert "code.commit" not in found  # captured automatically


def test_card_must_sit_beside_its_checkpoint_and_pointer_be_staged(repo: Path, cli) -> None:
    card_file = staged_card(repo, cli)
    moved = repo / "other/step-1.pt.ckpt.yaml"
    moved.parent.mkdir()
    moved.write_text(card_file.read_text())
    git(repo, "add", "other/step-1.pt.ckpt.yaml")
    git(repo, "reset", "--quiet", "m/step-1.pt.dvc")
    found = {(f["file"], f["field"]) for f in findings(cli)}
    assert ("other/step-1.pt.ckpt.yaml", "checkpoint.path") in found
    assert ("m/step-1.pt.ckpt.yaml", "checkpoint.dvc") in found


def test_symlink_leading_outside_the_repository_is_refused(repo: Path, cli, tmp_path) -> None:
    card_file = staged_card(repo, cli, "m/step-1.pt")
    (repo / "m/step-1.pt").unlink()
    (repo / "m/step-1.pt").symlink_to(write_checkpoint(tmp_path / "outside.pt"))
    messages = [f["message"] for f in findings(cli, str(card_file))]
    assert "'m/step-1.pt' is a symlink leading outside the repository" in messages


def test_invalid_project_config_is_reported(repo: Path, cli) -> None:
    (repo / "dvcckpt.yaml").write_text("version: 1\nproject: p\nstages: production\n")
    git(repo, "add", "dvcckpt.yaml")
    found = findings(cli)
    assert found[0]["file"] == "dvcckpt.yaml" and "stages" in found[0]["message"]


def test_check_all_against_a_base_revision(repo: Path, cli) -> None:
    card_file = staged_card(repo, cli, "m/step-1.pt", "-p", "lr=0.1")
    git(repo, "commit", "-qm", "add")
    base = git(repo, "rev-parse", "HEAD").strip()
    card_file.write_text(card_file.read_text().replace("lr: 0.1", "lr: 0.2"))
    git(repo, "commit", "-qam", "tamper", "--no-verify")
    assert cli("check", "--all").code == 0  # nothing staged differs from HEAD
    fields = [f["field"] for f in findings(cli, "--all", "--base", base)]
    assert "params.lr" in fields
    unknown = cli("check", "--all", "--base", "no-such-branch")
    assert unknown.code == 4 and "unknown revision" in unknown.err


def test_a_name_must_carry_the_cards_own_run_id(repo: Path, cli) -> None:
    card_file = staged_card(repo, cli, "m/step-1.pt", "--step", "1", "--run-id", "aaa111")
    text = card_file.read_text()
    assert "-aaa111-step000001" in text
    card_file.write_text(text.replace("-aaa111-step000001", "-abc123-step000001", 1))
    git(repo, "add", str(card_file))
    found = [f for f in findings(cli) if f["field"] == "name"]
    assert found and "run id 'abc123'" in found[0]["message"] and "aaa111" in found[0]["message"]


def test_a_review_judges_names_under_the_base_settings_not_the_change(repo: Path, cli) -> None:
    # A pull request that turns naming off and adds a card the base's pattern refuses:
    # its own commit went past the hook (--no-verify); the review still refuses it.
    base = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-qb", "relax")
    (repo / "dvcckpt.yaml").write_text("version: 1\nproject: p\nnaming: {enforce: false}\n")
    staged_card(repo, cli, "m/a.pt", "--name", "totally-bogus", "--step", "3")
    git(repo, "add", "dvcckpt.yaml")
    git(repo, "commit", "-qm", "relax naming", "--no-verify")
    assert findings(cli, "--all") == []  # by the branch's own settings it looks fine
    fields = {(f["file"], f["field"]) for f in findings(cli, "--all", "--base", base)}
    assert ("m/a.pt.ckpt.yaml", "name") in fields
    (repo / "dvcckpt.yaml").write_text("version: 1\nproject: p\nstages: nope\n")
    git(repo, "commit", "-qam", "break the settings", "--no-verify")
    broken_base = git(repo, "rev-parse", "HEAD").strip()  # a base whose settings are broken
    broken = findings(cli, "--all", "--base", broken_base)
    assert any(f["file"].endswith(":dvcckpt.yaml") and "base" in f["message"] for f in broken)


def test_the_hint_fits_the_findings(repo: Path, cli) -> None:
    card_file = staged_card(repo, cli, "m/step-1.pt", "-p", "lr=0.1")
    git(repo, "commit", "-qm", "add")
    card_file.write_text(card_file.read_text().replace("lr: 0.1", "lr: 0.2"))
    git(repo, "add", str(card_file))
    tampered = cli("check")
    assert tampered.code == 1 and "hint: committed fields cannot change" in tampered.err
    git(repo, "checkout", "--", ".")
    git(repo, "reset", "-q", "--hard")
    other = staged_card(repo, cli, "m/step-2.pt")
    other.write_text(other.read_text().replace("kind: full", "kind: fp8"))
    git(repo, "add", str(other))
    invalid = cli("check")
    assert invalid.code == 1 and "hint: fix the problems listed above" in invalid.err


def downgrade_to_1_0(card_file: Path) -> None:
    text = card_file.read_text().replace("version: '1.1'", "version: '1.0'")
    card_file.write_text(
        "".join(line for line in text.splitlines(True) if "serialization" not in line)
    )


def test_migrate_upgrades_old_cards_and_the_hook_accepts_both(repo: Path, cli) -> None:
    card_file = staged_card(repo, cli, "m/step-1.safetensors")
    downgrade_to_1_0(card_file)
    card_file.write_text(card_file.read_text().replace("model: m\n", "model: m  # team model\n"))
    assert card.read(card_file).data["schema"]["version"] == "1.0"
    git(repo, "add", "--all")
    assert cli("check").code == 0  # a 1.0 card is valid
    git(repo, "commit", "-qm", "old card", "--no-verify")

    result = cli("migrate")
    assert result.code == 0 and "migrated m/step-1.safetensors.ckpt.yaml: 1.0 -> 1.1" in result.out
    data = card.read(card_file).data
    assert data["schema"]["version"] == "1.1"
    assert data["checkpoint"]["serialization"] == "safetensors"
    assert "model: m  # team model" in card_file.read_text()
    assert cli("check").code == 0  # migrating is not tampering
    assert "0 of 1 card(s) needed migration" in cli("migrate").out


def test_doctor_lists_missing_recommended_fields(repo: Path, cli) -> None:
    card_file = staged_card(repo, cli, "m/step-1.pt", "--seed", "3", "-m", "dev.class_f1.neg=0.5")
    report = json.loads(cli("doctor", "--json").out)
    assert report[0]["name"] == card.read(card_file).data["name"]
    assert "seeds.seed" not in report[0]["missing"]
    assert "metrics.<split>.<per-class>" not in report[0]["missing"]
    assert {"data.splits", "code.config_file", "resources.latency_ms_p95"} <= set(
        report[0]["missing"]
    )
    text = cli("doctor")
    assert text.code == 0 and "data.splits: log split hashes" in text.out
    assert cli("doctor", "--strict").code == 1


def test_init_scaffolds_idempotently_and_merges_pre_commit_config(tmp_path: Path, cli) -> None:
    target = tmp_path / "proj"
    target.mkdir()
    (target / ".pre-commit-config.yaml").write_text(
        "# team hooks\nrepos:\n  - repo: https://github.com/psf/black\n    rev: 24.1.0\n"
        "    hooks:\n      - id: black  # formatter\n"
    )
    first = json.loads(cli("init", str(target), "--project", "sentiment", "--json").out)
    assert {a["path"]: a["action"] for a in first} == {
        ".git": "initialised", ".dvc": "initialised", "dvcckpt.yaml": "created",
        "gates.yaml": "created", ".github/workflows/dvcckpt.yml": "created",
        ".github/workflows/dvcckpt-comment.yml": "created",
        ".github/workflows/dvcckpt-publish.yml": "created",
        ".github/pull_request_template.md": "created", ".pre-commit-config.yaml": "merged",
        ".github/CODEOWNERS": "created",
    }  # fmt: skip
    merged = (target / ".pre-commit-config.yaml").read_text()
    assert "# team hooks" in merged and "# formatter" in merged
    hooks = [h["id"] for r in yaml.safe_load(merged)["repos"] for h in r["hooks"]]
    assert hooks == ["black", "dvcckpt-check"]
    assert yaml.safe_load((target / "dvcckpt.yaml").read_text())["project"] == "sentiment"
    second = json.loads(cli("init", str(target), "--json").out)
    assert {a["action"] for a in second} == {"kept"}
    assert (target / ".pre-commit-config.yaml").read_text() == merged


def test_init_config_and_gates_templates_are_valid(tmp_path: Path, cli) -> None:
    assert cli("init", str(tmp_path / "p")).code == 0
    from dvcckpt.project import load_config

    loaded = load_config(tmp_path / "p")
    assert loaded.project == "p" and loaded.primary_metric == "dev.macro_f1"
    gates = yaml.safe_load((tmp_path / "p/gates.yaml").read_text())
    assert [r["name"] for r in gates["gates"][0]["rules"]][:2] == [
        "test-macro-f1",
        "test-class-f1-floor",
    ]


def test_install_hook_never_clobbers_a_foreign_hook(repo: Path, cli) -> None:
    hook = repo / ".git/hooks/pre-commit"
    hook.write_text("#!/bin/sh\necho team hook\n")
    result = cli("install-hook")
    assert result.code == 4 and "already exists" in result.err
    assert hook.read_text() == "#!/bin/sh\necho team hook\n"
    assert cli("install-hook", "--force").code == 0
    assert cli("install-hook").code == 0  # re-installing our own hook is fine


def test_broken_gates_file_is_caught_at_commit_time(repo: Path, cli) -> None:
    (repo / "gates.yaml").write_text("version: 1\ngates:\n  - stage: production\n    rules: []\n")
    git(repo, "add", "gates.yaml")
    found = findings(cli)
    assert found[0]["file"] == "gates.yaml" and "rules" in found[0]["message"]


def test_version_aware_directory_pointer_is_accepted(repo: Path, cli) -> None:
    # After a push to a version-aware remote, DVC lists a directory's files in the .dvc file
    # instead of the `.dir` md5; the hook recomputes that md5 from the list (fail closed).
    folder = repo / "m/checkpoint-7"
    write_checkpoint(folder / "a.bin", size=100)
    write_checkpoint(folder / "b.bin", size=50, seed=1)
    assert cli("add", "m/checkpoint-7").code == 0
    pointer = repo / "m/checkpoint-7.dvc"

    def listing(sizes: dict[str, int], md5s: dict[str, str]) -> str:
        files = "".join(
            f"  - relpath: {n}\n    md5: '{md5s[n]}'\n    size: {s}\n    version_id: v1\n"
            for n, s in sizes.items()
        )
        return f"outs:\n- path: checkpoint-7\n  files:\n{files}  hash: md5\n"

    sizes = {"a.bin": 100, "b.bin": 50}
    md5s = {n: hashlib.md5((folder / n).read_bytes()).hexdigest() for n in sizes}
    pointer.write_text(listing(sizes, md5s))
    git(repo, "add", "m/checkpoint-7.dvc")
    assert findings(cli) == []
    pointer.write_text(listing({**sizes, "b.bin": 51}, md5s))
    git(repo, "add", "m/checkpoint-7.dvc")
    assert [f["field"] for f in findings(cli)] == ["checkpoint.dvc.size"]
    pointer.write_text(listing(sizes, {**md5s, "b.bin": "0" * 32}))
    git(repo, "add", "m/checkpoint-7.dvc")
    assert [f["field"] for f in findings(cli)] == ["checkpoint.dvc.md5"]
    good = listing(sizes, md5s)
    for old, broken in (
        (md5s["a.bin"], "z" * 32),  # not an md5
        (f"'{md5s['a.bin']}'", "12"),  # a number
        ("relpath: a.bin", "relpath: [a.bin]"),
        (f"    md5: '{md5s['a.bin']}'\n", ""),  # an entry without md5
    ):
        pointer.write_text(good.replace(old, broken))
        git(repo, "add", "m/checkpoint-7.dvc")
        assert [f["field"] for f in findings(cli)] == ["checkpoint.dvc"], broken


def test_first_commit_of_a_repository_is_checked(tmp_path: Path, cli, monkeypatch) -> None:
    root = tmp_path / "fresh"
    assert cli("init", str(root)).code == 0
    monkeypatch.chdir(root)
    git(root, "config", "user.email", "ada@example.com")
    git(root, "config", "user.name", "Ada")
    write_checkpoint(root / "m/step-1.pt")
    # No commit yet, so no code.commit that the new dvcckpt.yaml requires: a draft.
    assert cli("add", "m/step-1.pt", "--seed", "1", "--draft").code == 0
    card_file = root / "m/step-1.pt.ckpt.yaml"
    card_file.write_text(card_file.read_text().replace("kind: full", "kind: fp8"))
    git(root, "add", "m/step-1.pt.ckpt.yaml")
    assert "checkpoint.kind" in [f["field"] for f in findings(cli)]
