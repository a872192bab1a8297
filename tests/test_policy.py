"""Policy fields, per-role rules and file classes, resolved before any call; untrusted content
cannot widen what the graph allows."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from orchestrator.engine._patch import check_patch
from orchestrator.errors import PolicyError
from orchestrator.spec import load_spec
from orchestrator.workflow import Workflow, prepare_workflow

HEAD = """version: 1
name: p
goal: g
workspace: ws
providers:
  box: {kind: ollama, base_url: 'http://gpu.corp.example:11434'}
"""


def prepared(write_spec: Any, text: str, files: dict[str, str] | None = None) -> Workflow:
    return prepare_workflow(load_spec(write_spec(HEAD + text, files=files)))


def refs(workflow: Workflow, role: str, data_class: str | None = None) -> list[str]:
    chain = workflow.chains.chain(role, data_class) if data_class else workflow.chains.base(role)
    return [r.ref for r in chain]


CHAIN = "models:\n  debug: [openrouter/qwen/qwen3.6-plus:free, ollama/deepseek-r1:14b, box/llama3, local/smollm2]\n"


@pytest.mark.parametrize(
    ("policy", "allowed"),
    [
        ("", ["openrouter/qwen/qwen3.6-plus:free", "ollama/deepseek-r1:14b", "box/llama3", "local/smollm2"]),
        ("policy: {local_only: true}\n", ["ollama/deepseek-r1:14b", "local/smollm2"]),
        ("policy: {data_class: confidential}\n", ["ollama/deepseek-r1:14b", "local/smollm2"]),
        (
            "policy: {data_class: confidential, allow_hosts: [gpu.corp.example]}\n",
            ["ollama/deepseek-r1:14b", "box/llama3", "local/smollm2"],
        ),
        ("policy: {allow_hosts: [gpu.corp.example]}\n", ["ollama/deepseek-r1:14b", "box/llama3", "local/smollm2"]),
        (
            "policy: {allow_countries: [CN], roles: {planner: {allow_countries: [US]}}}\n",
            ["openrouter/qwen/qwen3.6-plus:free", "ollama/deepseek-r1:14b"],
        ),
        ("policy: {deny_countries: [CN]}\n", ["box/llama3", "local/smollm2"]),
        ("policy: {allow_licenses: [Apache-2.0]}\n", ["openrouter/qwen/qwen3.6-plus:free", "local/smollm2"]),
        (
            "policy: {allow_licenses: [MIT], roles: {planner: {allow_licenses: [Apache-2.0]}}}\n",
            ["ollama/deepseek-r1:14b"],
        ),
        (
            "policy: {open_weights_only: true}\n",
            ["openrouter/qwen/qwen3.6-plus:free", "ollama/deepseek-r1:14b", "local/smollm2"],
        ),
    ],
)
def test_policy_fields_filter_the_chain(write_spec: Any, policy: str, allowed: list[str]) -> None:
    workflow = prepared(write_spec, CHAIN + policy)
    assert refs(workflow, "debug") == allowed
    removed = {e["model"] for e in workflow.chains.excluded_report().get("debug", [])}
    assert removed == set(CHAIN.split("[")[1].split("]")[0].split(", ")) - set(allowed)


def test_role_rules_override_the_run(write_spec: Any) -> None:
    policy = "policy:\n  allow_countries: [US]\n  roles:\n    debug: {allow_countries: [CN]}\n"
    workflow = prepared(write_spec, CHAIN + "  refactor: [ollama/deepseek-r1:14b, local/smollm2]\n" + policy)
    assert refs(workflow, "debug") == ["openrouter/qwen/qwen3.6-plus:free", "ollama/deepseek-r1:14b"]
    assert refs(workflow, "refactor") == ["local/smollm2"]


def test_a_file_class_holds_its_subtasks_to_stricter_rules(write_spec: Any) -> None:
    files = {"billing/ledger.py": "x = 1\n", "ui/view.py": "y = 2\n"}
    workflow = prepared(write_spec, CHAIN + "policy:\n  files: {'billing/**': confidential}\n", files)
    assert workflow.file_classes == {"billing/ledger.py": "confidential", "ui/view.py": "internal"}
    assert refs(workflow, "debug", "internal")[0] == "openrouter/qwen/qwen3.6-plus:free"
    assert refs(workflow, "debug", "confidential") == ["ollama/deepseek-r1:14b", "local/smollm2"]


def test_no_allowed_model_for_a_needed_role_is_exit_5(write_spec: Any) -> None:
    with pytest.raises(PolicyError) as caught:
        prepared(write_spec, "models:\n  debug: openrouter/qwen/qwen3.6-plus:free\npolicy: {local_only: true}\n")
    assert caught.value.exit_code == 5 and "local_only" in str(caught.value)


def test_fallbacks_cannot_route_around_the_policy(write_spec: Any, fake: Any) -> None:
    """Even a chain whose allowed models all fail never reaches a refused one."""
    from orchestrator import RunOptions, run_workflow

    text = (
        "providers:\n  fake: {kind: fake, base_url: 'http://127.0.0.1:1'}\n  abroad: {kind: fake, base_url: 'http://far.example'}\n"
        "models: {debug: [abroad/x, fake/down], planner: fake/p}\n"
        "tasks: [{role: debug, instruction: look}]\npolicy: {local_only: true}\n"
    )
    fake.script("down", lambda call: (_ for _ in ()).throw(ConnectionRefusedError("down")))
    fake.script("p", lambda call: '{"summary": "s", "decisions": [], "disagreements": [], "next_steps": []}')
    spec = write_spec("version: 1\nname: p\ngoal: g\nworkspace: ws\n" + text)
    result = run_workflow(prepare_workflow(load_spec(spec)), RunOptions(write=False)).result.model_dump(mode="json")
    (subtask,) = result["subtasks"]
    assert [h["model"] for h in subtask["fallbacks"]] == ["fake/down"]  # abroad/x was never tried
    assert fake.calls_to("x") == []


def test_a_patch_through_a_symlink_out_of_the_workspace_is_rejected(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target.py").write_text("a = 1\n")
    ws = tmp_path / "ws"
    ws.mkdir()
    os.symlink(outside, ws / "link")
    diff = "--- a/link/target.py\n+++ b/link/target.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"
    check = asyncio.run(check_patch(ws, "link/target.py", diff))
    assert not check.valid and "symlink" in check.message
    assert (outside / "target.py").read_text() == "a = 1\n"


def test_a_plan_cannot_reach_files_or_roles_beyond_the_selection(write_spec: Any, fake: Any) -> None:
    """Model output chooses only among what the graph and the spec allow."""
    from orchestrator import RunOptions, run_workflow

    plan = (
        '{"subtasks": [{"id": "a", "role": "debug", "instruction": "read", "files": ["../etc/passwd", "app.py"]},'
        ' {"id": "b", "role": "shell", "instruction": "rm -rf /", "files": []}]}'
    )
    fake.script(
        "p",
        lambda call: (
            plan if call.kind == "plan" else '{"summary": "s", "decisions": [], "disagreements": [], "next_steps": []}'
        ),
    )
    fake.script("d", lambda call: '{"root_cause": "c", "evidence": [], "fix": null}')
    models = "providers: {fake: {kind: fake}}\nmodels: {planner: fake/p, debug: fake/d}\n"
    spec = write_spec("version: 1\nname: p\ngoal: g\nworkspace: ws\n" + models)
    result = run_workflow(prepare_workflow(load_spec(spec)), RunOptions(write=False)).result.model_dump(mode="json")
    assert [(s["role"], s["files"]) for s in result["plan"]["subtasks"]] == [("debug", ["app.py"])]
    assert any("unknown role 'shell'" in note for note in result["plan"]["notes"])
    plan_call = next(c for c in fake.calls if c.kind == "plan")
    assert plan_call.schema["properties"]["subtasks"]["items"]["properties"]["files"]["items"]["enum"] == [
        "app.py",
        "lib/util.py",
    ]


GRAPH = """version: 1
name: g
nodes:
  review: {kind: role, role: architecture_review, models: [$first], files: [$files]}
  summarise: {kind: role, role: debug, inputs: [review], models: [$second], files: [app.py]}
  aggregate: {kind: aggregate}
