"""MCP servers' tools granted to roles (`mcp_servers:` and `roles.X.tools: [SERVER.TOOL]`): a real
MCP server (tests/servers/mcp_tools.py, the SDK's FastMCP) over stdio and over streamable HTTP on
loopback, called from the tool loop of scripted models; the policy on an HTTP server's host; the
pull-request refusals; the bounds on what a server sends back; the cap on tools per model."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import RunOptions, run_workflow
from orchestrator.errors import ExitStatus, PolicyError, SpecError
from orchestrator.spec import load_spec
from orchestrator.spec.operator import load_operator
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
from orchestrator.workflow import describe, prepare_workflow
from tests.process import orchestrator
from tests.servers.loopback import free_port, wait_for_port

SERVER = Path(__file__).resolve().parent / "servers" / "mcp_tools.py"


def spec_text(servers: str, tools: str, extra: str = "") -> str:
    return f"""
        version: 1
        name: mcp-tools
        goal: Review the code.
        workspace: ws
        providers: {{fake: {{kind: fake}}}}
        tasks:
          - {{role: architecture_review, instruction: Review app.py., files: [app.py]}}
        models:
          planner: fake/planner
          architecture_review: fake/reviewer
        mcp_servers:
        {servers}
        roles:
          architecture_review: {{tools: {tools}}}
        {extra}
        """


def stdio(log: Path) -> str:
    command = [sys.executable, str(SERVER), "--log", str(log)]
    return f"  kb: {{command: {json.dumps(command)}}}"


def _plan(call: Call) -> str:
    return valid_answer(call)


def findings(call: Call) -> str:
    return valid_answer(call)


def run(spec: Path, tmp_path: Path) -> dict[str, Any]:
    workflow = prepare_workflow(load_spec(spec))
    outcome = run_workflow(workflow, RunOptions(output_dir=tmp_path / "out", checkpoint="memory"))
    return outcome.result.model_dump(mode="json")


def logged(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def review(result: dict[str, Any]) -> dict[str, Any]:
    (subtask,) = [s for s in result["subtasks"] if s["role"] == "architecture_review"]
    return dict(subtask)


def test_a_role_calls_a_stdio_mcp_servers_tool_in_its_loop(
    fake: FakeProvider, write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    log = tmp_path / "calls.jsonl"
    spec = write_spec(spec_text(stdio(log), "[read_file, kb.lookup, kb.shout]"))
    fake.script("planner", _plan)
    fake.script("reviewer", in_order(tool_call("kb__lookup", term="store"), findings))
    result = run(spec, tmp_path)
    sub = review(result)
    assert sub["status"] == "ok", sub
    (call,) = sub["tool_calls"]
    assert (call["tool"], call["status"], call["args"]) == ("kb.lookup", "ok", {"term": "store"})
    assert logged(log) == [{"tool": "lookup", "args": {"term": "store"}}]  # the server itself was called
    turns = fake.calls_to("reviewer")
    assert turns[0].tools == ["read_file", "kb__lookup", "kb__shout"]  # only what the role is granted
    assert "Look a term of the project's glossary up." in turns[0].user  # the server's description
    shown = turns[1].messages[-1].text
    assert '<tool_result tool="kb__lookup" id="' in shown and "a keyed collection of items" in shown
    assert result["exit_code"] == 0


def test_native_tool_calls_reach_the_mcp_server_and_errors_do_not_stop_the_run(
    write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    native = NativeToolsProvider()
    registry.register("native", native)
    try:
        log = tmp_path / "calls.jsonl"
        text = spec_text(stdio(log), "[kb.shout, kb.broken, kb.huge]").replace("fake/", "native/")
        spec = write_spec(text.replace("{fake: {kind: fake}}", "{native: {kind: native}}"))
        native.script("planner", _plan)
        native.script(
            "reviewer",
            in_order(
                native_call("kb__shout", text="hi", times=2),
                native_call("kb__broken"),
                native_call("kb__huge"),
                native_call("answer", findings=[]),
            ),
        )
        sub = review(run(spec, tmp_path))
    finally:
        registry.unregister("native")
    assert sub["status"] == "ok"
    assert [(c["tool"], c["status"]) for c in sub["tool_calls"]] == [
        ("kb.shout", "ok"),
        ("kb.broken", "error"),
        ("kb.huge", "ok"),
    ]
    turns = native.calls_to("reviewer")
    tools = [t["function"]["name"] for t in turns[0].kwargs["tools"]]
    assert tools == ["kb__shout", "kb__broken", "kb__huge", "answer"]
    last = [m.text for m in turns[3].messages if m.type == "tool"]
    assert "HI HI" in last[0] and "always fails" in last[1]
    assert len(last[2]) < 7000 and "characters not shown" in last[2]  # a huge result is cut
    assert [e["tool"] for e in logged(log)] == ["shout", "broken", "huge"]


def test_a_tool_the_server_does_not_offer_fails_before_any_model_call(
    fake: FakeProvider, write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    spec = write_spec(spec_text(stdio(tmp_path / "log"), "[kb.nonexistent]"))
    with pytest.raises(Exception) as caught:
        run(spec, tmp_path)
    assert getattr(caught.value, "exit_code", None) == ExitStatus.PROVIDER_FAILURE
    assert "no tool 'nonexistent'" in str(caught.value) and "lookup" in str(caught.value)
    assert fake.calls_to("planner") == []


def test_two_granted_tools_a_model_would_see_as_one_function_are_refused_before_any_call(
    fake: FakeProvider, write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    spec = write_spec(spec_text(stdio(tmp_path / "log"), "[kb.dot.ted, kb.dot_ted]"))
    with pytest.raises(SpecError, match=r"kb\.dot\.ted and kb\.dot_ted are both called kb__dot_ted"):
        run(spec, tmp_path)
    assert fake.calls_to("planner") == []


def test_a_tool_of_an_undeclared_server_is_a_spec_error_naming_the_field(
    fake: FakeProvider, write_spec: Callable[..., Path]
) -> None:
    spec = write_spec(spec_text(stdio(Path("/tmp/x")), "[read_file, kbb.lookup]"))
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    assert "roles.architecture_review.tools.1: unknown MCP server 'kbb'" in str(caught.value)
    assert "did you mean 'kb'" in str(caught.value)
    both = spec_text("  kb: {command: [x], url: 'http://127.0.0.1:1/mcp'}", "[kb.lookup]")
    with pytest.raises(SpecError, match=r"mcp_servers\.kb: .*either command"):
        load_spec(write_spec(both, name="both.yaml"))


CONFIDENTIAL = """
        policy:
          files: {"app.py": confidential}
