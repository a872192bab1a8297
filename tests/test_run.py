"""Whole workflows on scripted fake models: planning, fan-out, fallbacks, exit codes, outputs."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator import RunOptions, run_workflow
from orchestrator.spec import load_spec
from orchestrator.testing import Call, FakeProvider, valid_answer
from orchestrator.workflow import prepare_workflow

ROLES = ["architecture_review", "arabic_docs", "debug", "refactor"]
FAKE_SPEC = """
version: 1
name: fake-run
goal: Review and fix the sample app.
workspace: ws
providers: {fake: {kind: fake}}
models:
  planner: fake/planner
  architecture_review: [fake/reviewer, fake/backup]
  refactor: fake/coder
  debug: fake/debugger
  arabic_docs: fake/writer
"""


def run(spec: Path, tmp_path: Path, overrides: list[str] | None = None) -> tuple[int, dict[str, Any]]:
    workflow = prepare_workflow(load_spec(spec, overrides or []))
    outcome = run_workflow(workflow, RunOptions(output_dir=tmp_path / "out"))
    written = json.loads((tmp_path / "out" / "result.json").read_text())
    assert written == outcome.result.model_dump(mode="json")  # the file is the outcome
    return outcome.exit_code, outcome.result.model_dump(mode="json")


def script_all(fake: FakeProvider, answer: Callable[[Call], str] = valid_answer) -> None:
    for model in ("planner", "reviewer", "backup", "coder", "debugger", "writer"):
        fake.script(model, answer)


def test_planner_plans_fans_out_and_aggregates(fake: FakeProvider, write_spec: Any, tmp_path: Path) -> None:
    script_all(fake)
    code, result = run(write_spec(FAKE_SPEC), tmp_path)
    assert code == 0 and result["status"] == "ok"
    assert result["plan"]["source"] == "planner"
    assert sorted(s["role"] for s in result["subtasks"]) == sorted(ROLES)
    assert all(s["status"] == "ok" for s in result["subtasks"])
    assert {s["model"] for s in result["subtasks"]} == {"fake/reviewer", "fake/coder", "fake/debugger", "fake/writer"}
    assert result["aggregate"]["output"]["summary"] == "all done"
    # planner: plan + aggregate; one call per subtask
    assert len(fake.calls_to("planner")) == 2
    assert len(fake.calls) == 2 + 4
    assert result["totals"]["tokens_in"] == 11 * 6 and result["totals"]["by_model"]["fake/planner"]["calls"] == 2


def test_role_prompts_carry_goal_instruction_and_fenced_files(
    fake: FakeProvider, write_spec: Any, tmp_path: Path
) -> None:
    script_all(fake)
    run(write_spec(FAKE_SPEC), tmp_path)
    review = fake.calls_to("reviewer")[0]
    system, user = review.messages[0].text, review.messages[1].text
    assert '<file path="app.py">' in system and "return a - b" in system
    assert "never instructions" in system
    assert "Review and fix the sample app." in user and "do architecture_review" in user
    # the file field of findings is constrained to the workspace files
    item = review.schema["properties"]["findings"]["items"]
    assert sorted(item["properties"]["file"]["enum"]) == ["app.py", "lib/util.py"]


def test_spec_tasks_skip_the_planning_call(fake: FakeProvider, write_spec: Any, tmp_path: Path) -> None:
    script_all(fake)
    spec = write_spec(
        FAKE_SPEC
        + """
tasks:
  - {role: debug, instruction: Why does add subtract?, files: [app.py]}
  - {role: debug, instruction: Check home()., files: [lib/util.py]}
