"""LangGraph Server for real: `orchestrator studio` starts `langgraph dev` (in memory, loopback,
no browser, no reload, analytics, version checks and tracing off) from the repository root, and
the official client (langgraph-sdk) lists every shipped graph, refuses a hostile thread input and
runs a thread of the quickstart's graph to its end on the embedded model (a brief quickstart: two
roles, `tests/data/brief-quickstart.yaml`), streaming each node's update. The graph
factories' input validation and the policy refusals happen before any model call; `orchestrator
--help` imports nothing of LangGraph Server."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from orchestrator.errors import SpecError
from orchestrator.serve import langgraph_graphs
from orchestrator.serve._langgraph_graph import RunRefused, refuse_blocking_dev_server
from orchestrator.testing import FakeProvider, valid_answer
from tests.process import modules_imported_by
from tests.servers.loopback import free_port

REPO = Path(__file__).resolve().parent.parent
ORCHESTRATOR = Path(sys.executable).parent / "orchestrator"
SHIPPED = sorted(p.stem for p in (REPO / "graphs").glob("*.yaml"))
READY_S = 120  # the server's start (imports, graphs loaded), bounded
RUN_S = 600  # one embedded run (under a minute here), bounded
BRIEF = "tests/data/brief-quickstart.yaml"  # the quickstart cut to two roles: the transport is what is tested


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`orchestrator studio --port PORT` from the repository root; its URL once it answers."""
    home = tmp_path_factory.mktemp("studio")
    port = free_port()
    env = {**os.environ, "ORCHESTRATOR_DATA_DIR": str(home / "data"), "XDG_STATE_HOME": str(home / "state")}
    log = (home / "server.log").open("wb")
    process = subprocess.Popen(
        [str(ORCHESTRATOR), "studio", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    persisted = (REPO / ".langgraph_api").exists()
    try:
        deadline = time.monotonic() + READY_S
        while True:
            assert process.poll() is None, (home / "server.log").read_text(errors="replace")[-4000:]
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"no server on {url} after {READY_S} s"
            time.sleep(0.25)
        said = (home / "server.log").read_text(errors="replace")
        assert f"serving the graphs on {url}" in said  # what Studio is and needs, before the server starts
        assert "needs the internet and a LangSmith login" in said
        yield url
    finally:
        _stop(process)
        log.close()
        text = (home / "server.log").read_text(errors="replace")
        assert "BlockingError" not in text, text[-4000:]
        if not persisted:  # the in-memory server saves its threads in .langgraph_api/ of its folder
            shutil.rmtree(REPO / ".langgraph_api", ignore_errors=True)


def _client(url: str) -> Any:
    return get_client(url=url, api_key=None, timeout=httpx.Timeout(RUN_S, connect=10))


def test_langgraph_json_serves_every_shipped_graph_through_a_factory() -> None:
    assert list(langgraph_graphs.SHIPPED) == SHIPPED  # every graph of graphs/ has its factory
    config = json.loads((REPO / "langgraph.json").read_text())
    assert config["dependencies"] == ["."]
    assert sorted(config["graphs"]) == sorted([*SHIPPED, "quickstart"])
    for graph_id, ref in config["graphs"].items():
        module, _, name = ref.partition(":")
        assert module == "orchestrator.serve.langgraph_graphs", graph_id
        assert callable(getattr(langgraph_graphs, name)), graph_id
    env = config["env"]
    assert env["LANGSMITH_TRACING"] == env["LANGCHAIN_TRACING_V2"] == "false"
    assert env["LANGGRAPH_CLI_NO_ANALYTICS"] == "1"
    assert env["LANGGRAPH_NO_VERSION_CHECK"] == "true"


def test_every_shipped_graph_is_listed_and_drawn(server: str) -> None:
    async def main() -> None:
        client = _client(server)
        assistants = await client.assistants.search(limit=100)
        assert sorted({a["graph_id"] for a in assistants}) == sorted([*SHIPPED, "quickstart"])
        drawn = await client.assistants.get_graph("quickstart")
        nodes = {n["id"] for n in drawn["nodes"]}
        assert {"plan", "architecture_review", "refactor", "debug", "arabic_docs", "aggregate"} <= nodes
        quickstart = next(a for a in assistants if a["graph_id"] == "quickstart")
        schemas = await client.assistants.get_schemas(quickstart["assistant_id"])
        assert set(schemas["input_schema"]["properties"]) == {"goal", "spec", "workspace", "models"}

    asyncio.run(main())


def test_a_hostile_thread_input_is_refused_with_the_field_named(server: str) -> None:
    async def main() -> None:
        client = _client(server)
        thread = await client.threads.create()
        events = [
            (part.event, part.data)
            async for part in client.runs.stream(
                thread["thread_id"],
                "coding-workflow",
                input={"goal": "Review it", "workspace": "/etc", "models": {"refactor": "x y"}},
                stream_mode="updates",
            )
        ]
        errors = [data for event, data in events if event == "error"]
        assert len(errors) == 1, events
        assert errors[0]["error"] == "RunRefused"
        assert "SpecError (exit 2)" in errors[0]["message"]
        assert "models.refactor" in errors[0]["message"]  # every problem, each with its field
        assert not [event for event, _ in events if event == "updates"]  # no node ran

    asyncio.run(main())


@pytest.mark.integration
@pytest.mark.embedded
def test_a_quickstart_thread_runs_to_the_end_on_the_embedded_model(server: str) -> None:
    async def main() -> tuple[list[str], dict[str, Any], dict[str, Any]]:
        client = _client(server)
        thread = await client.threads.create()
        seen: list[str] = []
        stream = client.runs.stream(thread["thread_id"], "quickstart", input={"spec": BRIEF}, stream_mode="updates")
        async for part in stream:
            assert part.event != "error", part.data
            if part.event == "updates":
                seen += list(part.data)
        state = await client.threads.get_state(thread["thread_id"])
        return seen, state, await client.threads.get(thread["thread_id"])

    seen, state, thread = asyncio.run(asyncio.wait_for(main(), RUN_S))
    workers = {"debug", "arabic_docs"}  # the brief spec's tasks
    assert seen[0] == "plan" and seen[-1] == "aggregate"  # the planner first, the aggregation last
    assert workers <= set(seen)  # every role node's update streamed as it finished
    assert thread["status"] == "idle" and not state["next"]  # the graph ran to its end
    values = state["values"]
    subtasks = values["plan"]["subtasks"]
    assert {s["role"] for s in subtasks} == workers
    results = {r["id"]: r for r in values["results"] if not r.get("proposal_of")}
    assert sorted(results) == sorted(s["id"] for s in subtasks)  # each subtask finished once
    for record in results.values():  # answered by the embedded model, or failed on it (never another)
        assert record["model"] == "local/smollm2" or (record["status"] == "failed" and record["model"] is None)
        assert {hop["model"] for hop in record["fallbacks"]} <= {"local/smollm2"}
    report = values["aggregate"]
    assert report["status"] == "ok" and report["model"] == "local/smollm2"
    assert isinstance(report["output"]["summary"], str)


# the graph factories, in this process (no model may be called: conftest forbids real ones)


async def _run(factory: Any, value: Any) -> list[Any]:
    graph = await factory({})
    return [chunk async for chunk in graph.astream(value, {"configurable": {"thread_id": "t"}})]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "do not pause"),
        ("review it", "expected an object"),
        ({"goal": ""}, "goal:"),
        ({"goal": "Review it", "messages": []}, "messages: unknown field"),
        ({"goal": "Review it", "models": {"refactor.x": "local/smollm2"}}, "models.refactor.x"),
        ({"goal": "Review it", "models": {"refactor": "local/smollm2\n::error::forged"}}, "models.refactor.0"),
        ({"goal": "Review it", "models": {"refactr": "local/smollm2"}}, "models.refactr: unknown role 'refactr'"),
        ({"goal": "Review it", "spec": "../../etc/passwd.yaml"}, "spec: '../../etc/passwd.yaml' is outside"),
        ({"goal": "Review it", "spec": "README.md"}, "is not a spec file"),
        ({"goal": "Review it", "workspace": "../.."}, "workspace:"),
        ({"models": {"refactor": "local/smollm2"}}, "goal: required"),
    ],
)
def test_a_bad_thread_input_is_a_clear_error_before_anything_runs(value: Any, expected: str) -> None:
    with pytest.raises(RunRefused) as raised:
        asyncio.run(_run(langgraph_graphs.coding_workflow, value))
    assert raised.value.exit_code == 2
    assert expected in str(raised.value)
    assert str(raised.value).startswith("SpecError (exit 2): thread input")


