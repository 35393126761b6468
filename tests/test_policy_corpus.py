"""Hostile and mistaken policy files, naming patterns and `check`/`show` arguments.

Every case must end in one clean refusal (tests/corpus.py) that names the file and
the field, and leave the repository as it was. Naming patterns also get property
tests: what a pattern renders parses back, and parsing any text is fast.
"""

from __future__ import annotations

import errno
import math
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dvcckpt.cli.group import cli as root_group
from dvcckpt.cli.main import MAX_LINE, printable
from dvcckpt.core import naming
from dvcckpt.errors import ConfigError
from tests.conftest import BIN, git, run_process, write_checkpoint
from tests.corpus import assert_user_error, changed, snapshot

# --- dvcckpt.yaml -------------------------------------------------------------------------

BASE_CONFIG = "version: 1\nproject: demo\n"
CONFIG_CASES = [
    ("stages: []", "stages"),
    ("stages: [1, 2]", "stages"),
    ("stages: dev", "stages"),
    ("stages: ['a b']", "stages[0]"),
    ("stages: [dev, dev]", "stages"),
    ("stagse: [dev]", "did you mean `stages`"),
    ("naming: {chekpoint: '{model}-{step}'}", "did you mean `checkpoint`"),
    ("naming: {run: '{project}{task}{model}{keyparam}'}", "naming.run"),
    ("naming: {run: '{project}-{project}'}", "naming.run"),
    ("naming: {checkpoint: '{model}-step{step:099999999d}'}", "naming.checkpoint"),
    ("naming: {checkpoint: '{model}-step{step:021d}'}", "naming.checkpoint"),
    ("naming: {checkpoint: '{model}{step}'}", "naming.checkpoint"),
    ("naming: {run: '{model!r}'}", "naming.run"),
    ("naming: {enforce: maybe}", "naming.enforce"),
    ("promotion: {main_branch: '--upload-pack=x'}", "promotion.main_branch"),
    ("promotion: {require_signed: 'yes'}", "promotion.require_signed"),
    ("card_max_bytes: 1e999", "card_max_bytes"),
    ("card_max_bytes: big", "card_max_bytes"),
    ("card_max_bytes: 1", "card_max_bytes"),
    ("owners: [{principals: []}]", "owners[0].principals"),
    ("owners: [{model: m, principal: [a]}]", "did you mean `principals`"),
    ("phases: [Pre Train]", "phases[0]"),
    ("required: {all: [1]}", "required.all[0]"),
]


def _cases(cases: list[tuple[str, str]]) -> list[object]:
    return [pytest.param(text, field, id=text[:40]) for text, field in cases]


@pytest.mark.parametrize(("extra", "field"), _cases(CONFIG_CASES))
def test_bad_dvcckpt_yaml_is_refused_naming_the_field(
    repo: Path, cli, extra: str, field: str
) -> None:
    (repo / "dvcckpt.yaml").write_text(BASE_CONFIG + extra + "\n")
    before = snapshot(repo)
    result = cli("show", "anything")
    assert result.code == 3, result.err
    assert_user_error(result.code, result.err, names=("dvcckpt.yaml", field))
    # The hook reports the same mistake as a finding, so the commit that makes it fails.
    hook = cli("check", "dvcckpt.yaml")
    assert hook.code == 1 and "dvcckpt.yaml" in hook.out and field in hook.out, hook.out
    assert changed(before, snapshot(repo)) == []


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"- a list\n", "expected a mapping"),
        (b"", "expected a mapping"),
        (b"version: 1\nproject: \xff\xfe\n", "UTF-8"),
        ("version: 1\nproject: demo\n".encode("utf-16"), "UTF-8"),
    ],
    ids=["a list", "empty", "latin-1", "utf-16"],
)
def test_unreadable_dvcckpt_yaml_is_a_config_error(
    repo: Path, cli, content: bytes, needle: str
) -> None:
    (repo / "dvcckpt.yaml").write_bytes(content)
    result = cli("show", "anything")
    assert_user_error(result.code, result.err, names=("dvcckpt.yaml", needle))