"""
    )
    code, result = run(spec, tmp_path)
    assert code == 0 and result["plan"]["source"] == "spec"
    assert [c.kind for c in fake.calls_to("planner")] == ["aggregate"]
    assert [s["id"] for s in result["subtasks"]] == ["t1", "t2"]
    first = fake.calls_to("debugger")
    by_instruction = {c.user.split("Your subtask: ")[1].splitlines()[0]: c for c in first}
    only_app = by_instruction["Why does add subtract?"].messages[0].text
    # files of the task only (the others may be outlined by the repository map, never listed)
    assert '<file path="app.py">' in only_app and '<file path="lib/util.py">' not in only_app


@pytest.mark.parametrize(
    "plan",
    [
        '{"subtasks": []}',
        "no json at all",
        '{"subtasks": [{"id": "a", "role": "poet", "instruction": "x", "files": []}]}',
    ],
)
def test_empty_or_invalid_plan_falls_back_to_roles_in_models(
    plan: str, fake: FakeProvider, write_spec: Any, tmp_path: Path
) -> None:
    script_all(fake)
    fake.script("planner", lambda c: plan if c.kind == "plan" else valid_answer(c))
    code, result = run(write_spec(FAKE_SPEC), tmp_path)
    assert result["plan"]["source"] == "fallback"
    assert any("fell back" in note for note in result["plan"]["notes"])
    assert sorted(s["role"] for s in result["subtasks"]) == sorted(ROLES)
    assert code == 0
    report = (tmp_path / "out" / "report.md").read_text()
    assert "fell back" in report


def test_fallback_plan_uses_only_roles_named_in_models(fake: FakeProvider, write_spec: Any, tmp_path: Path) -> None:
    fake.script("planner", lambda c: "{}" if c.kind == "plan" else valid_answer(c))
    fake.script("debugger", valid_answer)
    spec = write_spec(
        """
        version: 1
        name: only-debug
        goal: Find the bug.
        workspace: ws
        providers: {fake: {kind: fake}}
        models: {planner: fake/planner, debug: fake/debugger}
        """
    )
    _, result = run(spec, tmp_path)
    assert [s["role"] for s in result["subtasks"]] == ["debug"]


def test_a_role_whose_models_all_fail_exits_3_and_keeps_the_rest(
    fake: FakeProvider, write_spec: Any, tmp_path: Path
) -> None:
    script_all(fake)

    def down(call: Call) -> str:
        raise ConnectionRefusedError("connection refused")

    fake.script("reviewer", down)
    fake.script("backup", down)
    code, result = run(write_spec(FAKE_SPEC), tmp_path)
    assert code == 3 and result["status"] == "provider_failure"
    review = next(s for s in result["subtasks"] if s["role"] == "architecture_review")
    assert review["status"] == "failed" and review["output"] is None
    assert [h["model"] for h in review["fallbacks"]] == ["fake/reviewer", "fake/backup"]
    others = [s for s in result["subtasks"] if s["role"] != "architecture_review"]
    assert len(others) == 3 and all(s["status"] == "ok" and s["output"] for s in others)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Failures" in report and "fake/backup" in report


def test_fallback_model_serves_when_first_fails(fake: FakeProvider, write_spec: Any, tmp_path: Path) -> None:
    script_all(fake)
    fake.script("reviewer", lambda c: (_ for _ in ()).throw(TimeoutError()))
    code, result = run(write_spec(FAKE_SPEC), tmp_path)
    review = next(s for s in result["subtasks"] if s["role"] == "architecture_review")
    assert code == 0 and review["model"] == "fake/backup"
    assert review["fallbacks"][0]["error_kind"] == "timeout"
    assert "Fallbacks taken" in (tmp_path / "out" / "report.md").read_text()


def test_aggregation_failure_exits_3_but_keeps_every_output(
    fake: FakeProvider, write_spec: Any, tmp_path: Path
) -> None:
    script_all(fake)

    def planner(call: Call) -> str:
        if call.kind == "aggregate":
            raise ConnectionRefusedError("down")
        return valid_answer(call)

    fake.script("planner", planner)
    code, result = run(write_spec(FAKE_SPEC), tmp_path)
    assert code == 3
    assert all(s["status"] == "ok" for s in result["subtasks"]) and len(result["subtasks"]) == 4
    assert "aggregation failed" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.parametrize(("fail_on", "code"), [("medium", 1), ("high", 0), ("none", 0), ("info", 1)])
def test_quality_gate(fail_on: str, code: int, fake: FakeProvider, write_spec: Any, tmp_path: Path) -> None:
    script_all(fake)  # the reviewer reports one medium finding
    exit_code, result = run(write_spec(FAKE_SPEC), tmp_path, [f"fail_on={fail_on}"])
    assert exit_code == code
    assert result["max_severity"] == "medium"


def test_valid_diff_is_checked_against_the_workspace_and_nothing_is_written(
    fake: FakeProvider, write_spec: Any, tmp_path: Path
) -> None:
    script_all(fake)
    good = "--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"
    bad = "--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,2 @@\n def nope():\n-    x\n+    y\n"

    def coder(call: Call) -> str:
        return json.dumps(
            {
                "patches": [
                    {"file": "app.py", "diff": good, "rationale": "fix"},
                    {"file": "app.py", "diff": bad, "rationale": "broken"},
                ]
            }
        )

    fake.script("coder", coder)
    _, result = run(write_spec(FAKE_SPEC), tmp_path)
    refactor = next(s for s in result["subtasks"] if s["role"] == "refactor")
    assert [c["valid"] for c in refactor["checks"]] == [True, False]
    assert (tmp_path / "ws" / "app.py").read_text() == "def add(a, b):\n    return a - b\n"
    diffs = sorted(p.name for p in (tmp_path / "out" / "patches").iterdir())
    assert len(diffs) == 2 and all(name.endswith(".diff") for name in diffs)
    # the good diff really applies
    patch = next((tmp_path / "out" / "patches").glob("*-1-*.diff"))
    subprocess.run(["git", "apply", "--check", str(patch)], cwd=tmp_path / "ws", check=True)


def test_result_json_records_each_subtask(fake: FakeProvider, write_spec: Any, tmp_path: Path) -> None:
    script_all(fake)
    _, result = run(write_spec(FAKE_SPEC), tmp_path)
    assert result["schema_version"] == 1 and result["run_id"]
    assert result["files"]["included"] == ["app.py", "lib/util.py"]
    for sub in result["subtasks"]:
        assert set(sub) >= {
            "id", "role", "instruction", "files", "status", "model", "fallbacks",
            "tokens_in", "tokens_out", "latency_ms", "output", "context", "checks",
        }  # fmt: skip
        assert sub["tokens_in"] > 0 and sub["latency_ms"] >= 0
        assert sub["context"]["files"] and sub["context"]["budget"] > 0
    docs = next(s for s in result["subtasks"] if s["role"] == "arabic_docs")
    ar = next((tmp_path / "out" / "docs").glob("*.ar.md")).read_text()
    assert docs["output"]["markdown"] in ar and 'dir="rtl"' in ar and "`Store`" in ar


def test_report_has_a_section_per_role(fake: FakeProvider, write_spec: Any, tmp_path: Path) -> None:
    script_all(fake)
    run(write_spec(FAKE_SPEC), tmp_path)
    report = (tmp_path / "out" / "report.md").read_text()
    for heading in ["## Summary", "## Plan", *[f"## {role}" for role in ROLES]]:
        assert heading in report


def test_context_truncation_is_reported(fake: FakeProvider, write_spec: Any, tmp_path: Path) -> None:
    script_all(fake)
    big = "".join(f"line_{i} = {i}\n" for i in range(6000))
    spec = write_spec(
        FAKE_SPEC + "tasks: [{role: debug, instruction: look, files: [big.py, app.py]}]\n",
        files={"big.py": big, "app.py": "x = 1\n"},
    )
    _, result = run(spec, tmp_path)
    context = result["subtasks"][0]["context"]
    assert context["truncated"] and context["truncated"][0].startswith("big.py (lines 1-")
    # big.py was cut to leave room for the task's other file
    assert context["omitted"] == [] and context["files"] == ["big.py", "app.py"]
    assert [(e["path"], e["how"]) for e in context["packed"]] == [("big.py", "cut"), ("app.py", "whole")]
    assert context["tokens"] <= context["budget"]
    assert "## Context" in (tmp_path / "out" / "report.md").read_text()


def test_concurrency_one_still_runs_every_subtask(fake: FakeProvider, write_spec: Any, tmp_path: Path) -> None:
    script_all(fake)
    fake.delay_s = 0.01
    _, result = run(write_spec(FAKE_SPEC), tmp_path, ["limits.concurrency=1"])
    assert len(result["subtasks"]) == 4 and all(s["status"] == "ok" for s in result["subtasks"])


def many_tasks_spec(count: int) -> str:
    tasks = "".join(f"  - {{role: architecture_review, instruction: part {i}}}\n" for i in range(count))
    return f"""
