"""Long work through `orchestrator mcp`, with the SDK's own client: a run longer than the client's
request limit (each call of the client held to it, as the MCP Inspector holds each to 60 s; here
15 s, so the test takes seconds, not minutes) started with `start_workflow` and followed with
`get_run` to its result; a blocking `run_workflow` whose progress notifications
carry a total and keep coming while a model call runs (heartbeats); `cancel_run` of a queued run
(it never starts) and of a running one (checkpointed, then finished by `orchestrator resume`);
and a server that names its own version and stays quiet when a newer client probes it with
requests it does not know. The models are scripted loopback servers whose answers take as long
as each test says (tests/servers/model_server.py)."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession
from mcp.types import TextResourceContents
from pydantic import AnyUrl

from orchestrator import __version__
from tests.process import orchestrator as cli
from tests.servers.model_server import ModelServer
from tests.test_mcp_server import ORCHESTRATOR, run_async, stdio_session, structured, text

INSPECTOR_LIMIT_S = 60  # the MCP Inspector's request limit: get_run never waits as long
LIMIT = timedelta(seconds=15)  # the client's request limit here: every call but the blocking run's
SLOW_S = 6.0  # each model answer of the long run: three of them, and the run outlasts the limit
HEARTBEAT_CALL_S = 8.0  # each model answer of the blocking run: longer than the 5 s between heartbeats
ROLES = ("planner", "review", "debug")

SPEC = """
version: 1
name: {name}
goal: Review and debug the app.
workspace: ws
include: ["**/*.py"]
providers: {{api: {{kind: openai, base_url: '{url}/v1'}}}}
tasks:
  - {{role: architecture_review, instruction: Review the app., files: [app.py]}}
  - {{role: debug, instruction: Find why add is wrong., files: [app.py]}}