def test_dvcckpt_yaml_that_is_not_a_file_is_not_taken_for_defaults(repo: Path, cli) -> None:
    (repo / "dvcckpt.yaml").mkdir()
    result = cli("show", "anything")
    assert_user_error(result.code, result.err, names=("dvcckpt.yaml", "not a regular file"))
    (repo / "dvcckpt.yaml").rmdir()
    (repo / "dvcckpt.yaml").symlink_to("/nonexistent/dvcckpt.yaml")
    result = cli("show", "anything")
    assert_user_error(result.code, result.err, names=("dvcckpt.yaml", "not a regular file"))


@pytest.mark.parametrize("name", ["dvcckpt.yaml", "gates.yaml"])
def test_a_policy_file_that_is_a_fifo_is_refused_without_hanging(
    repo: Path, cli, name: str
) -> None:
    os.mkfifo(repo / name)
    started = time.perf_counter()
    result = cli("check", "--all") if name == "gates.yaml" else cli("show", "anything")
    assert time.perf_counter() - started < 30
    if name == "gates.yaml":
        assert result.code == 1 and "gates.yaml: not a regular file" in result.out, result.out
    else:
        assert_user_error(result.code, result.err, names=(name, "not a regular file"))


def test_init_in_a_subfolder_reports_a_broken_policy_file_by_name(repo: Path, cli) -> None:
    (repo / "dvcckpt.yaml").write_text(BASE_CONFIG + "stages: []\n")
    sub = repo / "sub"
    sub.mkdir()
    result = run_process("show", "x", cwd=sub)
    assert_user_error(result.code, result.err, names=(str(repo / "dvcckpt.yaml"), "stages"))


# --- gates.yaml ---------------------------------------------------------------------------


def gates(rule: str, stage: str = "production") -> str:
    return f"version: 1\ngates:\n- stage: {stage}\n  rules:\n  - {rule}\n"


THRESHOLD = "{name: f1, metric: metrics.dev.f1, op: '>=', value: %s}"
GATES_CASES = [
    (gates(THRESHOLD % ".nan"), "value"),
    (gates(THRESHOLD % ".inf"), "value"),
    (gates(THRESHOLD % "-.inf"), "value"),
    (gates(THRESHOLD % "1e999"), "value"),
    (gates(THRESHOLD % "'0.8'"), "value"),
    (gates(THRESHOLD % ("1" + "0" * 400)), "integer range"),
    (gates(THRESHOLD % "[0.8]"), "value"),
    (gates("{name: r, regression: metrics.dev.f1, margin: .nan}"), "margin"),
    (
        gates("{name: s, subsets: metrics.d, metric: f1, max_relative_drop: .inf}"),
        "max_relative_drop",
    ),
    (
        gates("{name: f1, metric: metrics.dev.f1, each: metrics.dev.cls, op: '>=', value: 1}"),
        "`metric` and `each` cannot be combined",
    ),
    (gates("{name: x, regression: metrics.a, require: [notes]}"), "cannot be combined"),
    (gates("{name: x, artifact: cm, require: [notes]}"), "cannot be combined"),
    (gates("{name: x}"), "names no check"),
    (gates("{name: x, metric: metrics.dev.f1, value: 0.5}"), "needs `op`"),
    (gates("{name: x, metric: metrics.a, op: '>=', value: 1, margin: 1}"), "`margin`"),
    (gates("{name: x, metirc: metrics.a, op: '>=', value: 1}"), "did you mean `metric`"),
    (gates("{name: x, metric: metrics.a, op: '=>', value: 1}"), "op"),
    (gates(THRESHOLD % "1", stage="'a b'"), "stage"),
    (gates(THRESHOLD % "1") + "  - " + THRESHOLD % "2" + "\n", "used twice"),
    ("version: 1\ngate: []\n", "did you mean `gates`"),
    (gates(THRESHOLD % "1", stage="prod"), "did you mean `production`"),
    (gates(THRESHOLD % "1", stage="qa"), "not a stage of dvcckpt.yaml"),
    ("version: 1\ngates: {stage: production}\n", "gates"),
    ("version: 1\ngates:\n- stage: production\n  rules: []\n", "rules"),
    ("version: 2\ngates: []\n", "version"),
    ("[1, 2]\n", "expected a mapping"),
]


