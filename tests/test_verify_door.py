"""Verification's door and its outcome: `orchestrator verify` under the operator's policy and
pull-request rules as `run` is, a patch the model already ran with `run_check` judged once, the
quality gate of `verify.require` and the verdicts in every report, the interpreter checks find
(never the orchestrator's own environment on PATH), the ignored files a copy gets, and the
original workspace hidden from a sandboxed check."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import RunOptions, run_workflow, verify_patches
from orchestrator.checks import Protection, Verifier, _ignored, bubblewrap_problem, find_interpreter, find_sandbox
from orchestrator.checks._scratch import copied_paths, copy_workspace, shared_paths
from orchestrator.errors import PolicyError
from orchestrator.outputs.github import step_summary
from orchestrator.outputs.sarif import build_sarif
from orchestrator.spec import CheckSpec, load_spec
from orchestrator.spec.operator import load_operator
from orchestrator.testing import FakeProvider, in_order, tool_call, valid_answer
from orchestrator.workflow import prepare_workflow
from tests.envs import environment
from tests.process import orchestrator
from tests.test_agentic import RIGHT_FIX, SPEC, WRONG_FIX, diagnosis, project

needs_bwrap = pytest.mark.skipif(bool(bubblewrap_problem()), reason=bubblewrap_problem() or "")


@pytest.fixture(scope="module")
def small_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return environment(tmp_path_factory.mktemp("env") / "env")


@pytest.fixture
def active_env(small_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project environment is the active one (its pytest starts in a fraction of ours)."""
    monkeypatch.setenv("VIRTUAL_ENV", str(small_env))
    return small_env


PR_EVENT = {"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request"}
ESCAPING_TEST = """\
import os
from pathlib import Path


def test_writes_where_it_can():
    for target in ("{home}/escaped", "/var/tmp/escaped-{tag}", "{workspace}/escaped"):
        try:
            Path(target).write_text("x")
        except OSError:
            pass
"""


