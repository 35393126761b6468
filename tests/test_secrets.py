"""Secrets never reach a card: one redactor for command lines, params, run records, split
values and URLs, end to end through `add`, and `doctor` on committed DVC credentials."""

from __future__ import annotations

import inspect
import json
import time
from pathlib import Path
from typing import Any

import pytest

from dvcckpt.cards import register
from dvcckpt.core import fragments, redaction, runrecord
from tests.conftest import write_checkpoint

HF = "hf_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ012345"
GHP = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
PAT = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"
OPENAI = "sk-proj-" + "Xy7Qa9Lm2Rt5Vb8Nc1Kd4Hf6Jg3Ps0Wz"
AWS = "AKIAIOSFODNN7EXAMPLE"
STS = "ASIAQWERTYUIOP123456"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk"
SLACK = "https://hooks.slack.com/services/T0001/B0002/XyZsecretPart123"
XOXB = "xoxb-123456789012-abcdefABCDEF"
PW = "S3cr3tPW"


# -- command lines: (argv, what must vanish, what must stay) ---------------------------------

COMMANDS = [
    (["--passphrase", PW], PW, "--passphrase"),
    (["--key", PW], PW, "--key"),
    (["--private-key", PW], PW, "--private-key"),
    (["--private-key=" + PW], PW, "--private-key="),
    (["--jwt", JWT], JWT, "--jwt"),
    (["-t", PW], PW, "-t"),
    (["-t=" + PW], PW, "-t="),
    (["--token", PW], PW, "--token"),
    (["--hub-token=" + PW], PW, "--hub-token="),
    (["--password", PW], PW, "--password"),
    (["--secret-key", PW], PW, "--secret-key"),
    (["--client-secret=" + PW], PW, "--client-secret"),
    (["--wandb-api-key", PW], PW, "--wandb-api-key"),
    (["--db-url=postgresql://user:" + PW + "@db.example.com/x"], PW, "db.example.com"),
    (["--db-url", "mysql://root:" + PW + "@10.0.0.1:3306/x"], PW, "10.0.0.1:3306"),
    (["WANDB_API_KEY=" + PW], PW, "WANDB_API_KEY="),
    (["OPENAI_KEY=" + PW], PW, "OPENAI_KEY="),
    (["db.password=" + PW], PW, "db.password="),
    (["+trainer.logger.api_key=" + PW], PW, "api_key="),
    ([HF], HF, "train.py"),
    ([GHP], GHP, "train.py"),
    ([PAT], PAT, "train.py"),
    (["--model", OPENAI], OPENAI, "--model"),
    (["--aws", AWS], AWS, "--aws"),
    (["--id", STS], STS, "--id"),
    (["--notify", SLACK], "XyZsecretPart123", "hooks.slack.com"),
    (["--notify", XOXB], XOXB, "--notify"),
    (["s3://" + AWS + ":" + PW + "@bucket/x"], PW, "bucket/x"),
    (["https://oauth2:" + PW + "@gitlab.example.com/r.git"], PW, "gitlab.example.com"),
    (["-H", "Authorization: Bearer abcdefghijklmnop1234"], "abcdefghijklmnop1234", "Bearer"),
    (["--url", "https://x.example.com/a?token=" + PW + "&page=2"], PW, "page=2"),
]
KEPT = [
    ["--tokenizer", "bert-base-uncased"],
    ["--max_tokens", "100"],
    ["--pad_token", "[PAD]"],
    ["--sort-key", "name"],
    ["--model", "sk-learn-baseline-experiment-v2"],
    ["ssh://git@github.com/org/repo.git"],
    ["--lr", "1e-4", "--use-auth-token", "--epochs", "3"],
]


@pytest.mark.parametrize(("args", "secret", "kept"), COMMANDS)
def test_command_lines_hide_every_secret(args: list[str], secret: str, kept: str) -> None:
    shown = redaction.redact_command(["train.py", *args])
    assert secret not in shown and redaction.REDACTED in shown
    assert kept in shown and "train.py" in shown
    assert secret not in redaction.redact_command_text(" ".join(["train.py", *args]))