@pytest.mark.parametrize(("text", "field"), _cases(GATES_CASES))
def test_bad_gates_yaml_is_refused_naming_the_rule(repo: Path, cli, text: str, field: str) -> None:
    (repo / "gates.yaml").write_text(text)
    before = snapshot(repo)
    result = cli("check", "gates.yaml")
    assert result.code == 1, result.out + result.err
    assert_user_error(result.code, result.err)
    assert result.out.startswith("gates.yaml: ") and field in result.out, result.out
    if "rules[" in result.out and "finite" not in result.out:
        # A rule's problem names its stage and rule as the file does. (NaN and infinity
        # may already be refused by the YAML reader, which knows no rules.)
        assert "(stage " in result.out and ", rule " in result.out, result.out
    assert changed(before, snapshot(repo)) == []


def test_non_finite_threshold_is_refused_by_the_gate_command(repo: Path, cli) -> None:
    write_checkpoint(repo / "m/a.pt")
    assert cli("add", "m/a.pt", "--step", "1", "-m", "dev.f1=0.7").code == 0
    (repo / "gates.yaml").write_text(gates(THRESHOLD % ".nan"))
    result = cli("gate", "m/a.pt", "--stage", "production")
    assert result.code == 3
    assert_user_error(result.code, result.err, names=("gates.yaml", "value"))


# --- check and show arguments -------------------------------------------------------------


@pytest.mark.parametrize(
    ("argument", "needle"),
    [
        ("nope.ckpt.yaml", "no such file"),
        ("m/nope.pt.dvc", "no such file"),
        ("", "is a folder"),  # click reads "" as "."
        ("   ", "empty file name"),
        ("m", "is a folder"),
        ("/etc/hostname", "outside the repository"),
        ("train.py", "is not a card"),
        ("x" * 5000, "x"),
    ],
    ids=["missing card", "missing pointer", "empty", "blank", "folder", "outside", "code", "long"],
)
def test_check_of_what_it_cannot_read_is_a_finding(
    repo: Path, cli, argument: str, needle: str
) -> None:
    (repo / "m").mkdir()
    result = cli("check", argument)
    assert result.code == 1, result.out + result.err
    assert needle in result.out and "ok:" not in result.err, result.out + result.err
    assert_user_error(result.code, result.err)
    assert len(result.out) < 2000


@pytest.mark.parametrize(
    "reference",
    [
        "",
        "   ",
        "\t",
        "/etc/hostname",
        "m",
        "m/",
        "a\nb",
        "x" * 300,
        "x/" * 3000,
        "@",
        "@@",
        "\x1b[31m",
    ],
    ids=[
        "empty",
        "blank",
        "tab",
        "outside",
        "folder",
        "folder/",
        "newline",
        "long name",
        "deep",
        "at",
        "at-at",
        "escape",
    ],
)
def test_show_of_a_bad_reference_is_a_clear_error(repo: Path, cli, reference: str) -> None:
    (repo / "m").mkdir()
    before = snapshot(repo)
    result = cli("show", reference)
    assert_user_error(result.code, result.err)
    assert "\x1b" not in result.err
    assert changed(before, snapshot(repo)) == []


def test_check_base_that_looks_like_an_option_is_an_unknown_revision(repo: Path, cli) -> None:
    result = cli("check", "--all", "--base", "--output=/tmp/x")
    assert_user_error(result.code, result.err, names=("--base", "unknown revision"))


# --- the error boundary -------------------------------------------------------------------