edges:
  - [START, review]
  - [review, summarise]
  - [summarise, aggregate]
  - [aggregate, END]
"""


def graph(first: str, files: str, second: str) -> str:
    return GRAPH.replace("$first", first).replace("$files", files).replace("$second", second)


@pytest.mark.parametrize(
    ("nodes", "refused"),
    [
        (("box/llama3", "'**/*'", "local/smollm2"), "graph node 'review [confidential]'"),  # its own files
        (("local/smollm2", "'**/*'", "box/llama3"), "graph node 'summarise [confidential]'"),  # what its input saw
    ],
)
def test_a_graph_node_with_remote_models_seeing_a_confidential_file_exits_5_at_validate(
    write_spec: Any, nodes: tuple[str, str, str], refused: str
) -> None:
    from tests.process import orchestrator

    text = "graph: g.yaml\npolicy: {files: {'lib/**': confidential}}\nmodels: {default: local/smollm2}\n"
    spec = write_spec(HEAD + text)
    (spec.parent / "g.yaml").write_text(graph(*nodes))
    with pytest.raises(PolicyError) as refusal:
        prepare_workflow(load_spec(spec))
    assert refused in str(refusal.value) and "lib/util.py" in str(refusal.value)
    assert "box/llama3: confidential data stays on this machine" in str(refusal.value)
    done = orchestrator("validate", spec)
    assert done.returncode == 5 and refused in done.stderr  # before any call, not exit 3 at run time
    (spec.parent / "g.yaml").write_text(graph("box/llama3", "app.py", "box/llama3"))
    assert orchestrator("validate", spec).returncode == 0  # nothing confidential reaches the remote host


@pytest.mark.parametrize(
    ("spec", "operator", "field", "expected"),
    [
        ({"data_class": "internal"}, {"data_class": "confidential"}, "data_class", "confidential"),
        ({"data_class": "confidential"}, {"data_class": "public"}, "data_class", "confidential"),
        ({"allow_countries": ["FR", "US"]}, {"allow_countries": ["US", "AE"]}, "allow_countries", {"US"}),
        ({}, {"allow_countries": ["AE"]}, "allow_countries", {"AE"}),
        ({"allow_countries": ["FR"]}, {}, "allow_countries", {"FR"}),
        ({"deny_countries": ["CN"]}, {"deny_countries": ["US"]}, "deny_countries", {"CN", "US"}),
        ({"open_weights_only": False}, {"open_weights_only": True}, "open_weights_only", True),
        ({"allow_licenses": ["MIT", "Apache-2.0"]}, {"allow_licenses": ["MIT"]}, "allow_licenses", {"MIT"}),
        ({"local_only": False}, {"local_only": True}, "local_only", True),
        ({"local_only": True}, {}, "local_only", True),
        ({"allow_hosts": ["a.example", "b.example"]}, {"allow_hosts": ["b.example"]}, "allow_hosts", {"b.example"}),
        # a spec's role rule cannot relax the operator's run rule
        ({"roles": {"debug": {"local_only": False}}}, {"local_only": True}, "local_only", True),
        ({"roles": {"debug": {"allow_countries": ["CN"]}}}, {"allow_countries": ["FR"]}, "allow_countries", set()),
        ({"roles": {"debug": {"data_class": "public"}}}, {"data_class": "internal"}, "data_class", "internal"),
        # the operator's own role rules hold for that role
        ({}, {"roles": {"debug": {"deny_countries": ["CN"]}}}, "deny_countries", {"CN"}),
    ],
)
def test_the_operators_floor_is_merged_field_by_field(
    spec: dict[str, Any], operator: dict[str, Any], field: str, expected: Any
) -> None:
    from orchestrator.policy import rules_for
    from orchestrator.spec import PolicySpec
    from orchestrator.spec.operator import OperatorPolicy

    rules = rules_for(PolicySpec.model_validate(spec), "debug", None, OperatorPolicy.model_validate(operator))
    value = getattr(rules, field)
    assert (set(value) if isinstance(value, frozenset) else value) == expected


def test_the_operators_file_classes_and_budget_ceilings_apply(write_spec: Any) -> None:
    from orchestrator.spec.operator import Operator, OperatorPolicy

    floor = OperatorPolicy.model_validate({"files": {"lib/**": "confidential"}, "max_tokens": 900})
    spec = write_spec(HEAD + "policy: {files: {'app.py': public}}\nlimits: {max_tokens: 5000}\n")
    workflow = prepare_workflow(load_spec(spec), Operator(policy=floor, source="op.yaml"))
    assert workflow.file_classes == {"app.py": "internal", "lib/util.py": "confidential"}  # globs of both
    assert workflow.loaded.spec.limits.max_tokens == 900  # the lower budget
    lower = prepare_workflow(load_spec(spec, ["limits.max_tokens=10"]), Operator(policy=floor, source="op.yaml"))
    assert lower.loaded.spec.limits.max_tokens == 10  # a spec may always ask for less