@pytest.mark.parametrize("args", KEPT)
def test_command_lines_keep_what_is_no_secret(args: list[str]) -> None:
    import shlex

    assert shlex.split(redaction.redact_command(["train.py", *args])) == ["train.py", *args]


# -- params and any card value ----------------------------------------------------------------

PARAMS: list[tuple[str, Any, bool]] = [
    ("api_key", PW, True),
    ("apiKey", PW, True),
    ("hf_token", "anything", True),
    ("HF_TOKEN", "anything", True),
    ("password", PW, True),
    ("db_password", PW, True),
    ("secret", PW, True),
    ("client_secret", PW, True),
    ("private_key", PW, True),
    ("ssh_key", PW, True),
    ("auth", "user:" + PW, True),
    ("WANDB_API_KEY", PW, True),
    ("credentials", {"user": "ada", "value": PW}, True),
    ("db_url", "postgresql://ada:" + PW + "@db/x", True),
    ("remote", "s3://" + AWS + ":" + PW + "@bucket/p", True),
    ("notes_url", "https://ada:" + PW + "@example.com/", True),
    ("anything", HF, True),
    ("nested", {"deeper": [OPENAI]}, True),
    ("lr", 1e-4, False),
    ("tokenizer", "bert-base", False),
    ("pad_token", "[PAD]", False),
    ("max_tokens", 512, False),
    ("sort_key", "name", False),
    ("use_auth_token", True, False),  # booleans and numbers are never secrets
    ("token_budget", 4096, False),
    ("data_url", "https://example.com/data.csv", False),
]


@pytest.mark.parametrize(("key", "value", "secret"), PARAMS)
def test_params_lose_secret_values_and_keep_the_rest(key: str, value: Any, secret: bool) -> None:
    redacted = redaction.redact_tree({"params": {key: value}})["params"]
    assert list(redacted) == [key]
    if secret:
        assert PW not in json.dumps(redacted) and HF not in json.dumps(redacted)
        assert OPENAI not in json.dumps(redacted) and redaction.REDACTED in json.dumps(redacted)
    else:
        assert redacted[key] == value


def test_metrics_are_numbers_and_stay_as_they_are() -> None:
    metrics = {"dev": {"pass@1": 0.5, "token_f1": 0.7, "secret_recall": 0.2}}
    assert redaction.redact_tree({"metrics": metrics}) == {"metrics": metrics}


URLS = [
    ("postgresql://ada:" + PW + "@db.example.com:5432/x", "postgresql://***@db.example.com:5432/x"),
    ("s3://KEY:" + PW + "@bucket/p", "s3://***@bucket/p"),
    ("https://u:" + PW + "@host/x", "https://***@host/x"),
    ("https://u:p@ss:" + PW + "@host/x", "https://***@host/x"),  # `@` inside the password
    ("redis://:" + PW + "@cache:6379/0", "redis://***@cache:6379/0"),
    ("git+ssh://ada:" + PW + "@git.example.com/r", "git+ssh://***@git.example.com/r"),
    ("https://" + "x" * 40 + "@github.com/o/r", "https://***@github.com/o/r"),  # token as user
    ("ssh://git@github.com/o/r", "ssh://git@github.com/o/r"),
    ("https://host/x?email=a@b.c", "https://host/x?email=a@b.c"),
    ("https://host/x?sig=" + PW + "&X-Amz-Signature=" + PW, "https://host/x?sig=***&X-Amz-Signature=***"),
]  # fmt: skip


@pytest.mark.parametrize(("url", "shown"), URLS)
def test_credentials_leave_urls_of_any_scheme(url: str, shown: str) -> None:
    assert redaction.redact_text(url) == shown
    assert redaction.redact_text(f"see {url} for details") == f"see {shown} for details"