@click.command("x-raise", hidden=True)
@click.argument("what")
def _raise(what: str) -> None:
    """A command that meets a fault, as commands do deep inside DVC or the file system."""
    faults: dict[str, BaseException] = {
        "disk full": OSError(errno.ENOSPC, "No space left on device", "/repo/m/a.pt"),
        "quota": OSError(errno.EDQUOT, "Disk quota exceeded", "/repo/x"),
        "permission": PermissionError(errno.EACCES, "Permission denied", "/repo/.dvc/cache"),
        "read-only": OSError(errno.EROFS, "Read-only file system", "/repo/x"),
        "too long": OSError(errno.ENAMETOOLONG, "File name too long", "/repo/" + "x" * 5000),
        "loop": OSError(errno.ELOOP, "Too many levels of symbolic links", "/repo/l"),
        "files": OSError(errno.EMFILE, "Too many open files"),
        "interrupt": KeyboardInterrupt(),
    }
    if what == "wrapped":
        try:
            raise faults["disk full"]
        except OSError as exc:
            raise RuntimeError("dvc failed to copy") from exc
    if what == "bug":
        raise KeyError("x" * 10_000_000 + "\n\x1b[2J")
    raise faults[what]


@pytest.fixture
def faulty() -> Iterator[None]:
    """`dvcckpt x-raise FAULT`, for this module's tests only."""
    root_group.add_command(_raise)
    yield
    root_group.commands.pop("x-raise")


@pytest.mark.parametrize(
    ("fault", "code", "needle"),
    [
        ("disk full", 4, "/repo/m/a.pt: no space left"),
        ("quota", 4, "quota"),
        ("permission", 4, "/repo/.dvc/cache: permission denied"),
        ("read-only", 4, "read-only"),
        ("too long", 4, "file name too long"),
        ("loop", 4, "symbolic links"),
        ("files", 4, "too many open files"),
        ("wrapped", 4, "no space left"),
        ("interrupt", 130, "interrupted"),
    ],
)
def test_environment_faults_are_state_errors_not_bugs(
    faulty, cli, fault: str, code: int, needle: str
) -> None:
    result = cli("x-raise", fault)
    assert result.code == code, result.err
    assert_user_error(result.code, result.err, names=(needle,))
    assert len(result.err) < 2 * MAX_LINE + 200


def test_a_bug_is_exit_70_with_one_bounded_line(faulty, cli) -> None:
    result = cli("x-raise", "bug")
    assert result.code == 70
    lines = result.err.splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: internal error: KeyError")
    assert "\x1b" not in result.err and len(result.err) < 2 * MAX_LINE + 200


def test_printable_escapes_controls_and_bounds_length() -> None:
    assert printable("a\nb\x1b[0m") == "a\\nb\\x1b[0m"
    assert printable("déjà vu") == "déjà vu"
    assert len(printable("x" * 100_000_000)) <= MAX_LINE
    assert len(printable("\x00" * MAX_LINE)) <= MAX_LINE


def test_output_to_a_closed_pipe_is_silent(repo: Path) -> None:
    process = subprocess.Popen(
        [str(BIN / "dvcckpt"), "schema"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.read(10)
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait(timeout=60) == 0, err
    assert err == b""


def test_a_huge_format_width_is_refused_before_anything_is_formatted(repo: Path, cli) -> None:
    (repo / "dvcckpt.yaml").write_text(
        BASE_CONFIG + "naming: {checkpoint: '{model}-step{step:099999999d}'}\n"
    )
    write_checkpoint(repo / "m/a.pt")
    before = snapshot(repo)
    result = cli("add", "m/a.pt", "--step", "1", "--model", "m")
    assert_user_error(result.code, result.err, names=("dvcckpt.yaml", "naming.checkpoint"))
    assert changed(before, snapshot(repo)) == []


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "1" + "0" * 400, "x" * 300])
def test_any_keyparam_value_gives_a_run_name_or_a_clean_refusal(
    repo: Path, cli, value: str
) -> None:
    (repo / "dvcckpt.yaml").write_text(BASE_CONFIG + "naming: {keyparam: lr}\n")
    write_checkpoint(repo / "m/a.pt")
    result = cli("add", "m/a.pt", "--step", "1", "--task", "t", "-p", f"lr={value}")
    if result.code != 0:
        assert_user_error(result.code, result.err, names=("lr",))


# --- naming patterns: properties ----------------------------------------------------------

