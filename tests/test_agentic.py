"""Agentic roles on scripted fake models: the tool loop (grammar actions and native tool calls),
its bounds, the policy and secrets on every tool result, verification by the quickstart's real
test command in the sandbox, reflection and fallback, edit formats, record and replay."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from orchestrator import RunOptions, run_workflow
from orchestrator.checks import unified_diff
from orchestrator.spec import load_spec
from orchestrator.testing import (
    Call,
    FakeProvider,
    NativeToolsProvider,
    in_order,
    native_call,
    registry,
    tool_call,
    valid_answer,
)
from orchestrator.workflow import prepare_workflow
from tests.process import comparable

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "examples" / "quickstart" / "project"
STORE = (QUICKSTART / "inventory" / "store.py").read_text()
SHARED = (
    "    def __init__(self, items={}):\n"
    "        # BUG (on purpose): a mutable default argument is shared by every Store\n"
    "        self.items = items\n"
)
FIXED = "    def __init__(self, items=None):\n        self.items = {} if items is None else items\n"


def store_diff(new_init: str) -> str:
    return unified_diff("inventory/store.py", STORE, STORE.replace(SHARED, new_init))


RIGHT_FIX = store_diff(FIXED)
WRONG_FIX = store_diff(SHARED.replace("= items\n", "= items  # shared on purpose\n"))
BROKEN = store_diff(FIXED.replace("else items", "else items +"))  # a syntax error: every test fails
SPEC = """
version: 1
name: agentic
goal: Find why test_new_store_is_empty fails and fix it.
workspace: project
include: ["**/*.py"]
providers: {fake: {kind: fake}}
tasks:
  - {role: debug, instruction: Find why test_new_store_is_empty fails., files: [inventory/store.py]}
models:
  planner: fake/planner
  debug: [fake/debugger, fake/second]
checks:
  tests: {run: "python -m pytest -q -p no:cacheprovider", timeout_s: 120}