def test_private_key_blocks_and_free_text_tokens() -> None:
    block = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----"
    )
    text = f"key:\n{block}\ntrained with {HF} and {JWT}, token {GHP}; password={PW}"
    shown = redaction.redact_text(text)
    for secret in ("b3BlbnNzaC1rZXk", HF, JWT, GHP, PW):
        assert secret not in shown
    assert shown.startswith("key:\n***\ntrained with ***")


# -- the fragments built from user input ---------------------------------------------------------


def test_options_fragment_redacts_params_splits_and_notes() -> None:
    fragment = fragments.from_options({
        "params": ["hf_token=" + HF, "lr=1e-4", "db_url=postgresql://u:" + PW + "@db/x"],
        "splits": ["train=https://u:" + PW + "@host/train.csv", "dev=sha256:abc"],
        "notes": "pushed with " + GHP,
        "tags": [AWS],
    })  # fmt: skip
    text = json.dumps(fragment)
    assert not any(s in text for s in (HF, PW, GHP, AWS))
    assert fragment["params"]["lr"] == 1e-4
    assert fragment["data"]["splits"] == {
        "train": "https://***@host/train.csv",
        "dev": "sha256:abc",
    }


def test_run_records_redact_known_and_unknown_keys() -> None:
    record = {
        "run_name": "r1",
        "params": {"lr": 0.1, "api_key": PW},
        "code": {"repo": "https://ada:" + PW + "@github.com/o/r.git",
                 "command": ["python", "train.py", "--token", PW, HF],
                 "script": "/home/ada/work/train.py", "config": "/Users/ada/cfg/params.yaml"},
        "dataset": {"name": "tweets", "splits": {"train": "s3://K:" + PW + "@b/train"}},
        "wandb": {"api_key": PW, "entity": "ada"},
        "slack_webhook": SLACK,
        "launcher": {"env": {"HF_TOKEN": HF}},
        "notes": "token " + OPENAI,
    }  # fmt: skip
    fragment = runrecord.to_fragment(record)
    text = json.dumps(fragment)
    assert not any(s in text for s in (PW, HF, OPENAI, "XyZsecretPart123"))
    assert fragment["code"]["script"] == "~/work/train.py"
    assert fragment["code"]["config_file"] == "~/cfg/params.yaml"
    assert fragment["code"]["repo"] == "https://github.com/o/r.git"
    assert fragment["x-run-record"]["wandb"] == {"api_key": "***", "entity": "ada"}


@pytest.mark.parametrize(
    ("path", "home", "shown"),
    [
        ("/home/ada/x/train.py", None, "~/x/train.py"),
        ("/Users/ada/train.py", None, "~/train.py"),
        ("/root/train.py", None, "~/train.py"),
        ("C:\\Users\\ada\\train.py", None, "~\\train.py"),
        ("/scratch/ada/proj/train.py", "/scratch/ada", "~/proj/train.py"),
        ("/opt/jobs/42/train.py", None, "train.py"),
        ("src/train.py", None, "src/train.py"),
    ],
)
def test_recorded_paths_never_name_a_home_folder(path: str, home: str | None, shown: str) -> None:
    assert redaction.portable_path(path, home) == shown


def test_redaction_is_idempotent_and_fast_on_a_10k_argument_command() -> None:
    argv = ["python", "train.py"]
    for index in range(2500):
        argv += [f"--opt{index}", f"value{index}", f"--token{index}", PW, HF]
    start = time.perf_counter()
    shown = redaction.redact_command(argv)
    elapsed = time.perf_counter() - start
    assert PW not in shown and HF not in shown and "--opt2499 value2499" in shown
    assert elapsed < 2.0, f"{elapsed:.2f} s for {len(argv)} arguments"
    card = {"notes": "x" * 1_000_000 + PW, "params": {"pw": PW}}
    once = redaction.redact_tree(card)
    assert redaction.redact_tree(once) == once


