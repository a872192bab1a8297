"""Verification without a model (`orchestrator verify`), the sandbox that fails closed, the
verdicts (verified, unverified, not applied, rejected), hanging checks killed at their timeout,
and `orchestrator apply`, the only writer of the workspace."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from orchestrator import RunOptions, run_workflow
from orchestrator.checks import (
    CheckRun,
    PatchVerdict,
    Verifier,
    bubblewrap_problem,
    find_sandbox,
    sandbox_mode,
    unified_diff,
)
from orchestrator.errors import SpecError
from orchestrator.spec import CheckSpec, load_spec
from orchestrator.testing import FakeProvider, valid_answer
from orchestrator.workflow import prepare_workflow
from tests.machine import unavailable
from tests.process import orchestrator
from tests.test_agentic import QUICKSTART, RIGHT_FIX, WRONG_FIX, diagnosis, project

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "examples" / "quickstart" / "spec.yaml"
needs_bwrap = pytest.mark.needs(bubblewrap_problem())


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def verify(workspace: Path, checks: dict[str, CheckSpec], mode: str, diff: str) -> PatchVerdict:
    """A patch's verdict from a verifier of `checks` (all judged) in a sandbox `mode`."""
    verifier = Verifier(workspace, checks, list(checks), find_sandbox(mode))
    try:
        return asyncio.run(verifier.verify("p-1", "p", None, 0, diff))
    finally:
        verifier.close()


def run_once(workspace: Path, check: CheckSpec, mode: str) -> CheckRun:
    """One run of one check on the workspace as it is."""
    verifier = Verifier(workspace, {"check": check}, ["check"], find_sandbox(mode))
    try:
        return asyncio.run(verifier.run("check", None, "t"))
    finally:
        verifier.close()


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@needs_bwrap
def test_verify_prints_verified_with_tests_fail_to_pass_for_the_right_fix(tmp_path: Path) -> None:
    before = tree(QUICKSTART)
    done = orchestrator("verify", SPEC, "--patch", write(tmp_path / "fix.diff", RIGHT_FIX))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("verified: ") and "tests: fail -> pass" in done.stdout
    as_json = orchestrator("verify", SPEC, "--patch", tmp_path / "fix.diff", "--json")
    payload = json.loads(as_json.stdout)
    assert as_json.returncode == 0 and payload["verdict"] == "verified"
    assert [(c["name"], c["before"], c["after"]) for c in payload["checks"]] == [("tests", "fail", "pass")]
    assert payload["sandbox"]["runner"] == "bubblewrap" and payload["baselines"][0]["status"] == "fail"
    assert tree(QUICKSTART) == before  # the workspace is never changed


@needs_bwrap
def test_verify_exits_1_for_a_fix_that_does_not_fix(tmp_path: Path) -> None:
    done = orchestrator("verify", SPEC, "--patch", write(tmp_path / "wrong.diff", WRONG_FIX), "--json")
    payload = json.loads(done.stdout)
    assert done.returncode == 1 and payload["verdict"] == "unverified"
    assert payload["checks"][0]["after"] == "fail" and "assert 3 == 0" in payload["checks"][0]["output"]


@pytest.mark.parametrize(
    ("diff", "verdict", "why"),
    [
        ("--- a/.git/config\n+++ b/.git/config\n@@ -0,0 +1 @@\n+x\n", "rejected", "touches .git/"),
        ("--- a/../outside.txt\n+++ b/../outside.txt\n@@ -0,0 +1 @@\n+x\n", "rejected", "leaves the workspace"),
        ("--- /etc/passwd\n+++ /etc/passwd\n@@ -0,0 +1 @@\n+x\n", "rejected", "absolute path"),
        (
            "diff --git a/link b/link\nnew file mode 120000\n--- /dev/null\n+++ b/link\n@@ -0,0 +1 @@\n+/etc\n",
            "rejected",
            "creates a symlink",
        ),
        ("--- a/inventory/out/x.py\n+++ b/inventory/out/x.py\n@@ -0,0 +1 @@\n+x\n", "rejected", "symlink leads out"),
        (RIGHT_FIX.replace("class Store:", "class Shop:"), "not_applied", "patch"),
        ("just words\n", "rejected", "not a unified diff"),
    ],
)
def test_verdicts_of_patches_that_must_not_or_cannot_apply(tmp_path: Path, diff: str, verdict: str, why: str) -> None:
    workspace = tmp_path / "ws"
    shutil.copytree(QUICKSTART, workspace)
    (workspace / "inventory" / "out").symlink_to(tmp_path)  # a symlink that leads out of the workspace
    checks = {"tests": CheckSpec(run="true")}
    found = verify(workspace, checks, "off", diff)
    assert found.verdict == verdict and why in found.reason, found.reason
    assert not (tmp_path / "outside.txt").exists() and not (workspace / ".git").exists()


class Listener:
    """A loopback port of the host (or the socket given, bound) that counts the connections
    reaching it."""

    def __init__(self, bound: socket.socket | None = None) -> None:
        self.socket = bound or socket.socket()
        if bound is None:
            self.socket.bind(("127.0.0.1", 0))
        self.socket.listen()
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1] if bound is None else 0
        self.connections = 0
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stop:
            try:
                conn, _ = self.socket.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop = True
        self.thread.join()
        self.socket.close()