def pr_project(tmp_path: Path, run: str) -> tuple[Path, Path]:
    """A pull request's spec that asks for no sandbox, and the operator's policy: sandbox
    required, only `python -m pytest` checks."""
    workspace = tmp_path / "repo"
    (workspace / "tests").mkdir(parents=True)
    home = tmp_path / "home"
    home.mkdir()
    test = ESCAPING_TEST.format(home=home, tag=tmp_path.name, workspace=workspace)
    (workspace / "tests" / "test_escape.py").write_text(test)
    (workspace / "calc.py").write_text("X = 1\n")
    spec = workspace / "spec.yaml"
    spec.write_text(
        "version: 1\nname: pr\ngoal: g\nworkspace: .\n"
        f"checks:\n  tests: {{run: {json.dumps(run)}, timeout_s: 120}}\nverify: {{sandbox: off}}\n"
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text('sandbox: required\nallow_checks: ["python -m pytest*"]\n')
    return spec, policy


@needs_bwrap
def test_verify_runs_a_pull_requests_checks_under_the_operators_floor(active_env: Path, tmp_path: Path) -> None:
    spec, policy = pr_project(tmp_path, "python -m pytest -q -p no:cacheprovider")
    patch = tmp_path / "fix.diff"
    patch.write_text("--- a/calc.py\n+++ b/calc.py\n@@ -1 +1 @@\n-X = 1\n+X = 2\n")
    env = {**PR_EVENT, "ORCHESTRATOR_POLICY": str(policy), "HOME": str(tmp_path / "home")}
    done = orchestrator("verify", spec, "--patch", patch, "--json", env=env)
    payload = json.loads(done.stdout)
    # the spec's `sandbox: off` is raised to the operator's `required`: the check ran sandboxed
    sandbox = payload["sandbox"]
    assert (sandbox["mode"], sandbox["runner"], sandbox["reason"]) == ("required", "bubblewrap", ""), done.stderr
    assert payload["verdict"] == "verified" and done.returncode == 0
    assert not (tmp_path / "home" / "escaped").exists() and not Path(f"/var/tmp/escaped-{tmp_path.name}").exists()
    assert not (spec.parent / "escaped").exists()  # it wrote into its copy, at the workspace's path


def test_verify_refuses_a_check_the_operator_does_not_admit_before_it_runs(tmp_path: Path) -> None:
    spec, policy = pr_project(tmp_path, f"touch {tmp_path}/pwned")
    patch = tmp_path / "fix.diff"
    patch.write_text("--- a/calc.py\n+++ b/calc.py\n@@ -1 +1 @@\n-X = 1\n+X = 2\n")
    done = orchestrator("verify", spec, "--patch", patch, env={**PR_EVENT, "ORCHESTRATOR_POLICY": str(policy)})
    assert done.returncode == 5 and "allow_checks" in done.stderr and not (tmp_path / "pwned").exists()
    # the library's door is the same one
    operator = load_operator(policy, untrusted=True)
    with pytest.raises(PolicyError, match="not admitted by allow_checks"):
        verify_patches(load_spec(spec), [patch.read_text()], operator=operator)
    assert not (tmp_path / "pwned").exists()


def test_a_patch_the_model_ran_with_run_check_is_judged_once(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "tests").mkdir(parents=True)
    (workspace / "app.py").write_text("X = 1\n")
    (workspace / "tests" / "test_app.py").write_text("def test_x():\n    pass\n")
    counter = tmp_path / "runs"
    checks = {"t": CheckSpec(run=f"echo run >> {counter}")}
    diff = "--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-X = 1\n+X = 2\n"
    other = "--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-X = 1\n+X = 3\n"
    test_diff = "@@ -1,2 +1,2 @@\n-def test_x():\n+def test_y():\n     pass\n"
    touching = diff + "--- a/tests/test_app.py\n+++ b/tests/test_app.py\n" + test_diff
    verifier = Verifier(workspace, checks, ["t"], find_sandbox("off"), protection=Protection())

    async def scenario() -> list[bool]:
        await verifier.run("t", diff, "model")
        await verifier.run("t", touching, "model")
        judged = [await verifier.verify(f"p-{i}", "s", None, 0, d) for i, d in enumerate((diff, other, touching))]
        return [v.checks[0].reused for v in judged]

    try:
        reused = asyncio.run(scenario())
    finally:
        verifier.close()
    # the same bytes reuse the model's run; other bytes, or a run the judge's files were put back
    # for, run again: baseline, 2 run_check runs, then `other` and `touching`
    assert reused == [True, False, False]
    assert counter.read_text().count("run") == 5


@needs_bwrap
def test_a_run_with_an_unverified_fix_fails_the_quality_gate_and_every_report_says_so(
    fake: FakeProvider, active_env: Path, tmp_path: Path
) -> None:
    fake.script("planner", valid_answer)
    fake.script("debugger", in_order(tool_call("run_check", check="tests", diff=RIGHT_FIX), diagnosis(WRONG_FIX)))
    spec = project(tmp_path, SPEC.replace("debug: [fake/debugger, fake/second]", "debug: fake/debugger"))
    spec.write_text(spec.read_text().replace("reflections: 1", "reflections: 0"))
    outcome = run_workflow(
        prepare_workflow(load_spec(spec)), RunOptions(output_dir=tmp_path / "out", checkpoint="memory")
    )
    result = outcome.result
    assert int(outcome.exit_code) == 1 and result.status == "quality_gate" and result.max_severity is None
    report = result.verification
    assert report is not None and report.require
    assert report.gate == "verify.require: 1 proposed patch(es) not verified (t1-1 unverified)"
    (verdict,) = report.patches
    assert verdict.targets == ["tests.test_store::test_new_store_is_empty"]  # the instruction names it
    assert "the target tests still fail" in verdict.checks[0].problem
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "**Quality gate**: verify.require: 1 proposed patch(es) not verified" in markdown
    assert "Interpreter: `" + str(active_env / "bin" / "python") + "` (VIRTUAL_ENV" in markdown
    page = (tmp_path / "out" / "report.html").read_text()
    assert 'data-verdict="unverified"' in page and '<span class="badge b-bad">unverified</span>' in page
    assert '<span class="muted applies"' in page and '<span class="badge b-good">applies' not in page
    assert "Quality gate" in step_summary(result) and "| t1-1 | unverified |" in step_summary(result)
    sarif = build_sarif(result, {}, "test")
    (warning,) = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "debug/unverified-patch"]
    assert warning["level"] == "warning" and warning["properties"]["verdict"] == "unverified"
    # verify.require off: the same answer leaves the run's exit status to the findings
    fake.script("debugger", in_order(diagnosis(WRONG_FIX)))
    lenient = prepare_workflow(load_spec(spec, ["verify.require=false"]))
    outcome = run_workflow(lenient, RunOptions(output_dir=tmp_path / "out2", checkpoint="memory"))
    assert int(outcome.exit_code) == 0 and outcome.result.verification is not None
    assert outcome.result.verification.gate == "" and not outcome.result.verification.require


