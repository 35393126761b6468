"""Setting up signed promotions: `init` with and without an SSH signing key, CODEOWNERS,
the doctor's warning and signed GTO tags, on real git repositories and `ssh-keygen` keys."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from dvcckpt.adapters import signing
from dvcckpt.core.config import Owner
from dvcckpt.project import load_config
from tests.conftest import git, write_checkpoint

SIGNERS = ".dvcckpt/allowed_signers"
POLICY_PATTERNS = {"/dvcckpt.yaml", "/gates.yaml", "/.dvcckpt/allowed_signers", "/.dvc/config",
                   "/.github/workflows/", "/.github/CODEOWNERS"}  # fmt: skip


def keygen(directory: Path, who: str = "a@example.com") -> Path:
    key = directory / "keys" / "signer"
    key.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", who, "-f", str(key)],
                   check=True)  # fmt: skip
    return key


def public_fields(key: Path) -> str:
    return " ".join(key.with_suffix(".pub").read_text().split()[:2])


@pytest.fixture
def key(repo: Path, tmp_path: Path) -> Path:
    """An ed25519 key that git in `repo` signs with, as a@example.com (repository config)."""
    made = keygen(tmp_path)
    git(repo, "config", "user.email", "a@example.com")
    git(repo, "config", "gpg.format", "ssh")
    git(repo, "config", "user.signingkey", str(made.with_suffix(".pub")))  # git's usual form
    return made


def init(cli, repo: Path) -> dict[str, str]:
    result = cli("init", str(repo), "--json")
    assert result.code == 0, result.err
    return {a["path"]: a["action"] for a in json.loads(result.out)}


def signer_lines(repo: Path) -> list[str]:
    text = (repo / SIGNERS).read_text()
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def codeowners(path: Path) -> dict[str, str]:
    rules = [line.split() for line in path.read_text().splitlines()]
    return {rule[0]: rule[1] for rule in rules if rule and not rule[0].startswith("#")}


def test_init_with_a_signing_key_requires_signed_decisions(repo: Path, cli, key: Path) -> None:
    actions = init(cli, repo)
    assert actions["dvcckpt.yaml"] == "created" and actions[SIGNERS] == "created"
    config = load_config(repo)  # validates against the config schema
    assert config.require_signed is True and config.allowed_signers == SIGNERS
    assert config.owners == (Owner("*", "*", ("a@example.com",)),)
    assert signer_lines(repo) == [f'a@example.com namespaces="dvcckpt" {public_fields(key)}']
    # The file init wrote verifies what this key signs, for this principal only.
    signature = signing.sign(b"decision", key)
    allowed = (repo / SIGNERS).read_text()
    assert signing.verify(b"decision", signature, allowed, "a@example.com") is None
    assert signing.verify(b"decision", signature, allowed, "m@example.com") is not None
    doctor = json.loads(cli("doctor", "--json").out)
    assert not [row for row in doctor if row["name"] == "promotion signing"]


def test_init_without_a_key_leaves_signing_off_and_doctor_warns(repo: Path, cli) -> None:
    actions = init(cli, repo)
    assert SIGNERS not in actions and not (repo / SIGNERS).exists()
    config = load_config(repo)
    assert config.require_signed is False and config.allowed_signers is None
    assert config.owners == ()
    text = (repo / "dvcckpt.yaml").read_text()
    assert "  require_signed: false\n" in text
    assert f"  # allowed_signers: {SIGNERS}\n" in text  # named, ready to uncomment
    assert "git config gpg.format ssh" in text and "ada@example.com" in text
    doctor = json.loads(cli("doctor", "--json").out)
    assert {"card": "dvcckpt.yaml", "name": "promotion signing",
            "missing": ["promotion.require_signed"], "error": None} in doctor  # fmt: skip
    shown = cli("doctor")
    assert shown.code == 0  # a warning, like the other doctor findings...
    assert "promotion.require_signed: count only SSH-signed decisions" in shown.out
    assert cli("doctor", "--strict").code == 1  # ...that --strict turns into a failure


def test_doctor_warns_when_signing_is_required_without_allowed_signers(repo: Path, cli) -> None:
    (repo / "dvcckpt.yaml").write_text(
        "version: 1\nproject: demo\npromotion:\n  require_signed: true\n"
        f"  allowed_signers: {SIGNERS}\n"
    )
    (repo / ".dvcckpt").mkdir()
    (repo / SIGNERS).write_text("# nobody yet\n")
    rows = {r["name"]: r["missing"] for r in json.loads(cli("doctor", "--json").out)}
    assert rows["promotion signing"] == ["promotion.allowed_signers"]


@pytest.mark.parametrize("with_key", [True, False])
def test_init_twice_keeps_everything(repo: Path, cli, tmp_path: Path, with_key: bool) -> None:
    if with_key:
        keygen(tmp_path)
        git(repo, "config", "gpg.format", "ssh")
        git(repo, "config", "user.signingkey", str(tmp_path / "keys/signer"))
    first = init(cli, repo)
    assert (SIGNERS in first) is with_key
    written = {p: (repo / p).read_text() for p in first if (repo / p).is_file()}
    second = init(cli, repo)
    assert second.keys() == first.keys() - {".git", ".dvc"}
    assert set(second.values()) == {"kept"}
    assert {p: (repo / p).read_text() for p in written} == written


def test_codeowners_covers_the_policy_paths(repo: Path, cli) -> None:
    assert init(cli, repo)[".github/CODEOWNERS"] == "created"
    path = repo / ".github/CODEOWNERS"
    assert codeowners(path) == dict.fromkeys(POLICY_PATTERNS, "@OWNER")
    assert "Replace @OWNER" in path.read_text() and "Require\n# review from Code Owners" in (
        path.read_text()
    )


def test_codeowners_uses_a_known_github_handle(repo: Path, cli) -> None:
    git(repo, "config", "github.user", "ada-lovelace")
    init(cli, repo)
    path = repo / ".github/CODEOWNERS"
    assert codeowners(path) == dict.fromkeys(POLICY_PATTERNS, "@ada-lovelace")
    assert "@OWNER" not in path.read_text()


def test_codeowners_merges_into_the_file_github_already_reads(repo: Path, cli) -> None:
    (repo / "CODEOWNERS").write_text("* @acme/everyone\ngates.yaml @acme/ml-leads  # theirs\n")
    actions = init(cli, repo)
    assert actions["CODEOWNERS"] == "merged" and ".github/CODEOWNERS" not in actions
    assert not (repo / ".github/CODEOWNERS").exists()  # it would shadow the root file
    rules = codeowners(repo / "CODEOWNERS")
    assert rules["*"] == "@acme/everyone" and rules["gates.yaml"] == "@acme/ml-leads"
    assert "/gates.yaml" not in rules  # already owned: left to the team
    expected = POLICY_PATTERNS - {"/gates.yaml", "/.github/CODEOWNERS"} | {"/CODEOWNERS"}
    assert {p for p, owner in rules.items() if owner == "@OWNER"} == expected
    merged = (repo / "CODEOWNERS").read_text()
    assert init(cli, repo)["CODEOWNERS"] == "kept"
    assert (repo / "CODEOWNERS").read_text() == merged


NAME = "sentiment-train-full-r1-step000100"  # init's pattern carries the run id


def merged_promotion(repo: Path, cli) -> None:
    """After `init`: one checkpoint on main, promoted to dev in a merged branch."""
    init(cli, repo)
    git(repo, "add", "--all")
    git(repo, "commit", "-qm", "dvcckpt init")
    write_checkpoint(repo / "models/sentiment/step-100.pt")
    added = cli(
        "add", "models/sentiment/step-100.pt", "--seed", "42", "-m", "dev.macro_f1=0.8",
        "--run-id", "r1",
    )  # fmt: skip
    assert added.code == 0, added.err
    git(repo, "commit", "-qm", "checkpoint")
    git(repo, "checkout", "-qb", "promote")
    promoted = cli("promote", NAME, "--to", "dev", "--rationale", "ok")
    assert promoted.code == 0, promoted.err
    git(repo, "commit", "-qm", "promote to dev")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "promote", "-m", "Merge promote")


def decision(repo: Path) -> dict[str, object]:
    card = yaml.safe_load((repo / "models/sentiment/step-100.pt.ckpt.yaml").read_text())
    last: dict[str, object] = card["decisions"][-1]
    return last


def holder(cli) -> str:
    return str(
        json.loads(cli("stages", "sentiment", "--json").out)["holders"]["sentiment@dev"]["name"]
    )


def test_tag_signs_gto_tags_with_the_configured_key(repo: Path, cli, key: Path) -> None:
    merged_promotion(repo, cli)
    assert "signature" in decision(repo)
    assert holder(cli) == NAME  # counted under init's policy
    tagged = cli("tag")
    assert tagged.code == 0, tagged.err
    assert "tagged sentiment@v0.1.0 (signed)" in tagged.out
    assert "tagged sentiment#dev#1 (signed)" in tagged.out
    # Tags are signed in git's namespace; verify them with a git allowed-signers file.
    git_signers = repo.parent / "git_allowed_signers"
    git_signers.write_text(f'a@example.com namespaces="git" {public_fields(key)}\n')
    for tag in ("sentiment@v0.1.0", "sentiment#dev#1"):
        done = subprocess.run(
            ["git", "-C", str(repo), "-c", f"gpg.ssh.allowedSignersFile={git_signers}",
             "tag", "-v", tag],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert 'Good "git" signature for a@example.com' in done.stderr
    assert cli("tag").out.strip() == "nothing to tag"  # signed tags are recognised too


def test_tag_without_a_key_writes_unsigned_annotated_tags(repo: Path, cli) -> None:
    merged_promotion(repo, cli)
    assert "signature" not in decision(repo)
    assert holder(cli) == NAME  # unsigned counts: not required
    tagged = cli("tag")
    assert tagged.code == 0 and "tagged sentiment@v0.1.0\n" in tagged.out + "\n"
    assert "(signed)" not in tagged.out
    assert git(repo, "cat-file", "-t", "sentiment@v0.1.0").strip() == "tag"
    assert "SSH SIGNATURE" not in git(repo, "cat-file", "-p", "sentiment@v0.1.0")