"""


def on_this_machine(text: str) -> str:
    """A spec whose models are served from loopback (confidential data may go to them)."""
    box = "{box: {kind: openai, base_url: 'http://127.0.0.1:9/v1'}}"
    return text.replace("fake/", "box/").replace("{fake: {kind: fake}}", box)


def test_a_confidential_role_granted_an_http_server_on_a_host_not_allowed_is_refused_at_validate(
    write_spec: Callable[..., Path],
) -> None:
    remote = "  search: {url: 'https://mcp.example.com/mcp'}"
    spec = write_spec(on_this_machine(spec_text(remote, "[read_file, search.query]", CONFIDENTIAL)))
    with pytest.raises(PolicyError) as caught:
        prepare_workflow(load_spec(spec))
    message = str(caught.value)
    assert "mcp_servers.search.url" in message and "role 'architecture_review' may see confidential data" in message
    assert "confidential data stays on this machine and allow_hosts" in message and "mcp.example.com" in message
    done = orchestrator("validate", spec)
    assert done.returncode == ExitStatus.POLICY, done.stderr
    assert "spec.yaml:" in done.stderr and "mcp.example.com" in done.stderr
    # the same server is fine when the host is the user's own (allow_hosts), or the data is not confidential
    allowed = CONFIDENTIAL + "          allow_hosts: [mcp.example.com]\n"
    own = write_spec(on_this_machine(spec_text(remote, "[search.query]", allowed)), name="own.yaml")
    plan = describe(prepare_workflow(load_spec(own)))["mcp_servers"]
    assert plan == {
        "search": {
            "transport": "streamable_http",
            "host": "mcp.example.com",
            "roles": {"architecture_review": ["search.query"]},
        }
    }
    internal = write_spec(on_this_machine(spec_text(remote, "[search.query]")), name="internal.yaml")
    prepare_workflow(load_spec(internal))


def test_pull_request_mode_starts_no_server_and_reaches_no_host_the_operator_did_not_admit(
    fake: FakeProvider, write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    local = stdio(tmp_path / "log")
    spec = write_spec(spec_text(local + "\n          web: {url: 'http://127.0.0.1:9/mcp'}", "[kb.lookup, web.x]"))
    with pytest.raises(PolicyError) as caught:
        prepare_workflow(load_spec(spec), load_operator(None, True, None))
    message = str(caught.value)
    assert "mcp_servers.kb.command" in message and "allow_mcp_servers" in message
    assert "mcp_servers.web.url" in message and "refuses host 127.0.0.1" in message
    policy = tmp_path / "operator.yaml"
    policy.write_text(f"allow_mcp_servers: ['{sys.executable} *']\ntrusted_hosts: [127.0.0.1]\n")
    prepare_workflow(load_spec(spec), load_operator(policy, True, None))


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port, log = free_port(), tmp_path / "http-calls.jsonl"
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "--log", str(log), "--http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}/mcp", log
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_an_http_mcp_server_on_loopback_is_called_and_counted_in_the_egress_report(
    fake: FakeProvider, write_spec: Callable[..., Path], tmp_path: Path, http_server: tuple[str, Path]
) -> None:
    url, log = http_server
    spec = write_spec(spec_text(f"  web: {{url: '{url}'}}", "[web.lookup]"))
    fake.script("planner", _plan)
    fake.script("reviewer", in_order(tool_call("web__lookup", term="sku"), findings))
    result = run(spec, tmp_path)
    (call,) = review(result)["tool_calls"]
    assert (call["tool"], call["status"]) == ("web.lookup", "ok")
    assert logged(log) == [{"tool": "lookup", "args": {"term": "sku"}}]
    host = url.split("/")[2]
    (traffic,) = [h for h in result["egress"]["hosts"] if h["host"] == host]
    assert traffic["models"] == ["mcp server web"] and traffic["requests"] >= 3  # initialize, list, call
    assert traffic["bytes_sent"] > 0 and traffic["bytes_received"] > 0


def test_a_model_is_offered_the_roles_first_tools_up_to_its_cap(
    fake: FakeProvider, write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    log = tmp_path / "calls.jsonl"
    tools = "[list_files, read_file, grep, kb.lookup, kb.shout, kb.broken, kb.huge, kb.sleepy]"
    spec = write_spec(spec_text(stdio(log), tools, "limits: {max_tools: 5}"))
    fake.script("planner", _plan)
    fake.script("reviewer", findings)
    run(spec, tmp_path)
    (turn,) = fake.calls_to("reviewer")
    assert turn.tools == ["list_files", "read_file", "grep", "kb__lookup", "kb__shout"]