@needs_bwrap
def test_a_fix_verified_after_the_model_ran_it_reuses_that_run(
    fake: FakeProvider, active_env: Path, tmp_path: Path
) -> None:
    fake.script("planner", valid_answer)
    fake.script("debugger", in_order(tool_call("run_check", check="tests", diff=RIGHT_FIX), diagnosis(RIGHT_FIX)))
    spec = project(tmp_path, SPEC.replace("debug: [fake/debugger, fake/second]", "debug: fake/debugger"))
    outcome = run_workflow(
        prepare_workflow(load_spec(spec)), RunOptions(output_dir=tmp_path / "out", checkpoint="memory")
    )
    (verdict,) = outcome.result.subtasks[0].verification
    assert verdict.verdict == "verified" and verdict.checks[0].reused and int(outcome.exit_code) == 0
    assert "(the run_check run of the same patch)" in (tmp_path / "out" / "report.html").read_text()


def test_checks_find_the_projects_interpreter_never_ours_on_path(tmp_path: Path) -> None:
    ours = Path(sys.prefix)
    if sys.prefix == sys.base_prefix:
        pytest.skip("the tests run from a base installation, not a virtual environment")
    path = os.pathsep.join([str(ours / "bin"), "/usr/local/bin", "/usr/bin", "/bin"])
    workspace = tmp_path / "ws"
    workspace.mkdir()
    found = find_interpreter(workspace, {"PATH": path})
    assert found.source == "PATH" and str(ours / "bin") not in found.path.split(os.pathsep)
    assert found.python is None or not found.python.resolve().is_relative_to(ours.resolve())
    active = environment(tmp_path / "active")
    chosen = find_interpreter(workspace, {"PATH": path, "VIRTUAL_ENV": str(active)})
    assert (chosen.source, chosen.python, chosen.prefix) == ("VIRTUAL_ENV", active / "bin" / "python", active)
    assert chosen.path.split(os.pathsep)[0] == str(active / "bin")
    assert chosen.environment()["VIRTUAL_ENV"] == str(active)
    (workspace / ".venv").symlink_to(active)
    own = find_interpreter(workspace, {"PATH": path, "VIRTUAL_ENV": str(ours)})
    assert own.source == "the workspace's .venv" and own.python == workspace / ".venv" / "bin" / "python"
    assert str(ours / "bin") not in own.path.split(os.pathsep)
    # the environment a user activates on purpose is theirs, even the orchestrator's own
    named = find_interpreter(tmp_path, {"PATH": path, "VIRTUAL_ENV": str(ours)})
    assert named.source == "VIRTUAL_ENV" and named.path.split(os.pathsep)[0] == str(ours / "bin")


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example", "-c", "user.name=t", *args], cwd=cwd, check=True)