NAME_TEXT = st.text(alphabet="abcxyz019", min_size=1, max_size=8)
VALUES = {
    "project": NAME_TEXT,
    "task": NAME_TEXT,
    "model": NAME_TEXT,
    "keyparam": NAME_TEXT,
    "phase": st.text(alphabet="abcxyz019_", min_size=1, max_size=8).map(lambda s: "p" + s),
    "kind": st.sampled_from(["full", "weights", "optimizer", "ema"]),
    "date": st.dates().map(lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}"),
    "step": st.integers(0, 10**18),
    "epoch": st.integers(0, 10**6),
    "seed": st.integers(0, 2**31),
}
SEPARATORS = st.sampled_from(["-", "_", ".", "-x-", "/", "@", "step"])


@st.composite
def patterns_and_values(draw: st.DrawFn) -> tuple[str, dict[str, object]]:
    fields = draw(st.lists(st.sampled_from(sorted(VALUES)), min_size=1, max_size=5, unique=True))
    pattern = draw(st.sampled_from(["", "run-"]))
    for index, name in enumerate(fields):
        spec = ""
        if name in ("step", "epoch", "seed"):
            spec = draw(st.sampled_from(["", ":d", ":06d", ":020d", ":1d"]))
        pattern += (draw(SEPARATORS) if index else "") + "{" + name + spec + "}"
    pattern += draw(st.sampled_from(["", ".ckpt", "-end"]))
    return pattern, {name: draw(VALUES[name]) for name in fields}


@settings(max_examples=300, deadline=None)
@given(patterns_and_values())
def test_render_then_parse_gives_the_values_back(case: tuple[str, dict[str, object]]) -> None:
    pattern, values = case
    name = naming.render(pattern, values)
    assert name is not None
    parsed = naming.parse(pattern, name)
    assert parsed is not None, (pattern, name)
    # The parse is always a reading of the same name; values sharing no character with
    # the pattern's literal text come back exactly (otherwise the name is ambiguous).
    assert naming.render(pattern, parsed) == name
    literal = set(re.sub(r"\{[^}]*\}", "", pattern))
    if not any(literal & set(str(value)) for value in values.values()):
        assert parsed == values


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(
        [
            naming.DEFAULT_RUN_PATTERN,
            naming.DEFAULT_CHECKPOINT_PATTERN,
            "{project}-{task}-{model}-{keyparam}",
            "{model}.{phase}.{kind}.{step}",
            "{model}_{seed}",
        ]
    ),
    st.text(alphabet="a-_.1e", min_size=0, max_size=naming.NAME_MAX),
)
def test_parse_of_any_text_is_fast(pattern: str, text: str) -> None:
    started = time.perf_counter()
    naming.parse(pattern, text)
    naming.parse(pattern, (text * 50)[: naming.NAME_MAX])
    assert time.perf_counter() - started < 0.5


def test_parse_of_a_3000_character_run_name_is_fast() -> None:
    pattern = "{project}-{task}-{model}-{keyparam}"
    for text in ("a-" * 1500, ("a-" * 499) + "a", "a" * 3000):
        started = time.perf_counter()
        naming.parse(pattern, text[: naming.NAME_MAX])
        naming.parse(pattern, text)
        assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    "pattern",
    [
        "{project}{task}{model}{keyparam}",
        "{step:099999999d}",
        "{step:x}",
        "{model:>30}",
        "{model!r}",
        "{model}-{model}",
        "{nope}",
        "{model",
        "x" * (naming.PATTERN_MAX + 1),
        "{step:{step}d}",
    ],
)
def test_patterns_the_language_does_not_allow_are_config_errors(pattern: str) -> None:
    with pytest.raises(ConfigError) as caught:
        naming.placeholders(pattern, where="naming.run:")
    assert caught.value.message.startswith("naming.run:")
    assert len(caught.value.message) < 300


@pytest.mark.parametrize(
    ("value", "text"),
    [(math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf"), (10**400, "inf"), (10**20, "1e20")],
)
def test_compact_number_never_fails(value: object, text: str) -> None:
    assert naming.compact_number(value) == text


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, 10**400, 1e-4, 3, "adamw 8bit", "x" * 300, "/etc/passwd", True]
)
@pytest.mark.parametrize("key", ["lr", "learning_rate", "_private"])
def test_every_run_name_dvcckpt_writes_parses_back(key: str, value: object) -> None:
    token = naming.keyparam_token(key, {key: value})
    if token is None:
        assert not key[0].isalnum()  # no run name rather than one the hook would refuse
        return
    assert len(token) <= naming.KEYPARAM_MAX
    values = {"project": "demo", "task": "t", "model": "m", "keyparam": token, "date": "2026-01-02"}
    name = naming.render(naming.DEFAULT_RUN_PATTERN, values)
    assert name is not None and naming.parse(naming.DEFAULT_RUN_PATTERN, name) == values