ESCAPE_TEST = """
import os, socket
from pathlib import Path


def attempt(what, action):
    try:
        action()
        print(f"ESCAPE {{what}}: done")
    except OSError as exc:
        print(f"BLOCKED {{what}}: {{type(exc).__name__}}")


def test_escape():
    attempt("home", lambda: Path(os.path.expanduser("~"), "{name}").write_text("x"))
    attempt("host tmp", lambda: Path("{host_tmp}").write_text("x"))
    attempt("workspace", lambda: Path("{workspace}", "{name}").write_text("x"))
    attempt("loopback", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2).close())
    attempt("the rest", lambda: Path("{elsewhere}").write_text("x"))
    attempt("private tmp", lambda: Path("/tmp/{name}").write_text("x"))
    attempt("its copy", lambda: Path("{name}").write_text("x"))
"""


@needs_bwrap
def test_a_patched_test_cannot_write_outside_its_copy_nor_reach_the_hosts_loopback(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    shutil.copytree(QUICKSTART, workspace)
    listener = Listener()
    name = f"escaped-{os.getpid()}"
    host_tmp = Path("/tmp") / f"{name}-host"
    home_file = Path.home() / name
    source = ESCAPE_TEST.format(
        name=name, host_tmp=host_tmp, workspace=workspace, port=listener.port, elsewhere=REPO / name
    )
    diff = unified_diff("tests/test_escape.py", None, source)
    checks = {"escape": CheckSpec(run="python -m pytest -q -s -p no:cacheprovider tests/test_escape.py")}
    verifier = Verifier(workspace, checks, list(checks), find_sandbox("required"))
    try:
        # run as `run_check` runs a model's patch: the new test is the one that runs
        found = asyncio.run(verifier.run("escape", diff, "t"))
    finally:
        verifier.close()
        listener.close()
    output = found.output
    assert found.status == "pass", output
    # the home folder and /tmp are private, empty ones inside: writing there reaches nothing outside
    assert not home_file.exists() and not host_tmp.exists()
    assert "BLOCKED loopback" in output, output  # another network
    # the rest is read-only, except in a clone under /tmp or the home: there it is their private, empty ones
    private = any(REPO.is_relative_to(folder) for folder in (Path("/tmp"), Path.home()))
    assert "BLOCKED the rest" in output or private, output
    assert not (REPO / name).exists()
    assert listener.connections == 0
    # the copy stands at the workspace's path: a write there lands in the copy, never the original
    assert "ESCAPE workspace: done" in output and not (workspace / name).exists()
    assert not (REPO / name).exists()
    assert "ESCAPE its copy: done" in output  # the check can write where it may


@pytest.mark.parametrize("mode", ["required", "off"])
def test_a_hanging_check_is_killed_with_its_process_group_at_its_timeout(tmp_path: Path, mode: str) -> None:
    if mode == "required" and bubblewrap_problem():
        unavailable(bubblewrap_problem())
    workspace = tmp_path / "ws"
    workspace.mkdir()
    script = (
        "import subprocess, time\n"
        "child = subprocess.Popen(['sleep', '300'])\n"
        "print('child', child.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    (workspace / "hang.py").write_text(script)
    run = run_once(workspace, CheckSpec(run="python hang.py", timeout_s=1), mode)
    assert run.status == "timeout" and run.exit_code is None and "killed after 1s" in run.output
    if mode == "off":  # the child's pid is the host's: it is gone with its group
        pid = int(run.output.split("child ")[1].split()[0])
        with pytest.raises(ProcessLookupError):
            for _ in range(50):
                os.kill(pid, 0)
                asyncio.run(asyncio.sleep(0.1))


def test_output_is_kept_up_to_a_bound(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    loud = CheckSpec(run="python -c \"print('head'); print('x' * 200000); print('tail')\"")
    run = run_once(workspace, loud, "off")
    assert run.truncated and len(run.output) < 40_000
    assert run.output.startswith("head") and run.output.rstrip().endswith("tail") and "not kept" in run.output


def test_the_sandbox_mode_is_required_in_ci_and_preferred_elsewhere() -> None:
    assert sandbox_mode(None, {"CI": "1"}) == "required"
    assert sandbox_mode(None, {}) == "preferred"
    assert sandbox_mode("off", {"CI": "true"}) == "off"


def test_a_required_sandbox_that_is_missing_stops_the_run_before_any_model_call(
    fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.script("planner", valid_answer)
    fake.script("debugger", lambda call: diagnosis(RIGHT_FIX))
    spec = project(tmp_path)
    bin_dir = tmp_path / "bin"  # a PATH with the tools checks need, without bubblewrap
    bin_dir.mkdir()
    for tool in ("git", "sh"):
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    bubblewrap_problem.cache_clear()
    try:
        workflow = prepare_workflow(load_spec(spec))
        with pytest.raises(SpecError, match="bubblewrap is not installed"):
            run_workflow(workflow, RunOptions(output_dir=tmp_path / "out", checkpoint="memory"))
        assert fake.calls == []
        preferred = prepare_workflow(load_spec(spec, ["verify.sandbox=preferred"]))
        outcome = run_workflow(preferred, RunOptions(output_dir=tmp_path / "out", checkpoint="memory"))
        assert any("WITHOUT a sandbox" in w for w in outcome.result.warnings)
        assert outcome.result.subtasks[0].verification[0].verdict == "verified"  # unsandboxed, but run
        assert "WITHOUT a sandbox" in (tmp_path / "out" / "report.md").read_text()
    finally:
        bubblewrap_problem.cache_clear()


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout


def repository(tmp_path: Path) -> Path:
    spec = project(tmp_path)
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "-c", "user.email=t@example", "-c", "user.name=t", "add", "-A")
    git(tmp_path, "-c", "user.email=t@example", "-c", "user.name=t", "commit", "-q", "-m", "start")
    return spec


@needs_bwrap
def test_apply_commits_verified_patches_on_a_new_branch_and_nothing_else(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("planner", valid_answer)
    fake.script("debugger", lambda call: diagnosis(RIGHT_FIX))
    spec = repository(tmp_path)
    (tmp_path / "notes.txt").write_text("my own uncommitted work\n")
    workflow = prepare_workflow(load_spec(spec))
    outcome = run_workflow(workflow, RunOptions(output_dir=tmp_path / "out", checkpoint="default"))
    assert outcome.result.verification and outcome.result.verification.patches[0].verdict == "verified"
    assert "items={}" in (tmp_path / "project" / "inventory" / "store.py").read_text()  # the run wrote nothing
    done = orchestrator("apply", outcome.run_id, "--branch", "fix/store")
    assert done.returncode == 0, done.stderr
    assert git(tmp_path, "branch", "--show-current").strip() == "fix/store"
    changed = git(tmp_path, "show", "--name-only", "--format=%s", "HEAD").split()
    assert changed[-1] == "project/inventory/store.py" and "t1-1" in git(tmp_path, "log", "-1", "--format=%B")
    assert "items=None" in (tmp_path / "project" / "inventory" / "store.py").read_text()
    assert (tmp_path / "notes.txt").read_text() == "my own uncommitted work\n"  # left alone, uncommitted
    again = orchestrator("apply", outcome.run_id, "--branch", "fix/store")
    assert again.returncode == 2 and "already exists" in again.stderr


def test_apply_refuses_unverified_patches_unless_forced(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("planner", valid_answer)
    fake.script("debugger", lambda call: diagnosis(WRONG_FIX))
    spec = project(tmp_path)
    spec.write_text(spec.read_text().replace("[fake/debugger, fake/second]", "fake/debugger"))
    spec.write_text(spec.read_text().replace("reflections: 1, sandbox: required", "reflections: 0, sandbox: off"))
    result_dir = tmp_path / "out"
    workflow = prepare_workflow(load_spec(spec))
    outcome = run_workflow(workflow, RunOptions(output_dir=result_dir, checkpoint="memory"))
    assert outcome.result.subtasks[0].verification[0].verdict == "unverified"
    refused = orchestrator("apply", result_dir / "result.json")
    assert refused.returncode == 2 and "no verified patch" in refused.stderr
    named = orchestrator("apply", result_dir / "result.json", "--patch", "t1-1")
    assert named.returncode == 2 and "--force" in named.stderr
    forced = orchestrator("apply", result_dir / "result.json", "--patch", "t1-1", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "changed in place" in forced.stdout  # not a git repository
    assert "# shared on purpose" in (tmp_path / "project" / "inventory" / "store.py").read_text()


@needs_bwrap
def test_sarif_fixes_junit_cases_and_the_summary_of_a_verified_patch_are_valid(
    fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jsonschema
    import xmlschema

    data = Path(__file__).parent / "data"
    fake.script("planner", valid_answer)
    fake.script("debugger", lambda call: diagnosis(RIGHT_FIX))
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    spec = project(tmp_path)
    workflow = prepare_workflow(load_spec(spec))
    out = tmp_path / "out"
    outcome = run_workflow(
        workflow, RunOptions(output_dir=out, checkpoint="memory", formats=["sarif", "junit", "json"])
    )
    sarif = json.loads((out / "findings.sarif").read_text())
    jsonschema.validate(sarif, json.loads((data / "sarif-schema-2.1.0.json").read_text()))
    (fix,) = [r for r in sarif["runs"][0]["results"] if "fixes" in r]
    (change,) = fix["fixes"][0]["artifactChanges"]
    assert change["artifactLocation"]["uri"] == "inventory/store.py"
    (replacement,) = change["replacements"]
    assert replacement["deletedRegion"]["startLine"] == 2 and "items=None" in replacement["insertedContent"]["text"]
    xml = (out / "junit.xml").read_text()
    xmlschema.XMLSchema(data / "junit-10.xsd").validate(xml)
    assert 'name="t1-1: tests"' in xml
    from orchestrator.outputs.github import write_step_summary

    write_step_summary(outcome.result)
    assert "| t1-1 | verified | tests fail → pass |" in summary.read_text()