def ignored_workspace(root: Path) -> Path:
    files = {
        ".gitignore": "build/\n.venv/\nnode_modules/\n__pycache__/\n.env\n_version.py\nbig/\n",
        "app.py": "X = 1\n",
        "_version.py": "__version__ = '1.0'\n",
        "build/lib/native.so": "binary\n",
        ".env": "TOKEN=secret\n",
        ".venv/pyvenv.cfg": "home = /usr/bin\n",
        "node_modules/left/index.js": "x\n",
        "build/__pycache__/a.pyc": "x\n",
        "big/one.bin": "x" * 3000,
        "big/two.bin": "x" * 3000,
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    return root


def test_the_copy_gets_the_ignored_files_a_project_needs_within_a_reported_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = ignored_workspace(tmp_path / "ws")
    monkeypatch.setattr(_ignored, "MAX_BYTES", 4000)
    overlay = copy_workspace(workspace, tmp_path / "copy")
    copied = {p.relative_to(tmp_path / "copy").as_posix() for p in (tmp_path / "copy").rglob("*") if p.is_file()}
    assert {"app.py", ".gitignore", "_version.py", "build/lib/native.so"} <= copied
    assert not {".env", ".venv/pyvenv.cfg", "node_modules/left/index.js", "build/__pycache__/a.pyc"} & copied
    assert len({"big/one.bin", "big/two.bin"} & copied) == 1  # smallest first, up to the bound
    assert overlay.bound.startswith("1 ignored files (2 KiB) were not copied") and "big/" in overlay.bound
    assert {".env", ".venv/", "node_modules/", "build/__pycache__/"} <= set(overlay.left_out)
    # what decides whether a check's output is withheld counts the ignored files a copy takes too
    assert set(copied_paths(workspace)) == copied


@needs_bwrap
def test_a_sandboxed_check_sees_the_copy_at_the_workspaces_path_and_never_the_original(tmp_path: Path) -> None:
    workspace = ignored_workspace(tmp_path / "ws")
    probe = (
        "import os; print('env:', os.path.exists('.env'), 'version:', open('_version.py').read().strip(), "
        "'venv:', os.path.exists('.venv/pyvenv.cfg'), 'cwd:', os.getcwd())"
    )
    checks = {"look": CheckSpec(run=["python", "-c", probe])}
    verifier = Verifier(workspace, checks, ["look"], find_sandbox("required"))
    try:
        run = asyncio.run(verifier.run("look", None, "t"))
    finally:
        verifier.close()
    assert run.status == "pass", run.output
    # the secret the copy leaves out is not there, the original's own copy of it is hidden under
    # the copy; the generated file and the workspace's environment are
    assert f"env: False version: __version__ = '1.0' venv: True cwd: {workspace}" in run.output


@needs_bwrap
def test_a_workspaces_environment_that_links_out_is_not_bound_into_the_sandbox(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "app.py").write_text("X = 1\n")
    (tmp_path / "secret.txt").write_text("the original's neighbour\n")
    (workspace / ".venv").symlink_to("/")  # a pull request's environment: the whole host
    (workspace / "node_modules").symlink_to("..")  # the folder holding the original workspace
    assert shared_paths(workspace) == [] and find_interpreter(workspace, {"PATH": "/usr/bin"}).source == "PATH"
    look = "import os; print('host:', os.path.exists('.venv/etc/passwd'), os.path.exists('node_modules/secret.txt'))"
    verifier = Verifier(workspace, {"look": CheckSpec(run=["python", "-c", look])}, ["look"], find_sandbox("required"))
    try:
        run = asyncio.run(verifier.run("look", None, "t"))
    finally:
        verifier.close()
    assert "host: False False" in run.output, run.output
