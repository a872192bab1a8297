"""Custom graphs running on scripted fake models: conditional routes, bounded loops, ensembles,
per-node models, JSON-Schema roles and Python graphs."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from orchestrator import RunOptions, run_workflow
from orchestrator.errors import SpecError
from orchestrator.spec import load_spec
from orchestrator.testing import Call, FakeProvider, valid_answer
from orchestrator.workflow import prepare_workflow
from tests.process import orchestrator

REPO = Path(__file__).resolve().parent.parent
GOOD_DIFF = "--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"
BAD_DIFF = "--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,2 @@\n def nothing():\n-    x\n+    y\n"


def spec_text(graph: str, models: str = "{default: fake/m}", extra: str = "") -> str:
    return (
        textwrap.dedent(
            f"""\
        version: 1
        name: graph-run
        goal: Fix app.py.
        workspace: ws
        graph: {graph}
        providers: {{fake: {{kind: fake}}}}
        models: {models}
        fail_on: none
        """
        )
        + extra
    )


def run(spec: Path, tmp_path: Path) -> dict[str, Any]:
    outcome = run_workflow(prepare_workflow(load_spec(spec)), RunOptions(output_dir=tmp_path / "out"))
    return outcome.result.model_dump(mode="json")


def ids(result: dict[str, Any]) -> list[str]:
    return [s["id"] for s in result["subtasks"]]


def findings_of(severity: str) -> str:
    item = {"severity": severity, "file": "app.py", "line": 2, "title": "t", "detail": "d", "suggestion": "s"}
    return json.dumps({"findings": [item]})


def patches_of(diff: str) -> str:
    return json.dumps({"patches": [{"file": "app.py", "diff": diff, "rationale": "r"}]})


def copy_example(name: str, tmp_path: Path) -> Path:
    """The example and the quickstart it points at, in a repository of their own (as in this one:
    a spec's workspace must stay inside the spec's repository)."""
    shutil.copytree(REPO / "examples" / name, tmp_path / name)
    shutil.copytree(REPO / "examples" / "quickstart", tmp_path / "quickstart", ignore=shutil.ignore_patterns("out"))
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path / name / "spec.yaml"


# ---------------------------------------------------------------- conditional route


@pytest.mark.parametrize(("severity", "refactored"), [("critical", True), ("high", True), ("medium", False)])
def test_conditional_route_follows_the_review(
    severity: str, refactored: bool, fake: FakeProvider, tmp_path: Path
) -> None:
    spec = copy_example("custom-graph", tmp_path)
    fake.script("m", lambda c: findings_of(severity) if c.kind == "findings" else valid_answer(c))
    spec.write_text(
        spec.read_text().replace("  default: local/smollm2", "  default: fake/m") + "providers: {fake: {kind: fake}}\n"
    )
    result = run(spec, tmp_path)
    assert ids(result) == (["review", "refactor"] if refactored else ["review"])
    assert [c.kind for c in fake.calls] == ["findings", *(["patches"] if refactored else []), "aggregate"]
    if refactored:  # the refactor step reads the review
        refactor_call = fake.calls[1]
        assert "Results of earlier steps" in refactor_call.user and '"severity"' in refactor_call.user


# ---------------------------------------------------------------- bounded loop


def loop_script(valid_on: int | None) -> Any:
    fixes = {"n": 0}

    def script(call: Call) -> str:
        if call.kind == "patches":
            fixes["n"] += 1
            return patches_of(GOOD_DIFF if valid_on is not None and fixes["n"] >= valid_on else BAD_DIFF)
        return valid_answer(call)

    return script


def test_loop_runs_at_most_max_iterations_then_leaves(fake: FakeProvider, write_spec: Any, tmp_path: Path) -> None:
    fake.script("m", loop_script(valid_on=None))  # the fix never applies
    result = run(write_spec(spec_text("debug-loop")), tmp_path)
    assert ids(result) == ["diagnose", "fix", "diagnose#2", "fix#2", "diagnose#3", "fix#3"]
    assert result["aggregate"]["status"] == "ok"
    assert all(c["valid"] is False for s in result["subtasks"] if s["role"] == "fix" for c in s["checks"])
    # a re-diagnosis sees the failed patch and git's verdict on it
    second = [c for c in fake.calls if c.kind == "diagnosis"][1]
    assert "patch_checks" in second.user and '"valid": false' in second.user


def test_loop_ends_as_soon_as_the_patch_applies(fake: FakeProvider, write_spec: Any, tmp_path: Path) -> None:
    fake.script("m", loop_script(valid_on=2))
    result = run(write_spec(spec_text("debug-loop")), tmp_path)
    assert ids(result) == ["diagnose", "fix", "diagnose#2", "fix#2"]
    assert result["subtasks"][-1]["checks"][0]["valid"] is True


# ---------------------------------------------------------------- ensembles


def is_merge(call: Call) -> bool:
    return "disagreements" in call.schema["properties"]


def merging(merged: dict[str, Any] | None = None) -> Any:
    """A script that answers merges with `merged` (default: one low finding, no disagreement)."""
    answer = merged or {**json.loads(findings_of("low")), "disagreements": []}
    return lambda call: json.dumps(answer) if is_merge(call) else valid_answer(call)


def test_ensemble_sends_the_review_to_every_model_and_merges(
    fake: FakeProvider, write_spec: Any, tmp_path: Path
) -> None:
    for model, severity in (("a", "low"), ("b", "high"), ("c", "medium")):
        fake.script(model, lambda c, s=severity: findings_of(s))
    merged = {"findings": json.loads(findings_of("high"))["findings"], "disagreements": ["b rates it high, a low"]}
    fake.script("planner", merging(merged))
    models = "{planner: fake/planner, architecture_review: [fake/a, fake/b, fake/c]}"
    result = run(write_spec(spec_text("ensemble-review", models)), tmp_path)
    assert ids(result) == ["review.1", "review.2", "review.3", "merge"]
    assert [s["model"] for s in result["subtasks"][:3]] == ["fake/a", "fake/b", "fake/c"]  # each its own model
    assert all(s["proposal_of"] == "review" for s in result["subtasks"][:3])
    merge = result["subtasks"][3]
    assert merge["proposals"] == ["review.1", "review.2", "review.3"]
    assert merge["output"]["disagreements"] == ["b rates it high, a low"]
    merge_prompt = next(c for c in fake.calls_to("planner") if is_merge(c)).user
    assert all(f"review.{i}" in merge_prompt for i in (1, 2, 3))
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Disagreements between the proposals" in report and "b rates it high" in report


def test_ensemble_proposers_fall_back_along_the_rotated_chain(
    fake: FakeProvider, write_spec: Any, tmp_path: Path
) -> None:
    def down(call: Call) -> str:
        raise ConnectionRefusedError("down")

    fake.script("a", down)
    fake.script("b", lambda c: findings_of("low"))
    fake.script("planner", merging())
    models = "{planner: fake/planner, architecture_review: [fake/a, fake/b]}"
    spec = write_spec(spec_text("ensemble-review", models, "limits: {retries: 0}\n"))
    result = run(spec, tmp_path)
    proposals = result["subtasks"][:2]
    assert [p["model"] for p in proposals] == ["fake/b", "fake/b"]  # proposer 1 fell back from a to b
    assert proposals[0]["fallbacks"][0]["model"] == "fake/a"


def test_single_model_ensemble_samples_it_with_different_seeds(
    fake: FakeProvider, write_spec: Any, tmp_path: Path
) -> None:
    fake.script("m", merging())
    result = run(write_spec(spec_text("ensemble-review")), tmp_path)
    assert ids(result) == ["review.1", "review.2", "merge"]
    proposals = [c for c in fake.calls if c.kind == "findings" and not is_merge(c)]
    assert len(proposals) == 2
    assert sorted(seed for model, seed in fake.built if model == "m") == [42, 43]  # one model, two seeds


# ---------------------------------------------------------------- per-node settings, schema roles


NODE_GRAPH = """
version: 1
name: node-settings
roles:
  scorer:
    output:
      type: object
      properties:
        score: {type: integer, minimum: 0, maximum: 10}
        reason: {type: string}
      required: [score, reason]
      additionalProperties: false
    prompt: "Score the code for $goal. $instruction"