# --- .dvc files the hook compares a card with ---------------------------------------------

POINTER = "outs:\n- md5: {md5}\n  size: 4096\n  hash: md5\n  path: a.pt\n"
POINTER_CASES = [
    (lambda md5: "outs: [\n", "checkpoint.dvc", "cannot be read"),
    (lambda md5: "outs: 1\n", "checkpoint.dvc", "no output with an md5"),
    (lambda md5: "outs: []\n", "checkpoint.dvc", "no output with an md5"),
    (lambda md5: POINTER.format(md5=md5).replace("- md5: ", "- etag: "), "checkpoint.dvc", "md5"),
    (lambda md5: POINTER.format(md5="12345"), "checkpoint.dvc.md5", "not an md5"),
    (lambda md5: POINTER.format(md5=f"{md5}\n  extra: [1]"), "", ""),  # unknown keys: DVC's
    (lambda md5: POINTER.format(md5="f" * 32), "checkpoint.dvc.md5", "card says"),
    (lambda md5: POINTER.format(md5=md5).replace("a.pt", "other.pt"), "checkpoint.dvc", "tracks"),
    (lambda md5: POINTER.format(md5=md5) + POINTER.format(md5=md5)[5:], "checkpoint.dvc", "2 out"),
]


@pytest.mark.parametrize(("pointer", "field", "needle"), POINTER_CASES)
def test_a_pointer_that_is_not_one_plain_md5_is_a_finding(
    repo: Path, cli, pointer, field: str, needle: str
) -> None:
    write_checkpoint(repo / "m/a.pt")
    assert cli("add", "m/a.pt", "--step", "1").code == 0
    text = (repo / "m/a.pt.dvc").read_text()
    md5 = text.split("md5: ")[1].split()[0]
    (repo / "m/a.pt.dvc").write_text(pointer(md5))
    git(repo, "add", "m/a.pt.dvc")
    result = cli("check")
    if not field:
        assert result.code == 0, result.out
        return
    assert result.code == 1, result.out + result.err
    assert f"m/a.pt.ckpt.yaml: {field}: " in result.out and needle in result.out, result.out


def test_a_deleted_pointer_gets_the_advice_to_register_again(repo: Path, cli) -> None:
    write_checkpoint(repo / "m/a.pt")
    assert cli("add", "m/a.pt", "--step", "1").code == 0
    git(repo, "rm", "--quiet", "--cached", "m/a.pt.dvc")
    (repo / "m/a.pt.dvc").unlink()
    result = cli("check")
    assert result.code == 1 and "dvcckpt add m/a.pt" in result.out, result.out
    assert "git add" not in result.out


def test_ctrl_c_exits_130_with_one_clean_line(tmp_path: Path) -> None:
    # Interrupt once quickstart has printed its first line: its own code is running then,
    # however fast or loaded the machine (a signal during interpreter start-up, before any
    # dvcckpt code runs, is Python's to report).
    process = subprocess.Popen(
        [str(BIN / "dvcckpt"), "quickstart", str(tmp_path / "demo")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert first and process.returncode == 130, (first, process.returncode, err)
    assert_user_error(process.returncode, err, names=("interrupted",))


def test_removing_a_stage_that_gates_yaml_guards_is_refused_at_commit(repo: Path, cli) -> None:
    (repo / "gates.yaml").write_text(gates(THRESHOLD % "0.5", stage="staging"))
    (repo / "dvcckpt.yaml").write_text(BASE_CONFIG + "stages: [dev, production]\n")
    result = cli("check", "dvcckpt.yaml")
    assert result.code == 1 and "gates.yaml: gates[0].stage: 'staging'" in result.out, result.out