def test_deep_nesting_does_not_exhaust_the_stack() -> None:
    value: Any = PW
    for _ in range(5000):
        value = {"token": [value]}
    redacted = redaction.redact_tree(value)
    for _ in range(5000):
        redacted = redacted["token"][0]
    assert redacted == redaction.REDACTED


# -- end to end: `add` writes no secret -----------------------------------------------------------


def card_text(repo: Path, checkpoint: str) -> str:
    return (repo / f"{checkpoint}.ckpt.yaml").read_text()


def test_add_records_no_secret_from_options(
    repo: Path, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / "cfg").mkdir(parents=True)
    (home / "cfg/params.yaml").write_text("lr: 0.1\n")
    monkeypatch.setenv("HOME", str(home))
    write_checkpoint(repo / "models/m/step-1.pt")
    result = cli(
        "add", "models/m/step-1.pt", "--step", "1",
        "-p", "hf_token=" + HF, "-p", "lr=1e-4",
        "-p", "remote=s3://" + AWS + ":" + PW + "@bucket/models",
        "-p", "db_url=postgresql://ada:" + PW + "@db.example.com/x",
        "--split", "train=https://ada:" + PW + "@data.example.com/train.csv",
        "--command", f"python train.py --passphrase {PW} --jwt {JWT} -t {PW} {HF}",
        "--script", str(home / "cfg/train.py"),
        "--config", str(home / "cfg/params.yaml"),
        "--notes", "token " + GHP,
    )  # fmt: skip
    assert result.code == 0, result.err
    text = card_text(repo, "models/m/step-1.pt")
    for secret in (HF, AWS, PW, JWT, GHP, str(home)):
        assert secret not in text, secret
    card = register.card.read(repo / "models/m/step-1.pt.ckpt.yaml").data
    assert card["params"]["lr"] == 1e-4 and card["params"]["hf_token"] == "***"
    assert card["params"]["remote"] == "s3://***@bucket/models"
    assert card["code"]["config_file"] == "~/cfg/params.yaml"
    assert card["code"]["script"] == "~/cfg/train.py"


def test_add_from_a_run_record_records_no_secret(repo: Path, cli) -> None:
    write_checkpoint(repo / "models/m/step-2.pt")
    record = repo / "run.json"
    record.write_text(json.dumps({
        "run_name": "p_t_m_r2_2026-01-05", "params": {"lr": 0.1, "openai_api_key": OPENAI},
        "code": {"command": ["python", "train.py", "--key", PW]},
        "dataset": {"name": "tweets", "splits": {"train": "https://u:" + PW + "@h/t.csv"}},
        "tracker": {"token": PW, "url": SLACK},
    }))  # fmt: skip
    result = cli("add", "models/m/step-2.pt", "--step", "2", "--from", str(record))
    assert result.code == 0, result.err
    text = card_text(repo, "models/m/step-2.pt")
    assert not any(s in text for s in (OPENAI, PW, "XyZsecretPart123"))


# `--params FILE` and `dvcckpt.save(params=...)` reach the card through `cards.register`,
# which redacts the whole user fragment once `add` calls `redaction.redact_tree` on it.
WIRED = "redact_tree" in inspect.getsource(register)


@pytest.mark.skipif(not WIRED, reason="cards.register does not call redaction.redact_tree yet")
def test_add_with_a_params_file_records_no_secret(repo: Path, cli) -> None:
    write_checkpoint(repo / "models/m/step-3.pt")
    params = repo / "params.yaml"
    params.write_text(f"lr: 0.1\nhf_token: {HF}\ndb:\n  password: {PW}\n")
    result = cli("add", "models/m/step-3.pt", "--step", "3", "--params", str(params))
    assert result.code == 0, result.err
    assert HF not in card_text(repo, "models/m/step-3.pt")
    assert PW not in card_text(repo, "models/m/step-3.pt")


