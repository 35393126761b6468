"""Start-up cost, help text for every command and option, `show`, `schema`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click

from dvcckpt.cli import cli as root_group
from tests.conftest import run_process, write_checkpoint

HEAVY = ("dvc", "jsonschema", "rich", "ruamel", "git", "numpy", "yaml")


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys\n"
        "from dvcckpt.cli import main\n"
        "assert main(['--help']) == 0\n"
        "assert main(['add', '--help']) == 0\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_every_command_and_option_has_help() -> None:
    def walk(command: click.Command, path: str) -> list[str]:
        missing = [] if command.help else [path]
        for param in command.params:
            if isinstance(param, click.Option) and not param.help:
                missing.append(f"{path} {param.opts[0]}")
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                missing.extend(walk(sub, f"{path} {name}"))
        return missing

    assert walk(root_group, "dvcckpt") == []


def test_version_and_help_exit_zero(tmp_path: Path) -> None:
    assert run_process("--version", cwd=tmp_path).out.startswith("dvcckpt, version ")
    result = run_process("--help", cwd=tmp_path)
    assert result.code == 0
    for command in ("add", "show", "quickstart", "schema"):
        assert command in result.out


def test_show_by_name_path_and_card_path(repo: Path, cli) -> None:
    write_checkpoint(repo / "models/ner/step-10.pt")
    added = cli("add", "models/ner/step-10.pt", "-m", "dev.f1=0.5", "--seed", "1", "--json")
    assert added.code == 0, added.err
    name = json.loads(added.out)["name"]
    assert name.startswith("ner-train-full-") and name.endswith("-step000010")
    by_name = cli("show", name)
    assert by_name.code == 0, by_name.err
    assert by_name.out.splitlines()[0] == name
    assert "sha256" in by_name.out and "f1" in by_name.out and "seed" in by_name.out
    assert cli("show", "models/ner/step-10.pt").out == by_name.out
    as_json = json.loads(cli("show", "models/ner/step-10.pt.ckpt.yaml", "--json").out)
    assert as_json["name"] == name


def test_show_from_a_subdirectory_and_duplicate_names(repo: Path, cli, monkeypatch) -> None:
    write_checkpoint(repo / "a/x.pt")
    write_checkpoint(repo / "b/x.pt", seed=2)
    assert cli("add", "a/x.pt", "--model", "m", "--step", "1").code == 0
    assert cli("add", "b/x.pt", "--model", "m", "--step", "2").code == 0
    # add refuses a taken name, so the duplicate is made by hand, as a user past the hook could.
    first = (repo / "a/x.pt.ckpt.yaml").read_text()
    name = next(line for line in first.splitlines() if line.startswith("name: "))
    second = repo / "b/x.pt.ckpt.yaml"
    text = second.read_text()
    old = next(line for line in text.splitlines() if line.startswith("name: "))
    second.write_text(text.replace(old, name))
    monkeypatch.chdir(repo / "a")
    result = cli("show", name.removeprefix("name: "))
    assert result.code == 4 and "used by several cards" in result.err


def test_schema_command_prints_the_card_schema(tmp_path: Path) -> None:
    result = run_process("schema", cwd=tmp_path)
    assert json.loads(result.out)["$id"].endswith("checkpoint.v1.schema.json")
    path = run_process("schema", "--config", "--path", cwd=tmp_path).out.strip()
    assert path.endswith("config.v1.schema.json") and Path(path).is_file()