verify: {checks: [tests], reflections: 1, sandbox: required}
"""


def diagnosis(diff: str | None) -> str:
    fix = {"file": "inventory/store.py", "diff": diff, "rationale": "no shared default"} if diff else None
    return json.dumps({"root_cause": "a mutable default argument", "evidence": ["items={}"], "fix": fix})


def project(tmp_path: Path, spec: str = SPEC, extra: str = "") -> Path:
    shutil.copytree(QUICKSTART, tmp_path / "project", ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    path = tmp_path / "spec.yaml"
    path.write_text(spec.lstrip() + extra)
    return path


def run(spec: Path, tmp_path: Path, **options: Any) -> dict[str, Any]:
    workflow = prepare_workflow(load_spec(spec))
    outcome = run_workflow(workflow, RunOptions(output_dir=tmp_path / "out", checkpoint="memory", **options))
    return outcome.result.model_dump(mode="json")


def only(result: dict[str, Any]) -> dict[str, Any]:
    (subtask,) = result["subtasks"]
    return dict(subtask)


def test_a_debug_model_reads_runs_the_failing_check_and_its_fix_is_verified(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("planner", valid_answer)
    fake.script(
        "debugger",
        in_order(
            tool_call("read_file", path="inventory/store.py"),
            tool_call("run_check", check="tests"),
            diagnosis(RIGHT_FIX),
        ),
    )
    result = run(project(tmp_path), tmp_path)
    sub = only(result)
    assert sub["status"] == "ok" and sub["model"] == "fake/debugger" and sub["turns"] == 3
    read, check = sub["tool_calls"]
    assert (read["tool"], read["status"], read["turn"]) == ("read_file", "ok", 1)
    assert (check["tool"], check["status"], check["detail"]) == ("run_check", "ok", "fail (exit 1)")
    assert check["started_ms"] >= read["started_ms"] and check["duration_ms"] > 0
    # what the model saw: the file's numbered lines, then the failing test's output, both fenced as data
    turns = fake.calls_to("debugger")
    assert (
        "def __init__(self, items={}):" in turns[1].messages[-1].text and "<tool_result" in turns[1].messages[-1].text
    )
    assert "test_new_store_is_empty" in turns[2].messages[-1].text and "1 failed" in turns[2].messages[-1].text
    assert turns[0].tools == ["list_files", "read_file", "grep", "run_check"]
    (verdict,) = sub["verification"]
    assert verdict["id"] == "t1-1" and verdict["final"] and verdict["verdict"] == "verified"
    assert [(c["name"], c["before"], c["after"]) for c in verdict["checks"]] == [("tests", "fail", "pass")]
    report = result["verification"]
    assert report["sandbox"]["runner"] == "bubblewrap" and [b["status"] for b in report["baselines"]] == ["fail"]
    assert report["combined"]["verdict"] == "verified"
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "## Verification" in markdown and "| **t1-1** | fake/debugger | 0 | verified | fail -> pass |" in markdown
    assert "## Tool calls" in markdown


def test_a_wrong_fix_is_reflected_on_then_the_next_model_fixes_it(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("planner", valid_answer)
    fake.script("debugger", in_order(diagnosis(WRONG_FIX), diagnosis(WRONG_FIX)))
    fake.script("second", in_order(diagnosis(RIGHT_FIX)))
    result = run(project(tmp_path), tmp_path)
    sub = only(result)
    assert sub["model"] == "fake/second" and sub["status"] == "ok"
    (hop,) = sub["fallbacks"]
    assert hop["model"] == "fake/debugger" and hop["error_kind"] == "verify_failed" and hop["attempts"] == 2
    assert "tests (fail -> fail) still fails" in hop["message"]
    reflection = fake.calls_to("debugger")[1].messages[-1].text  # the same model, told what the checks said
    assert "tests: fail -> fail" in reflection and '<check_output check="tests" id="' in reflection
    assert "assert 3 == 0" in reflection  # the failing test's own output
    verdicts = [(v["model"], v["attempt"], v["verdict"], v["final"]) for v in sub["verification"]]
    assert verdicts == [
        ("fake/debugger", 0, "unverified", False),
        ("fake/debugger", 1, "unverified", False),
        ("fake/second", 0, "verified", True),
    ]
    assert len(fake.calls_to("second")) == 1


def test_without_a_next_model_the_last_answer_stays_unverified(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("planner", valid_answer)
    fake.script("debugger", in_order(diagnosis(WRONG_FIX), diagnosis(WRONG_FIX)))
    spec = project(tmp_path, SPEC.replace("debug: [fake/debugger, fake/second]", "debug: fake/debugger"))
    result = run(spec, tmp_path)
    sub = only(result)
    assert sub["status"] == "ok" and sub["fallbacks"] == [] and sub["reflections"] == 1
    assert sub["verification"][-1]["verdict"] == "unverified" and sub["verification"][-1]["final"]
    # verify.require (on by default with checks): an unverified fix fails the run, the gate says why
    assert result["verification"]["combined"] is None and result["exit_code"] == 1
    assert result["status"] == "quality_gate" and "t1-1 unverified" in result["verification"]["gate"]


def test_a_patch_that_breaks_a_passing_check_goes_back_to_its_model(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("planner", valid_answer)
    fake.script("debugger", in_order(diagnosis(BROKEN), diagnosis(RIGHT_FIX)))
    discount = (
        '  discount: {run: "python -m pytest -q -p no:cacheprovider tests/test_store.py::test_discount_over_ten"}\n'
    )
    spec_text = SPEC.replace("checks:\n", "checks:\n" + discount).replace(
        "checks: [tests]", "checks: [tests, discount]"
    )
    sub = only(run(project(tmp_path, spec_text), tmp_path))
    first, second = sub["verification"]
    outcomes = {c["name"]: (c["before"], c["after"]) for c in first["checks"]}
    assert first["verdict"] == "unverified" and outcomes == {"tests": ("fail", "fail"), "discount": ("pass", "fail")}
    assert "breaks discount (pass -> fail)" in fake.calls_to("debugger")[1].messages[-1].text
    assert second["verdict"] == "verified" and sub["reflections"] == 1


def test_the_loop_stops_at_three_identical_calls_and_the_model_still_answers(
    fake: FakeProvider, tmp_path: Path
) -> None:
    fake.script("planner", valid_answer)
    same = tool_call("list_files")
    fake.script("debugger", in_order(same, same, same, diagnosis(None)))
    sub = only(run(project(tmp_path), tmp_path))
    assert [c["status"] for c in sub["tool_calls"]] == ["ok", "ok", "refused"]
    assert [b["bound"] for b in sub["bounds"]] == ["repeated_call"]
    last = fake.calls_to("debugger")[-1]
    assert last.tools == [] and "Tools are no longer available (repeated_call)" in last.messages[-1].text
    assert sub["status"] == "ok" and sub["turns"] == 4


def test_max_turns_and_max_tool_calls_are_bounds_the_report_names(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("planner", valid_answer)
    reads = [tool_call("read_file", path="inventory/store.py", offset=n) for n in range(1, 10)]
    fake.script("debugger", in_order(*reads[:2], diagnosis(None)))
    sub = only(run(project(tmp_path, extra="limits: {max_turns: 3}\n"), tmp_path))
    assert sub["turns"] == 3 and [b["bound"] for b in sub["bounds"]] == ["max_turns"]
    assert fake.calls_to("debugger")[-1].tools == []

    fake.calls.clear()
    fake.script("debugger", in_order(*reads[:2], diagnosis(None)))
    sub = only(run(project(tmp_path / "again", extra="limits: {max_tool_calls: 1}\n"), tmp_path / "again"))
    assert [c["status"] for c in sub["tool_calls"]] == ["ok", "refused"]
    assert [b["bound"] for b in sub["bounds"]] == ["max_tool_calls"]


def test_a_confidential_file_does_not_exist_for_a_remote_model(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("planner", valid_answer)
    fake.script(
        "debugger",
        in_order(
            tool_call("list_files"),
            tool_call("grep", pattern="PRICES"),
            tool_call("run_check", check="tests"),
            diagnosis(None),
        ),
    )
    remote = (
        'providers: {fake: {kind: fake, base_url: "https://models.example/v1"},'
        ' near: {kind: fake, base_url: "http://127.0.0.1:9/v1"}}\n'
    )
    spec_text = SPEC.replace("providers: {fake: {kind: fake}}\n", remote)
    spec_text = spec_text.replace("planner: fake/planner", "planner: [fake/planner, near/planner]")
    spec = project(tmp_path, spec_text, 'policy: {files: {"inventory/pricing.py": confidential}}\n')
    sub = only(run(spec, tmp_path))
    listed, grep, check = sub["tool_calls"]
    calls = fake.calls_to("debugger")
    shown = [c.messages[-1].text for c in calls]
    # neither its name (in the listing, the search, read_file's paths) nor its content
    assert "pricing" not in json.dumps([m.text for m in calls[-1].messages])
    assert "pricing" not in json.dumps(calls[0].raw_schema) and "inventory/store.py" in json.dumps(calls[0].raw_schema)
    assert listed["status"] == "ok" and "inventory/store.py" in shown[1]
    assert grep["status"] == "ok" and "(no match)" in shown[2]
    # a check's output may show any file: a model that may not see confidential data gets its status only
    assert check["status"] == "ok" and "output withheld" in check["detail"] and "assert" not in shown[3]
    assert sub["data_class"] == "internal"


def test_secrets_are_masked_in_tool_results_and_absent_from_checks(
    fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_API_KEY", "sk-verysecret-123456")
    fake.script("planner", valid_answer)
    fake.script(
        "debugger",
        in_order(
            tool_call("read_file", path="inventory/config.py"), tool_call("run_check", check="env"), diagnosis(None)
        ),
    )
    spec = project(tmp_path)
    env_check = 'checks:\n  env: {run: "echo key=[$SHOP_API_KEY]; cat inventory/config.py", timeout_s: 30}\n'
    spec.write_text(spec.read_text().replace("checks:\n", env_check))
    (tmp_path / "project" / "inventory" / "config.py").write_text('KEY = "sk-verysecret-123456"\n')
    result = run(spec, tmp_path)
    seen = json.dumps([m.text for c in fake.calls_to("debugger") for m in c.messages])
    assert "sk-verysecret-123456" not in seen and "sk-verysecret-123456" not in json.dumps(result)
    assert 'KEY = \\"***\\"' in seen  # the file, masked, in what the model read and in the check's output
    assert "key=[]" in seen  # the variable that holds the secret is not passed to the check


def test_a_recorded_agentic_run_replays_with_no_model_call_and_no_check_run(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("planner", valid_answer)
    fake.script(
        "debugger",
        in_order(
            tool_call("run_check", check="tests"),
            tool_call("read_file", path="inventory/store.py"),
            diagnosis(RIGHT_FIX),
        ),
    )
    marker = tmp_path / "checks-ran"  # outside every copy: only an unsandboxed check can write it
    spec_text = SPEC.replace("sandbox: required", "sandbox: off").replace("checks: [tests]", "checks: [tests, marker]")
    spec = project(tmp_path, spec_text.replace("checks:\n", f'checks:\n  marker: {{run: "touch {marker}"}}\n'))
    recorded = run(spec, tmp_path / "a", record=tmp_path / "rec", cache=False)
    assert marker.exists() and list((tmp_path / "rec" / "tools").rglob("*.json"))  # tool results are recorded
    marker.unlink()
    calls = len(fake.calls)
    replayed = run(spec, tmp_path / "b", replay=tmp_path / "rec")
    assert len(fake.calls) == calls and not marker.exists()  # no model call, no check run
    assert replayed["verification"]["replayed"]  # the sandbox it reports is the recorded run's
    assert replayed["verification"]["sandbox"] == recorded["verification"]["sandbox"]
    volatile = frozenset({"checkpoint", "workspace", "path"})
    assert comparable(replayed, volatile) == comparable(recorded, volatile)
    assert only(replayed)["verification"][0]["checks"][0]["after"] == "pass"


def test_native_tool_calls_and_the_answer_tool(tmp_path: Path) -> None:
    native = NativeToolsProvider()
    registry.register("native", native)
    try:
        native.script("planner", valid_answer)
        answer = native_call("answer", **json.loads(diagnosis(RIGHT_FIX)))
        native.script("debugger", in_order(native_call("run_check", check="tests"), answer))
        spec = project(tmp_path, SPEC.replace("{fake: {kind: fake}}", "{fake: {kind: native}}"))
        sub = only(run(spec, tmp_path))
    finally:
        registry.unregister("native")
    assert not native.unscripted
    first, second = native.calls_to("debugger")
    assert first.tools == ["list_files", "read_file", "grep", "run_check", "answer"]
    assert second.messages[-1].type == "tool" and "1 failed" in second.messages[-1].text
    assert second.messages[-2].tool_calls[0]["name"] == "run_check"  # type: ignore[attr-defined]
    assert sub["turns"] == 2 and sub["tool_calls"][0]["tool"] == "run_check"
    assert sub["verification"][0]["verdict"] == "verified" and sub["structured_mode"] == "tools"


def test_replace_edits_become_a_checked_diff_and_an_unmatched_edit_is_reflected_on(
    fake: FakeProvider, tmp_path: Path
) -> None:
    def edit(old: str) -> str:
        new = "    def __init__(self, items=None):\n        self.items = {} if items is None else items\n"
        fix = {"file": "inventory/store.py", "old": old, "new": new, "rationale": "no shared default"}
        return json.dumps({"root_cause": "a mutable default", "evidence": ["items={}"], "fix": fix})

    exact = (
        "    def __init__(self, items={}):\n"
        "        # BUG (on purpose): a mutable default argument is shared by every Store\n"
        "        self.items = items\n"
    )
    fake.script("planner", valid_answer)
    fake.script("debugger", in_order(edit("def __init__(self, items = {}):"), edit(exact)))
    spec = project(tmp_path, extra="roles: {debug: {edit_format: replace, tools: []}}\n")
    sub = only(run(spec, tmp_path))
    first_call, second_call = fake.calls_to("debugger")
    assert "edits" not in first_call.schema["properties"] and "old" in json.dumps(first_call.schema)
    assert "the old text is not in the file" in second_call.messages[-1].text
    assert sub["output"]["fix"]["diff"].startswith("--- a/inventory/store.py\n+++ b/inventory/store.py\n@@")
    assert sub["checks"][0]["valid"] and sub["verification"][-1]["verdict"] == "verified"


def test_each_turn_is_reserved_against_the_budget(fake: FakeProvider, tmp_path: Path) -> None:
    from orchestrator.models import estimate_tokens

    def worst(call: Call) -> int:  # what a turn reserves: its prompt and all of max_output_tokens
        return sum(estimate_tokens(m.text) for m in call.messages) + 1024

    fake.script("planner", valid_answer)
    read = tool_call("read_file", path="inventory/big.py", limit=400)
    fake.script("debugger", in_order(read, diagnosis(None)))
    spec = project(tmp_path)
    (tmp_path / "project" / "inventory" / "big.py").write_text("".join(f"VALUE_{n} = {n}\n" for n in range(400)))
    run(spec, tmp_path / "free", cache=False)
    first, second = (worst(c) for c in fake.calls_to("debugger"))
    assert second > first + 1000  # the second turn carries the file it read

    fake.calls.clear()
    fake.script("debugger", in_order(read, diagnosis(None)))
    spec.write_text(spec.read_text() + f"limits: {{max_tokens: {first + 500}, max_output_tokens: 1024}}\n")
    workflow = prepare_workflow(load_spec(spec))
    outcome = run_workflow(workflow, RunOptions(output_dir=tmp_path / "out", checkpoint="off", cache=False))
    assert len(fake.calls_to("debugger")) == 1  # the first turn fit; the second could not be reserved
    assert outcome.result.status == "budget_exceeded" and outcome.exit_code == 4
    assert "could use" in (outcome.result.budget.exhausted or "")


def test_a_role_without_tools_is_one_structured_call(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("planner", valid_answer)
    fake.script("debugger", lambda call: diagnosis(None) if not call.tools else "unexpected")
    spec = project(tmp_path, extra="roles: {debug: {tools: []}}\n")
    sub = only(run(spec, tmp_path))
    assert sub["turns"] == 1 and sub["tool_calls"] == [] and len(fake.calls_to("debugger")) == 1


def test_recorded_requests_carry_tool_calls_and_results() -> None:
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    from orchestrator.models.recording import Recorder

    calls = [{"name": "read_file", "args": {"path": "a.py"}, "id": "c1"}]
    messages = [
        HumanMessage("go"),
        AIMessage(content="", tool_calls=calls),
        ToolMessage(content="x", tool_call_id="c1"),
    ]
    request = Recorder.request("m", {}, messages, {"tools": []})
    assert request["messages"][0] == {"role": "human", "content": "go"}  # a plain message's key is unchanged
    assert request["messages"][1]["tool_calls"] == [{"name": "read_file", "args": {"path": "a.py"}, "id": "c1"}]
    assert request["messages"][2]["tool_call_id"] == "c1"


def test_a_scripted_call_reports_the_answer_schema_inside_an_action(fake: FakeProvider, tmp_path: Path) -> None:
    seen: list[Call] = []

    def debugger(call: Call) -> str:
        seen.append(call)
        return valid_answer(call)

    fake.script("planner", valid_answer)
    fake.script("debugger", debugger)
    run(project(tmp_path), tmp_path)
    assert (
        seen[0].kind == "diagnosis" and "anyOf" in seen[0].raw_schema and "root_cause" in seen[0].schema["properties"]
    )


@pytest.mark.integration  # the real LangChain clients, on a loopback model server
@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_native_tool_calls_over_the_real_ollama_and_openai_clients(tmp_path: Path, kind: str) -> None:
    from tests.servers.model_server import ModelServer

    with ModelServer({"planner": "canned", "debug": "canned"}) as server:
        server.plan_tools("debug", ("read_file", {"path": "inventory/store.py", "limit": 5}))
        base = server.url + ("/v1" if kind == "openai" else "")
        spec_text = (
            SPEC.replace("{fake: {kind: fake}}", f"{{api: {{kind: {kind}, base_url: '{base}'}}}}")
            .replace("planner: fake/planner", "planner: api/planner")
            .replace("debug: [fake/debugger, fake/second]", "debug: api/debug")
            .split("checks:")[0]
        )
        sub = only(run(project(tmp_path, spec_text), tmp_path, cache=False))
        bodies = [json.loads(b) for b in server.state.bodies if '"debug"' in b]
    assert sub["status"] == "ok" and sub["turns"] == 2 and sub["structured_mode"] == "tools"
    assert [(c["tool"], c["status"]) for c in sub["tool_calls"]] == [("read_file", "ok")]
    first, second = bodies
    offered = [t["function"]["name"] for t in first["tools"]]
    assert offered == ["list_files", "read_file", "grep", "answer"]  # no checks declared: no run_check
    (result,) = [m for m in second["messages"] if m["role"] == "tool"]
    assert "class Store:" in result["content"] and "<tool_result" in result["content"]
    assert any(m.get("tool_calls") for m in second["messages"] if m["role"] == "assistant")


def test_the_tool_options_are_what_langchains_bind_tools_binds() -> None:
    from langchain_ollama import ChatOllama
    from langchain_openai import ChatOpenAI

    from orchestrator.catalog import ProviderConfig
    from orchestrator.models import registry as kinds

    tools = [{"name": "read_file", "description": "d", "parameters": {"type": "object", "properties": {}}}]
    config = ProviderConfig(name="x", kind="ollama")
    ollama = ChatOllama(model="m", base_url="http://127.0.0.1:9")
    assert kinds.get("ollama", calling=False).tool_kwargs(tools, config) == ollama.bind_tools(tools).kwargs
    openai = ChatOpenAI(model="m", base_url="http://127.0.0.1:9/v1", api_key="k")  # type: ignore[arg-type]
    bound = openai.bind_tools(tools, tool_choice="required").kwargs
    assert kinds.get("openai", calling=False).tool_kwargs(tools, config, required=True) == bound


def test_the_debug_loop_graph_loops_until_the_checks_pass(fake: FakeProvider, tmp_path: Path) -> None:
    def patches(diff: str) -> str:
        return json.dumps({"patches": [{"file": "inventory/store.py", "diff": diff, "rationale": "r"}]})

    fake.script("planner", valid_answer)
    fake.script("debugger", in_order(diagnosis(None), diagnosis(None)))
    fake.script("fixer", in_order(patches(WRONG_FIX), patches(RIGHT_FIX)))
    spec_text = SPEC.replace("debug: [fake/debugger, fake/second]", "debug: fake/debugger\n  fix: fake/fixer")
    spec_text = spec_text.replace("reflections: 1", "reflections: 0") + "graph: debug-loop\n"
    result = run(project(tmp_path, spec_text), tmp_path)
    fixes = [s for s in result["subtasks"] if s["role"] == "fix"]
    assert [s["id"] for s in result["subtasks"]] == ["diagnose", "fix", "diagnose#2", "fix#2"]
    assert [v["verdict"] for s in fixes for v in s["verification"]] == ["unverified", "verified"]
    assert (
        fixes[1]["verification"][0]["id"] == "fix#2-1" and result["verification"]["combined"]["verdict"] == "verified"
    )
    # the second diagnosis saw the first fix's verification among the earlier results
    assert "unverified" in fake.calls_to("debugger")[1].task


def test_numbers_a_grammar_does_not_bound_are_clamped_by_the_tool(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("planner", valid_answer)
    fake.script(
        "debugger", in_order(tool_call("read_file", path="inventory/store.py", offset=-3, limit=4096), diagnosis(None))
    )
    sub = only(run(project(tmp_path), tmp_path))
    lines = len(STORE.splitlines())
    assert [(c["status"], c["detail"]) for c in sub["tool_calls"]] == [("ok", f"lines 1-{lines} of {lines}")]


def test_a_replay_missing_a_tool_result_fails_the_subtask_naming_it(fake: FakeProvider, tmp_path: Path) -> None:
    fake.script("planner", valid_answer)
    fake.script("debugger", in_order(tool_call("list_files"), diagnosis(None)))
    spec = project(tmp_path, SPEC.replace("debug: [fake/debugger, fake/second]", "debug: fake/debugger"))
    run(spec, tmp_path / "a", record=tmp_path / "rec", cache=False)
    shutil.rmtree(tmp_path / "rec" / "tools")
    sub = only(run(spec, tmp_path / "b", replay=tmp_path / "rec"))
    (hop,) = sub["fallbacks"]
    assert sub["status"] == "failed" and hop["error_kind"] == "not_recorded" and "list_files" in hop["message"]
