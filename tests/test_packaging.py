"""An installed (non-editable) wheel finds its schemas and templates."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_schemas_templates_and_demo_data(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("dvcckpt-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "dvcckpt/schemas/checkpoint.v1.schema.json",
        "dvcckpt/schemas/config.v1.schema.json",
        "dvcckpt/templates/dvcckpt.yaml",
        "dvcckpt/templates/quickstart/train.py",
        "dvcckpt/setup/demo/tweets_dev.csv",
    ):
        assert required in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import dvcckpt.core.resources as r, dvcckpt.setup.demo as d\n"
        "print(r.schema_path('checkpoint.v1')); print(r.template_path('dvcckpt.yaml'))\n"
        "print(d.data_files()['train'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(site)},
    )
    for line in done.stdout.split():
        assert line.startswith(str(site)) and Path(line).is_file()