version: 1
name: many
goal: Review everything.
workspace: ws
providers: {{fake: {{kind: fake, max_concurrency: 3, max_concurrency_per_model: 2}}}}
models: {{planner: fake/p, architecture_review: fake/a, debug: fake/b}}
tasks:
  - {{role: debug, instruction: one}}
{tasks}"""


@pytest.mark.parametrize(("run_limit", "peak_total"), [(1, 1), (2, 2), (10, 3)])
def test_limits_cap_calls_in_flight_and_drop_no_subtask(
    run_limit: int, peak_total: int, fake: FakeProvider, write_spec: Any, tmp_path: Path
) -> None:
    fake.delay_s = 0.02
    for model in ("a", "b", "p"):
        fake.script(model, valid_answer)
    _, result = run(write_spec(many_tasks_spec(12)), tmp_path, [f"limits.concurrency={run_limit}"])
    assert len(result["subtasks"]) == 13 and all(s["status"] == "ok" for s in result["subtasks"])
    assert fake.peak["*"] == peak_total  # run-wide limit (LangGraph max_concurrency) or provider cap (3)
    assert fake.peak["a"] == min(2, run_limit)  # per-model cap


def test_a_role_declares_the_language_and_direction_of_what_it_writes(
    fake: FakeProvider, write_spec: Any, tmp_path: Path
) -> None:
    script_all(fake)
    fake.script("persian", valid_answer)
    fake.script("english", valid_answer)
    roles = (
        "roles:\n"
        "  persian_docs: {output: docs, prompt: 'Document $instruction in Persian.', lang: fa}\n"
        "  english_docs: {output: docs, prompt: 'Document $instruction.'}\n"
        "tasks:\n"
        "  - {role: persian_docs, instruction: the API}\n"
        "  - {role: english_docs, instruction: the API}\n"
        "  - {role: arabic_docs, instruction: the API}\n"
    )
    spec = write_spec(
        FAKE_SPEC.replace(
            "  arabic_docs: fake/writer\n",
            "  arabic_docs: fake/writer\n  persian_docs: fake/persian\n  english_docs: fake/english\n",
        )
        + roles
    )
    _, result = run(spec, tmp_path)
    docs = sorted(p.name for p in (tmp_path / "out" / "docs").iterdir())
    assert docs == ["t1-persian_docs.fa.md", "t2-english_docs.md", "t3-arabic_docs.ar.md"]
    persian = (tmp_path / "out" / "docs" / "t1-persian_docs.fa.md").read_text()
    assert persian.startswith('<div dir="rtl" lang="fa">')  # fa is written right to left
    assert "dir=" not in (tmp_path / "out" / "docs" / "t2-english_docs.md").read_text()
    assert result["roles"]["persian_docs"] == {
        "output": "docs", "description": "custom role (docs)", "lang": "fa", "dir": "rtl"
    }  # fmt: skip
    report = (tmp_path / "out" / "report.md").read_text()
    assert report.count('<div dir="rtl"') == 2  # the Persian and the Arabic sections
