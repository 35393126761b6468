"""A headless Chromium driven through the DevTools protocol, for tests of rendered pages.

One browser process per test session (`Browser.start`), one page (tab) it drives:
`open` navigates to a `file://` URL and waits for the load event, `evaluate` runs an
expression and returns its value, `type_into` and `click` send real input events (the
page's own listeners run, as for a user), `screenshot` saves a PNG. Every console error,
uncaught exception and browser log error (Content-Security-Policy violations included) is
collected in `problems` for the test to assert on. Every wait has a timeout, and `close`
kills the process group, so a stuck browser fails a test instead of hanging the suite.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websocket

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
TIMEOUT = 20.0  # seconds for any one step: start, a command, a page load


class BrowserError(RuntimeError):
    pass


def executable() -> str | None:
    """Chromium on this machine ($DVCCKPT_CHROMIUM, else a usual path or PATH)."""
    configured = os.environ.get("DVCCKPT_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    for candidate in CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Browser:
    process: subprocess.Popen[bytes]
    socket: websocket.WebSocket
    problems: list[str] = field(default_factory=list)
    _next_id: int = 0
    _events: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def start(cls, binary: str, profile: Path, width: int = 1280, height: int = 900) -> Browser:
        profile.mkdir(parents=True, exist_ok=True)
        log = (profile / "chromium.log").open("wb")
        process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "--mute-audio",
             "--disable-background-networking", "--remote-debugging-port=0",
             "--remote-allow-origins=*", f"--user-data-dir={profile}",
             f"--window-size={width},{height}", "about:blank"],
            stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        try:
            port = _active_port(profile, process)
            target = _page_target(port)
            socket = websocket.create_connection(
                target, timeout=TIMEOUT, suppress_origin=True, enable_multithread=False
            )
        except BaseException:
            _kill(process)
            raise
        browser = cls(process, socket)
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable")
        return browser

    # -- protocol ----------------------------------------------------------------------

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One command; its result (events arriving meanwhile are recorded)."""
        self._next_id += 1
        ident = self._next_id
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = self._receive(deadline, method)
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def _receive(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrowserError(f"no answer to {waiting_for} within {TIMEOUT:.0f} s")
        self.socket.settimeout(remaining)
        try:
            message: dict[str, Any] = json.loads(self.socket.recv())
        except websocket.WebSocketTimeoutException as exc:
            raise BrowserError(f"no answer to {waiting_for} within {TIMEOUT:.0f} s") from exc
        if "method" in message:
            self._record(message)
        return message

    def _record(self, event: dict[str, Any]) -> None:
        self._events.append(event)
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self.problems.append(f"uncaught exception: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.problems.append(f"console.{params['type']}: {args}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.problems.append(f"{entry.get('source')}: {entry.get('text')} ({entry.get('url')})")

    def wait_for(self, method: str) -> dict[str, Any]:
        """The next `method` event (or one that arrived since the last wait)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            for index, event in enumerate(self._events):
                if event["method"] == method:
                    del self._events[: index + 1]
                    return event
            self._events.clear()
            self._receive(deadline, method)

    # -- what tests use ----------------------------------------------------------------

    def open(self, path: Path) -> None:
        """Load a local page and wait until it has loaded; problems start afresh."""
        self.problems.clear()
        self._events.clear()
        result = self.send("Page.navigate", url=path.resolve().as_uri())
        if result.get("errorText"):
            raise BrowserError(f"cannot open {path}: {result['errorText']}")
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable)."""
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the first element matching `selector`."""
        x, y = self._centre(selector)
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def type_into(self, selector: str, text: str) -> None:
        """Focus the element and type `text` as keyboard input (input events fire)."""
        self._centre(selector)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", text=text)

    def _centre(self, selector: str) -> tuple[float, float]:
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        if box is None:
            raise BrowserError(f"no element matches {selector!r}")
        return float(box[0]), float(box[1])

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        """A PNG of the page (all of it, not only the window, when `full_page`)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params.update(
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size[0], "height": min(size[1], 8000), "scale": 1},
            )
        data = self.send("Page.captureScreenshot", **params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.socket.close()
        _kill(self.process)


def _active_port(profile: Path, process: subprocess.Popen[bytes]) -> int:
    """The DevTools port Chromium chose (`--remote-debugging-port=0`), from its profile."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (profile / "chromium.log").read_text(errors="replace")[-2000:]
            raise BrowserError(f"chromium exited with {process.returncode}: {log}")
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(marker.read_text().splitlines()[0])
        time.sleep(0.05)
    raise BrowserError(f"chromium wrote no DevToolsActivePort within {TIMEOUT:.0f} s")


def _page_target(port: int) -> str:
    """The WebSocket URL of the browser's first tab."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as answer:
            targets = json.load(answer)
        pages = [t for t in targets if t.get("type") == "page"]
        if pages:
            return str(pages[0]["webSocketDebuggerUrl"])
        time.sleep(0.05)
    raise BrowserError("chromium opened no page")


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Chromium and its helper processes (its own process group), waited for."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


# -- the registry the browser tests look at -----------------------------------------------

HOSTILE_NOTES = (
    '</script><script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
    " javascript:alert(1) \u202eevil"
)
SITE_CONFIG = "version: 1\nproject: demo\nstages: [dev, staging, production]\n"
SITE_GATES = """\
version: 1
gates:
  - stage: dev
    rules:
      - {name: dev-f1, metric: metrics.dev.macro_f1, op: ">=", value: 0.75}
"""
SENTIMENT_STEPS = (100, 200, 300, 400)


@dataclass(frozen=True)
class Catalog:
    """A registry (two models, runs, CIs, a promotion, lineage, hostile notes), its site
    (written on main) and the review report of a branch `pr` against main."""

    repo: Path
    site: Path
    report: Path


def run_cli(*args: str) -> str:
    """The CLI in-process, in the current folder; its output (it must succeed)."""
    import io
    from contextlib import redirect_stdout

    from dvcckpt.cli.main import main

    out = io.StringIO()
    with redirect_stdout(out):
        code = main(list(args))
    assert code == 0, f"dvcckpt {' '.join(args)} exited {code}"
    return out.getvalue()


def build_catalog(template: Path, root: Path) -> Catalog:
    from tests.conftest import git, write_checkpoint

    repo = root / "repo"
    shutil.copytree(template, repo, symlinks=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(repo)
        (repo / "dvcckpt.yaml").write_text(SITE_CONFIG)
        (repo / "gates.yaml").write_text(SITE_GATES)
        names: dict[int, str] = {}
        for index, step in enumerate(SENTIMENT_STEPS):
            path = f"models/sentiment/step-{step}.pt"
            write_checkpoint(repo / path, seed=index)
            value = 0.70 + 0.05 * index
            metrics = repo / f"metrics-{step}.json"
            metrics.write_text(json.dumps({"dev": {"macro_f1": {
                "value": value, "ci": [value - 0.02, value + 0.02], "method": "bootstrap"}},
                "test": {"macro_f1": value - 0.01}}))  # fmt: skip
            previous = names.get(SENTIMENT_STEPS[index - 1]) if index else None
            parent = ["--parent", f"resumed_from={previous}"] if previous else []
            run_cli("add", path, "--metrics", str(metrics), "--run-id", "runa" if index < 2
                    else "runb", "--tag", f"t{index}", *parent)  # fmt: skip
            metrics.unlink()
            names[step] = yaml_name(repo / f"{path}.ckpt.yaml")
        for step in (10, 20):
            path = f"models/ner/step-{step}.pt"
            write_checkpoint(repo / path, seed=step)
            run_cli("add", path, "-m", f"dev.macro_f1=0.{step}", "--notes", HOSTILE_NOTES)
        git(repo, "add", "--all")
        git(repo, "commit", "-qm", "checkpoints")
        run_cli("promote", names[300], "--to", "dev", "--rationale", "best dev macro-F1")
        git(repo, "commit", "-qam", "promote 300")
        site = root / "site"
        run_cli("site", "--output", str(site))
        git(repo, "checkout", "-qb", "pr")
        write_checkpoint(repo / "models/sentiment/step-500.pt", seed=9)
        run_cli("add", "models/sentiment/step-500.pt", "-m", "dev.macro_f1=0.9",
                "--parent", f"finetuned_from={names[400]}", "--notes", HOSTILE_NOTES)  # fmt: skip
        git(repo, "add", "--all")
        git(repo, "commit", "-qm", "step 500")
        report = root / "report.html"
        run_cli("report", "--base", "main", "--format", "html", "--output", str(report))
    return Catalog(repo, site, report)


def yaml_name(card: Path) -> str:
    import yaml

    return str(yaml.safe_load(card.read_text())["name"])


# -- fixtures (import them into a test module to use them) ---------------------------------


@pytest.fixture(scope="session")
def catalog(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """Built once per session (a few seconds), shared by the browser and validity tests."""
    return build_catalog(template_repo, tmp_path_factory.mktemp("catalog"))


def required() -> str:
    """Chromium's path; without one, skip the test, or fail it when DVCCKPT_REQUIRE_BROWSER=1."""
    binary = executable()
    if binary is None:
        reason = "no Chromium found (install Debian's chromium, or set DVCCKPT_CHROMIUM)"
        if os.environ.get("DVCCKPT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"DVCCKPT_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return binary


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One headless Chromium for the session. Without one the tests are skipped, unless
    DVCCKPT_REQUIRE_BROWSER=1 (CI sets it): then they fail."""
    started = Browser.start(required(), tmp_path_factory.mktemp("chromium") / "profile")
    try:
        yield started
    finally:
        started.close()