models: {{planner: api/planner, architecture_review: api/review, debug: api/debug}}
limits: {{timeout_s: 200, backoff_s: 0.05, concurrency: 1}}
fail_on: none
"""


def write(folder: Path, name: str, url: str) -> str:
    (folder / "ws").mkdir(parents=True, exist_ok=True)
    (folder / "ws" / "app.py").write_text("def add(a, b):\n    return a - b\n")
    (folder / f"{name}.yaml").write_text(textwrap.dedent(SPEC.format(name=name, url=url)).lstrip())
    return f"{name}.yaml"


async def call(
    session: ClientSession, tool: str, arguments: dict[str, Any], limit: timedelta = LIMIT
) -> dict[str, Any]:
    answer = await session.call_tool(tool, arguments, read_timeout_seconds=limit)
    assert not answer.isError, text(answer)
    return structured(answer)


async def until(session: ClientSession, run_id: str, ready: Any) -> dict[str, Any]:
    """get_run until `ready(record)` (each call answers at once)."""
    while True:
        record = await call(session, "get_run", {"run_id": run_id})
        if ready(record):
            return record
        await anyio.sleep(0.2)


def test_a_run_longer_than_the_clients_request_limit_through_start_workflow_and_get_run(tmp_path: Path) -> None:
    """Meanwhile a blocking run_workflow sends progress with a total and heartbeats during each
    model call, and a third run, queued behind the two, is cancelled before it starts."""
    notes: list[tuple[float, float | None, str]] = []
    asked: list[float] = []  # how long each get_run call took
    ids: dict[str, str] = {}

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        notes.append((value, total, message or ""))

    with ModelServer(dict.fromkeys(ROLES, "canned")) as slow, ModelServer(dict.fromkeys(ROLES, "canned")) as quick:
        slow.state.delay_s = SLOW_S
        quick.state.delay_s = HEARTBEAT_CALL_S  # a heartbeat during each call
        long_spec, blocking_spec = write(tmp_path, "long", slow.url), write(tmp_path, "blocking", quick.url)
        server_log = tmp_path / "server.log"

        async def main() -> None:
            async with stdio_session(tmp_path, server_log, "--trusted") as session:
                # a client reads the tools first (and the server imports its run machinery)
                tools = {t.name: t for t in (await session.list_tools()).tools}
                assert tools["get_run"].inputSchema["properties"]["wait_s"]["maximum"] < INSPECTOR_LIMIT_S
                assert (await session.call_tool("validate_spec", {"spec": long_spec})).isError is False
                began = time.monotonic()
                started = await call(session, "start_workflow", {"spec": long_spec})
                run_id = ids["long"] = started["run_id"]
                assert started["state"] in ("queued", "running") and not started["done"]
                await until(session, run_id, lambda r: r["progress"]["running"])  # its first model call

                blocking: dict[str, Any] = {}

                async def run_blocking() -> None:
                    answer = await session.call_tool(
                        "run_workflow",
                        {"spec": blocking_spec},
                        read_timeout_seconds=timedelta(seconds=600),
                        progress_callback=on_progress,
                    )
                    blocking.update(structured(answer))

                async with anyio.create_task_group() as group:
                    group.start_soon(run_blocking)
                    while not any(m.startswith("started ") for _, _, m in notes):
                        await anyio.sleep(0.1)
                    # both run slots are taken: a third run waits, and is cancelled before it starts
                    queued = await call(session, "start_workflow", {"spec": long_spec})
                    assert queued["state"] == "queued", queued
                    ids["queued"] = queued["run_id"]
                    cancelled = await call(session, "cancel_run", {"run_id": queued["run_id"]})
                    assert cancelled["state"] == "cancelled" and cancelled["done"], cancelled

                    record = started
                    while not record["done"]:
                        at = time.monotonic()
                        record = await call(session, "get_run", {"run_id": run_id, "wait_s": 5})
                        asked.append(time.monotonic() - at)
                        assert record["run_id"] == run_id and record["progress"]["total"] >= 1
                took = time.monotonic() - began
                print(f"\nthe run took {took:.0f} s through start_workflow/get_run ({len(asked)} get_run calls)")

                assert record["state"] == "finished" and record["status"] == "ok", record
                assert record["exit_status"] == 0 and all(s["status"] == "ok" for s in record["subtasks"])
                assert {s["role"] for s in record["subtasks"]} == {"architecture_review", "debug"}
                assert record["findings"] and Path(record["output_dir"]).is_dir()
                assert took > LIMIT.total_seconds()  # no one call of the client could have carried the run
                report = (await session.read_resource(AnyUrl(f"run://{run_id}/report.md"))).contents[0]
                assert isinstance(report, TextResourceContents)
                assert report.text == (Path(record["output_dir"]) / "report.md").read_text()
                queued_now = await call(session, "get_run", {"run_id": queued["run_id"]})
                assert queued_now["state"] == "cancelled"

                assert blocking["exit_status"] == 0 and blocking["status"] == "ok", blocking

        run_async(main, timeout=900)
        assert sum(slow.state.requests.values()) == 3  # the aggregation and both subtasks, once each
    assert len(asked) >= 2  # the client asked again and again: no call held the run to its end

    listed = {e["run_id"]: e["status"] for e in json.loads(cli("runs", "--json").stdout)}
    assert listed[ids["long"]] == "ok" and ids["queued"] not in listed  # the cancelled run never started

    values = [value for value, _, _ in notes]
    assert values == sorted(values) and len(set(values)) == len(values)  # progress only increases
    assert all(total is not None and value <= total for value, total, _ in notes)
    messages = [message for _, _, message in notes]
    assert messages[-1].startswith("done: ok") and notes[-1][0] == notes[-1][1]  # the end: progress == total
    # every model call of the blocking run (8 s each) had heartbeats naming it while it ran
    for call_name in ("architecture_review", "debug"):
        begin = next(i for i, m in enumerate(messages) if m.startswith(f"started {call_name}"))
        end = next(i for i, m in enumerate(messages) if m.startswith(f"finished {call_name}"))
        beats = [m for m in messages[begin:end] if m.startswith("running ")]
        assert beats and all(call_name in m for m in beats), messages[begin : end + 1]


def test_cancel_run_stops_a_running_run_and_orchestrator_resume_finishes_it(tmp_path: Path) -> None:
    with ModelServer(dict.fromkeys(ROLES, "canned")) as models:
        models.state.delay_s = 3.0
        spec = write(tmp_path, "stoppable", models.url)

        async def main() -> str:
            async with stdio_session(tmp_path, tmp_path / "server.log", "--trusted") as session:
                run_id = str((await call(session, "start_workflow", {"spec": spec}))["run_id"])
                running = await until(session, run_id, lambda r: r["progress"]["running"])
                assert running["state"] == "running" and not running["done"]
                # (cancel_run waits for the run to write down where it stopped: under the Inspector's limit)
                inspector = timedelta(seconds=INSPECTOR_LIMIT_S)
                stopped = await call(session, "cancel_run", {"run_id": run_id}, inspector)
                assert stopped["state"] == "interrupted" and stopped["exit_status"] == 130, stopped
                assert stopped["resume"] == f"orchestrator resume {run_id}"
                unknown = await session.call_tool("get_run", {"run_id": "20990101T000000-abcdef"})
                assert unknown.isError and "no run 20990101T000000-abcdef" in text(unknown)
                hostile = await session.call_tool("cancel_run", {"run_id": "../../etc/passwd"})
                assert hostile.isError and "is not a run id" in text(hostile)
            return run_id

        holder: list[str] = []
        run_async(lambda: _keep(holder, main), timeout=300)
        (run_id,) = holder
        listed = {e["run_id"]: (e["status"], e["exit_code"]) for e in json.loads(cli("runs", "--json").stdout)}
        assert listed[run_id] == ("interrupted", 130)
        models.state.delay_s = 0.0
        resumed = cli("resume", run_id, timeout=300)
        assert resumed.returncode == 0, resumed.stderr

        async def again() -> None:  # a new server knows the run from the ledger
            async with stdio_session(tmp_path, tmp_path / "server2.log", "--trusted") as session:
                record = await call(session, "get_run", {"run_id": run_id})
                assert record["done"] and record["status"] == "ok" and record["exit_status"] == 0, record
                assert {s["role"] for s in record["subtasks"]} == {"architecture_review", "debug"}

        run_async(again, timeout=120)


async def _keep(holder: list[str], main: Any) -> None:
    holder.append(await main())


def test_the_server_names_its_version_and_stays_quiet_when_probed(tmp_path: Path) -> None:
    """A newer client's requests and notifications the SDK does not know are answered (an error
    for a request), without a page of warnings; the server goes on answering."""
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "probe", "version": "9"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tasks/list", "params": {}},
        {"jsonrpc": "2.0", "method": "notifications/something_new", "params": {"x": 1}},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {}},
    ]
    errors = tmp_path / "stderr.log"
    with errors.open("w") as stderr:
        server = subprocess.Popen(
            [str(ORCHESTRATOR), "mcp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=tmp_path,
            env=dict(os.environ),
        )
        assert server.stdin is not None and server.stdout is not None
        answers: dict[int, dict[str, Any]] = {}
        try:
            for message in messages:
                server.stdin.write((json.dumps(message) + "\n").encode())
                server.stdin.flush()
                if "id" in message:
                    answer = json.loads(server.stdout.readline())
                    answers[answer["id"]] = answer
        finally:
            server.stdin.close()
            server.wait(timeout=60)
    info = answers[1]["result"]["serverInfo"]
    assert info == {"name": "sovereign-orchestrator", "version": __version__}
    assert "error" in answers[2]  # the unknown request is refused...
    assert "start_workflow" in {t["name"] for t in answers[3]["result"]["tools"]}  # ...and the server goes on
    logged = errors.read_text()
    assert "validation error" not in logged and len(logged.splitlines()) <= 2, logged