@pytest.mark.skipif(not WIRED, reason="cards.register does not call redaction.redact_tree yet")
def test_save_records_no_secret(repo: Path) -> None:
    import dvcckpt

    write_checkpoint(repo / "models/m/step-4.pt")
    dvcckpt.save("models/m/step-4.pt", step=4, params={"api_key": PW, "lr": 0.1}, notes=HF,
                 extra={"x-tracker": {"url": f"https://ada:{PW}@tracker.example.com"}})  # fmt: skip
    text = card_text(repo, "models/m/step-4.pt")
    assert PW not in text and HF not in text


# -- doctor: credentials committed in .dvc/config -------------------------------------------------


def test_doctor_reports_every_committed_credential(repo: Path, cli) -> None:
    (repo / ".dvc/config").write_text(
        "[core]\n    remote = s3store\n"
        "['remote \"s3store\"']\n    url = s3://bucket/models\n    sse = AES256\n"
        f"    access_key_id = {AWS}\n    session_token = {PW}\n"
        "['remote \"box\"']\n    url = ssh://backup.example.com/srv\n"
        f"    password = {PW}\n    keyfile = /home/ada/.ssh/id_ed25519\n"
        "['remote \"blob\"']\n    url = azure://container/path\n"
        f"    connection_string = AccountKey={PW}\n"
        "['remote \"web\"']\n"
        f"    url = https://ada:{PW}@dav.example.com/models\n"
        "['remote \"drive\"']\n    url = gdrive://folder\n"
        f"    gdrive_client_secret = {PW}\n"
        "['remote \"clean\"']\n    url = /srv/dvc-store\n"
        f"[studio]\n    token = {PW}\n"
        f"['db \"runs\"']\n    url = postgresql://ada:{PW}@db.example.com/runs\n"
    )
    (repo / ".dvc/config.local").write_text(  # the right place: never reported
        f"['remote \"clean\"']\n    password = {PW}\n"
    )
    result = cli("doctor", "--json")
    assert result.code == 0, result.err
    rows = {r["name"]: r for r in json.loads(result.out)}
    assert rows["remote s3store"]["missing"] == ["remote.credentials"]
    assert rows["remote s3store"]["settings"] == ["access_key_id", "session_token"]
    assert rows["remote box"]["settings"] == ["keyfile", "password"]
    assert rows["remote blob"]["settings"] == ["connection_string"]
    assert rows["remote web"]["missing"] == ["remote.url_credentials"]
    assert rows["remote web"]["settings"] == ["url"]
    assert rows["remote drive"]["settings"] == ["gdrive_client_secret"]
    assert rows["studio"]["settings"] == ["token"]
    assert rows["db runs"]["missing"] == ["remote.url_credentials"]
    assert "remote clean" not in rows and "core" not in rows
    assert PW not in result.out
    text = cli("doctor").out
    assert "remote.credentials: move credentials out of the committed .dvc/config" in text
    assert "dvc remote modify --local" in text and PW not in text


# Remote options whose name sounds secret but whose value is not: switches and a header name.
NOT_CREDENTIALS = {
    "ask_password", "ask_passphrase", "auth", "gss_auth", "custom_auth_header",
    "allow_anonymous_login", "exclude_environment_credential",
    "exclude_visual_studio_code_credential", "exclude_shared_token_cache_credential",
    "exclude_managed_identity_credential",
}  # fmt: skip


def test_the_credential_list_covers_dvc_remote_schema() -> None:
    from dvc.config_schema import REMOTE_SCHEMAS

    options = {key for schema in REMOTE_SCHEMAS.values() for key in schema if isinstance(key, str)}
    secret_looking = {key for key in options if redaction.is_secret_key(key)}
    assert secret_looking - NOT_CREDENTIALS <= redaction.DVC_CREDENTIAL_OPTIONS
    assert options >= redaction.DVC_CREDENTIAL_OPTIONS  # every listed option is DVC's
