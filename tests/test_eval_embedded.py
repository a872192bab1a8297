"""Integration: the embedded model (SmolLM2-135M through llama.cpp) runs one small eval end to end
through the real command: one instance, one arm, one repeat. Whatever the model answers, the run
finishes, its patch (if any) is judged by the instance's tests, and the tables are written."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from orchestrator.checks import unified_diff
from tests.process import orchestrator

pytestmark = [pytest.mark.integration, pytest.mark.embedded]

OPS = "def add(a, b):\n    return a - b\n"
SPEC = """\
version: 1
name: embedded-eval
goal: replaced by the instance's
workspace: .
include: ["calc/*.py"]
models: {default: local/smollm2}
graph: debug-only.yaml
checks:
  tests: {run: "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 python -m pytest -q -p no:cacheprovider", timeout_s: 120}
verify: {checks: [], require: false}  # the eval's judge runs the tests; the run only answers
roles:
  debug: {tools: []}
limits: {timeout_s: 600, max_output_tokens: 256}
"""
GRAPH = """\
version: 1
name: debug-only
nodes:
  debug: {kind: role, role: debug, instruction: "Fix the bug the goal describes.", files: [calc/ops.py]}
edges:
  - [START, debug]
  - [debug, END]
"""
EVAL = """\
version: 1
name: embedded
spec: spec.yaml
instances:
  - id: add
    workspace: repo
    base: main
    goal: "add(2, 3) returns -1 instead of 5"
    test_patch: add.diff
    fail_to_pass: ["tests/test_add.py::test_add"]
arms:
  embedded: {models: {debug: local/smollm2}}
"""


def git(repo: Path, *args: str) -> None:
    identity = ["-c", "user.name=t", "-c", "user.email=t@x"]
    subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True)


def test_the_embedded_model_runs_one_eval_to_its_tables(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "calc").mkdir(parents=True)
    (repo / "calc" / "__init__.py").write_text("")
    (repo / "calc" / "ops.py").write_text(OPS)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "calc")
    test = "from calc.ops import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    (tmp_path / "add.diff").write_text(unified_diff("tests/test_add.py", "", test))
    (tmp_path / "spec.yaml").write_text(SPEC)
    (tmp_path / "debug-only.yaml").write_text(GRAPH)
    (tmp_path / "eval.yaml").write_text(EVAL)
    out = tmp_path / "out"
    done = orchestrator("eval", "run", tmp_path / "eval.yaml", "--output-dir", out, "--json", timeout=1800)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    (run,) = report["runs"]
    assert run["status"] in ("ok", "quality_gate") and run["run_id"]
    assert run["outcome"] in ("resolved", "unresolved", "no_patch", "not_applied", "judge_only")
    assert run["tokens_out"] > 0 and [r["models"] for r in run["roles"]] == [["local/smollm2"]]
    assert report["instances"][0]["valid"] and report["arms"][0]["judged"] == 1
    markdown = (out / "eval.md").read_text()
    assert "## Arms, ranked by resolved rate" in markdown and "| 1 | embedded |" in markdown
    assert (out / "eval.html").is_file() and (out / "runs" / "embedded" / "add" / "r1" / "result.json").is_file()