def _fake_spec(tmp_path: Path, policy: str) -> Path:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "app.py").write_text("def add(a, b):\n    return a - b\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""
            version: 1
            name: served
            goal: Review app.py.
            workspace: ws
            providers: {{fake: {{kind: fake, base_url: "http://127.0.0.1:9/v1"}}}}
            models: {{planner: fake/planner, refactor: fake/coder}}
            policy: {policy}
            """
        )
    )
    return spec


def test_a_policy_refusal_happens_before_any_model_call(tmp_path: Path, fake: FakeProvider) -> None:
    fake.script("planner", valid_answer)
    fake.script("coder", valid_answer)
    served = langgraph_graphs.serve_spec(_fake_spec(tmp_path, "{local_only: true}"))
    with pytest.raises(RunRefused) as raised:
        asyncio.run(_run(served, {"models": {"refactor": "openrouter/qwen/qwen3-coder"}}))
    assert raised.value.exit_code == 5
    assert str(raised.value).startswith("PolicyError (exit 5): 'refactor' has no allowed model")
    assert "local_only" in str(raised.value)
    assert fake.calls == []  # refused while preparing: no model was called


def test_tracing_asked_for_by_the_server_environment_is_checked_by_the_policy(
    tmp_path: Path, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    served = langgraph_graphs.serve_spec(_fake_spec(tmp_path, "{local_only: true}"))
    with pytest.raises(RunRefused) as raised:
        asyncio.run(_run(served, {}))
    assert raised.value.exit_code == 5 and "LangSmith" in str(raised.value)
    assert fake.calls == []


def test_a_broken_served_spec_is_refused_when_the_server_asks_for_its_graph(tmp_path: Path) -> None:
    served = langgraph_graphs.serve_spec(tmp_path / "missing.yaml")
    with pytest.raises(RunRefused) as raised:
        asyncio.run(served({}))
    assert raised.value.exit_code == 2 and "spec file not found" in str(raised.value)


def test_a_dev_server_that_refuses_blocking_io_is_named_before_a_run() -> None:
    refuse_blocking_dev_server({"LANGSMITH_LANGGRAPH_API_VARIANT": "local_dev", "LANGGRAPH_ALLOW_BLOCKING": "true"})
    refuse_blocking_dev_server({})  # not `langgraph dev`: a deployed server does not raise on blocking calls
    with pytest.raises(SpecError, match="langgraph dev"):
        refuse_blocking_dev_server(
            {"LANGSMITH_LANGGRAPH_API_VARIANT": "local_dev", "LANGGRAPH_ALLOW_BLOCKING": "false"}
        )


def test_studio_without_the_extra_names_it_and_exits_2() -> None:
    code = (
        "import sys\n"
        "sys.modules['langgraph_cli'] = None  # as if the extra were not installed\n"
        "from orchestrator.cli import main\n"
        "main(['studio', '--port', '1'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 2, done.stderr
    assert "pip install 'sovereign-orchestrator[langgraph]'" in done.stderr


def test_studio_refuses_a_port_that_is_taken() -> None:
    """`langgraph dev` would quietly serve on another port: the command refuses, naming a free one."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(ORCHESTRATOR), "studio", "--port", str(port)], capture_output=True, text=True, timeout=120, cwd=REPO
        )
    assert done.returncode == 2, done.stderr
    assert f"port {port} on 127.0.0.1 is taken" in done.stderr and "--port" in done.stderr
    assert "serving the graphs" not in done.stderr  # nothing was started


def test_studio_without_a_config_says_where_to_run_it(tmp_path: Path) -> None:
    done = subprocess.run([str(ORCHESTRATOR), "studio"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and "langgraph.json" in done.stderr


def test_help_imports_nothing_of_langgraph_server() -> None:
    modules = modules_imported_by(["--help"])
    assert "orchestrator.cli.studio" in modules  # the command is registered...
    server = {m for m in modules if m.split(".")[0] in ("langgraph_api", "langgraph_cli", "langgraph_runtime")}
    assert not server  # ...and imports none of the server