nodes:
  score: {kind: role, role: scorer, models: [fake/special], retries: 0}
  aggregate: {kind: aggregate}
edges:
  - [START, score]
  - [score, aggregate]
  - [aggregate, END]
"""


def test_node_models_retries_and_a_json_schema_role(fake: FakeProvider, write_spec: Any, tmp_path: Path) -> None:
    answers = iter([json.dumps({"score": 11, "reason": "too high"}), json.dumps({"score": 7, "reason": "fine"})])
    fake.script("special", lambda c: next(answers))
    fake.script("m", valid_answer)
    spec = write_spec(spec_text("g.yaml"))
    (tmp_path / "g.yaml").write_text(NODE_GRAPH)
    result = run(spec, tmp_path)
    (score,) = result["subtasks"]
    assert score["model"] == "fake/special" and score["output"] == {"score": 7, "reason": "fine"}
    calls = fake.calls_to("special")
    assert len(calls) == 2 and "score: 11 is greater than the maximum of 10" in calls[1].user  # the repair
    assert calls[0].schema["properties"]["score"]["maximum"] == 10  # the role's own schema constrains


def test_node_retries_override_the_run(fake: FakeProvider, write_spec: Any, tmp_path: Path) -> None:
    def flaky(call: Call) -> str:
        raise ConnectionResetError("reset")

    fake.script("special", flaky)
    fake.script("m", valid_answer)
    (tmp_path / "g.yaml").write_text(NODE_GRAPH)
    result = run(write_spec(spec_text("g.yaml", extra="limits: {retries: 5, backoff_s: 0}\n")), tmp_path)
    assert len(fake.calls_to("special")) == 1  # the node's retries: 0 wins over limits.retries: 5
    assert result["subtasks"][0]["status"] == "failed" and result["exit_code"] == 3


def test_unknown_role_in_a_graph_is_reported_in_the_graph_file(
    fake: FakeProvider, write_spec: Any, tmp_path: Path
) -> None:
    (tmp_path / "g.yaml").write_text(NODE_GRAPH.replace("role: scorer", "role: scorre"))
    with pytest.raises(SpecError) as caught:
        prepare_workflow(load_spec(write_spec(spec_text("g.yaml"))))
    (problem,) = caught.value.problems
    assert problem.file.endswith("g.yaml") and problem.field == "nodes.score.role" and problem.line == 15
    assert "did you mean 'scorer'" in problem.message


# ---------------------------------------------------------------- Python graphs


def test_the_python_graph_example_runs_with_the_same_node_factories(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("m", valid_answer)
    spec = copy_example("python-graph", tmp_path)
    spec.write_text(spec.read_text() + "providers: {fake: {kind: fake}}\nmodels: {default: fake/m}\n")
    result = run(spec, tmp_path)
    assert ids(result) == ["review", "document"]
    assert [c.kind for c in fake.calls] == ["findings", "docs", "aggregate"]
    assert "Results of earlier steps" in fake.calls[1].user  # document reads the review
    assert result["spec"]["graph"] == "review_then_document:build"
    assert all(s["tokens_in"] > 0 and s["model"] == "fake/m" for s in result["subtasks"])


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("", "has no function 'build'"),
        ("def build(kit):\n    raise RuntimeError('nope')\n", "raised RuntimeError: nope"),
        ("def build(kit):\n    return 42\n", "must return a StateGraph"),
        (
            "def build(kit):\n    kit.role_node('x', role='debug', models=['qwen3-codr'])\n",
            "did you mean 'qwen3-coder'",
        ),
    ],
)
def test_bad_python_graphs_are_spec_errors(
    code: str, fragment: str, fake: FakeProvider, write_spec: Any, tmp_path: Path
) -> None:
    (tmp_path / "mygraph_bad.py").write_text(code)
    spec = write_spec(spec_text('"mygraph_bad:build"'))
    import sys

    sys.modules.pop("mygraph_bad", None)
    with pytest.raises(SpecError) as caught:
        prepare_workflow(load_spec(spec))
    assert fragment in str(caught.value) and "graph" in {p.field for p in caught.value.problems}


def test_validate_a_spec_whose_graph_file_is_broken_exits_2(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "g.yaml").write_text(NODE_GRAPH.replace("[score, aggregate]", "[score, aggregat]"))
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        spec_text("g.yaml").replace("providers: {fake: {kind: fake}}\n", "").replace("fake/m", "local/smollm2")
    )
    done = orchestrator("validate", spec)
    assert done.returncode == 2
    assert f"{tmp_path / 'g.yaml'}:19: edges.1.1: unknown node 'aggregat'" in done.stderr
