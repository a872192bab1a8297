"""`orchestrator mcp` through real MCP clients: the SDK's stdio client starting the command as a
subprocess, and its streamable HTTP client against `orchestrator mcp --http PORT` on loopback.
The tools (run_workflow, validate_spec, list_models, verify_patch), the resources (built-in
graphs, finished runs), the operator's trust applied to every spec, hostile arguments answered
with errors (never the server's end), and a fast `orchestrator --help` that imports no MCP SDK."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextResourceContents
from pydantic import AnyUrl

from orchestrator.catalog import load_catalog
from orchestrator.checks import bubblewrap_problem
from orchestrator.spec import read_data
from tests.machine import unavailable
from tests.process import modules_imported_by
from tests.process import orchestrator as cli
from tests.servers.loopback import free_port
from tests.servers.model_server import Handler, ModelServer, ServerState
from tests.test_agentic import RIGHT_FIX, WRONG_FIX

REPO = Path(__file__).resolve().parent.parent
ORCHESTRATOR = Path(sys.executable).parent / "orchestrator"
CALL = timedelta(seconds=120)  # one tool call (a run of canned models, a verification)
needs_bwrap = pytest.mark.needs(bubblewrap_problem())
TOOLS = {"run_workflow", "start_workflow", "get_run", "cancel_run", "validate_spec", "list_models", "verify_patch"}


def quickstart(tmp_path: Path) -> Path:
    """A copy of the quickstart (spec and project): runs write beside their spec."""
    target = tmp_path / "quickstart"
    ignore = shutil.ignore_patterns(".orchestrator", "__pycache__", ".pytest_cache", "out")
    shutil.copytree(REPO / "examples" / "quickstart", target, ignore=ignore)
    return target


def brief_quickstart(tmp_path: Path) -> Path:
    """The quickstart's copy running the brief quickstart (two of its roles; the transport and
    the progress are what is tested: the whole quickstart runs in tests/test_embedded.py)."""
    target = quickstart(tmp_path)
    brief = (REPO / "tests" / "data" / "brief-quickstart.yaml").read_text()
    written = "workspace: ../../examples/quickstart/project"
    assert written in brief
    (target / "spec.yaml").write_text(brief.replace(written, "workspace: project"))
    return target


def text(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def structured(result: CallToolResult) -> dict[str, Any]:
    assert result.structuredContent is not None, text(result)
    return result.structuredContent


def run_async(main: Callable[[], Awaitable[None]], timeout: float) -> None:
    """Run a client to its end, failing (not hanging) after `timeout` seconds."""

    async def bounded() -> None:
        with anyio.fail_after(timeout):
            await main()

    anyio.run(bounded)


@asynccontextmanager
async def stdio_session(cwd: Path, log: Path, *options: str) -> AsyncIterator[ClientSession]:
    """`orchestrator mcp OPTIONS` started by the SDK's stdio client, initialized."""
    params = StdioServerParameters(command=str(ORCHESTRATOR), args=["mcp", *options], env=dict(os.environ), cwd=cwd)
    with log.open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write, read_timeout_seconds=CALL) as session,
        ):
            await session.initialize()
            yield session


def write_spec(folder: Path, text_: str, name: str = "spec.yaml") -> Path:
    (folder / "ws").mkdir(parents=True, exist_ok=True)
    (folder / "ws" / "app.py").write_text("def add(a, b):\n    return a - b\n")
    spec = folder / name
    spec.write_text(textwrap.dedent(text_).lstrip())
    return spec


BAD_SPEC = """
version: 1
roles:
  x: {prompt: "Say hello."}
name: bad
goal: Review the code.
workspace: ws
"""


def test_orchestrator_help_does_not_import_the_mcp_sdk() -> None:
    modules = modules_imported_by(["--help"])
    assert "orchestrator.cli.mcp" in modules  # the command is registered...
    assert not {m for m in modules if m == "mcp" or m.startswith("mcp.")}  # ...and imports no SDK
    models = modules_imported_by(["models", "--country", "AE"])  # Catalog.filter, as list_models
    assert not {m for m in models if m == "mcp" or m.startswith(("mcp.", "orchestrator.serve"))}


def test_stdio_tools_validate_models_resources_and_hostile_arguments(tmp_path: Path) -> None:
    bad = write_spec(tmp_path, BAD_SPEC)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.yaml"
    outside.write_text(BAD_SPEC)
    arabic = load_catalog().filter(country="AE")
    assert arabic  # the catalog has models of labs in the UAE (Jais, Falcon)

    async def main() -> None:
        async with stdio_session(tmp_path, tmp_path / "server.log") as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            assert set(tools) == TOOLS
            assert tools["validate_spec"].inputSchema["required"] == ["spec"]

            invalid = await session.call_tool("validate_spec", {"spec": "spec.yaml"})
            assert invalid.isError
            line = f"{bad}:3: roles.x.output: required field is missing (a new role needs an output)"
            assert line in text(invalid).splitlines()  # file:line: field: message, as `orchestrator validate`
            problems = structured(invalid)["problems"]
            assert structured(invalid)["exit_status"] == 2 and problems[0]["field"] == "roles.x.output"
            assert problems[0]["line"] == 3 and problems[0]["file"] == str(bad)

            models = await session.call_tool("list_models", {"country": "AE"})
            assert not models.isError
            assert [m["id"] for m in structured(models)["models"]] == [e.id for e in arabic]
            assert all(m["country"] == "AE" for m in structured(models)["models"])
            open_ones = structured(await session.call_tool("list_models", {"open_weights": True}))["models"]
            assert [m["id"] for m in open_ones] == [e.id for e in load_catalog().filter(open_weights=True)]

            # hostile arguments: each call fails on its own, with a clear error
            refusals = {
                "outside": ("validate_spec", {"spec": str(outside)}, "outside the server's workspace"),
                "climbs": ("validate_spec", {"spec": "../" + outside.name}, "outside the server's workspace"),
                "dotdot": ("run_workflow", {"goal": "g", "files": ["../*.py"]}, "files.0: '../*.py' climbs out"),
                "absolute": ("run_workflow", {"goal": "g", "files": ["/etc/passwd"]}, "is not relative"),
                "both": ("run_workflow", {"spec": "spec.yaml", "goal": "g"}, "not both"),
                "no files": ("run_workflow", {"goal": "g"}, "files"),
                "graph": ("run_workflow", {"goal": "g", "files": ["ws/*.py"], "graph": "os:system"}, "graph"),
                "long goal": ("run_workflow", {"goal": "g" * 20_001, "files": ["ws/*.py"]}, "at most 20000"),
                "types": ("run_workflow", {"goal": "g", "files": "ws/app.py", "models": 7}, "validation error"),
                "model": ("run_workflow", {"goal": "g", "files": ["ws/*.py"], "models": {"x y": "m"}}, "role name"),
                "patch": ("verify_patch", {"spec": "spec.yaml", "patch": ""}, "at least 1"),
                "missing": ("validate_spec", {"spec": "nope.yaml"}, "nope.yaml"),
            }
            for name, (tool, arguments, expected) in refusals.items():
                answer = await session.call_tool(tool, arguments)
                assert answer.isError, name
                assert expected in text(answer), (name, text(answer))

            unknown_model = await session.call_tool(
                "run_workflow", {"goal": "Review.", "files": ["ws/*.py"], "models": "nosuch/model-x"}
            )
            assert unknown_model.isError and "exit status 2" in text(unknown_model)
            assert structured(unknown_model)["problems"][0]["file"] == "run_workflow"

            graphs = {str(r.uri) for r in (await session.list_resources()).resources}
            assert "graph://coding-workflow" in graphs
            read = await session.read_resource(AnyUrl("graph://coding-workflow"))
            content = read.contents[0]
            assert isinstance(content, TextResourceContents)
            assert content.text == read_data("graphs", "coding-workflow.yaml")
            templates = {t.uriTemplate for t in (await session.list_resource_templates()).resourceTemplates}
            assert {"run://{run_id}/report.md", "run://{run_id}/result.json"} <= templates
            with pytest.raises(Exception, match="no finished run"):
                await session.read_resource(AnyUrl("run://20990101T000000-abcdef/report.md"))

            still = await session.call_tool("list_models", {"country": "AE"})  # the server is still up
            assert not still.isError and structured(still)["count"] == len(arabic)

    run_async(main, timeout=180)


def test_an_untrusted_server_refuses_what_the_operator_does_not_trust(tmp_path: Path) -> None:
    project = quickstart(tmp_path)
    write_spec(
        project,
        """
        version: 1
        name: far-host
        goal: Review the code.
        workspace: ws
        providers: {far: {kind: openai, base_url: "http://10.7.7.7:8000/v1"}}
        models: {default: far/m}
        """,
        name="far.yaml",
    )

    async def main() -> None:
        async with stdio_session(project, tmp_path / "server.log", "--untrusted") as session:
            for tool, arguments, refused in [
                ("run_workflow", {"spec": "spec.yaml"}, "checks.tests.run"),  # a check command
                ("verify_patch", {"spec": "spec.yaml", "patch": RIGHT_FIX}, "checks.tests.run"),
                ("validate_spec", {"spec": "far.yaml"}, "refuses host 10.7.7.7"),  # a host the spec introduces
                ("run_workflow", {"spec": "far.yaml"}, "refuses host 10.7.7.7"),
            ]:
                answer = await session.call_tool(tool, arguments)
                assert answer.isError, (tool, text(answer))
                assert structured(answer)["exit_status"] == 5 and "exit status 5" in text(answer)
                assert refused in text(answer)

    run_async(main, timeout=120)
    assert not (project / "out").exists()  # nothing ran


@needs_bwrap
def test_verify_patch_judges_a_diff_with_the_specs_checks(tmp_path: Path) -> None:
    project = quickstart(tmp_path)
    before = (project / "project" / "inventory" / "store.py").read_text()

    async def main() -> None:
        async with stdio_session(project, tmp_path / "server.log", "--trusted") as session:
            right = structured(await session.call_tool("verify_patch", {"spec": "spec.yaml", "patch": RIGHT_FIX}))
            assert right["verdict"] == "verified" and right["exit_status"] == 0
            assert [(c["name"], c["before"], c["after"]) for c in right["checks"]] == [("tests", "fail", "pass")]
            assert right["sandbox"]["runner"] == "bubblewrap"
            wrong = structured(await session.call_tool("verify_patch", {"spec": "spec.yaml", "patch": WRONG_FIX}))
            assert wrong["verdict"] == "unverified" and wrong["exit_status"] == 1
            garbage = structured(await session.call_tool("verify_patch", {"spec": "spec.yaml", "patch": "no diff"}))
            assert garbage["verdict"] in ("not_applied", "rejected") and garbage["exit_status"] == 1

    run_async(main, timeout=300)
    assert (project / "project" / "inventory" / "store.py").read_text() == before  # the workspace is untouched


def test_a_client_that_goes_away_mid_run_leaves_it_interrupted_and_resumable(tmp_path: Path) -> None:
    progress: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    with ModelServer({name: "canned" for name in ("planner", "review", "debug")}) as models:
        models.state.delay_s = 2.0  # every answer takes 2 s: the client leaves while the first ones are asked
        write_spec(tmp_path, HTTP_SPEC.format(url=models.url))

        async def main() -> None:
            # the SDK's stdio client may fail its own exit when a message (here a progress
            # notification) arrives as it closes (modelcontextprotocol/python-sdk#1960): only that is let pass
            try:
                async with (
                    stdio_session(tmp_path, tmp_path / "server.log", "--trusted") as session,
                    anyio.create_task_group() as group,
                ):
                    group.start_soon(
                        lambda: session.call_tool("run_workflow", {"spec": "spec.yaml"}, progress_callback=on_progress)
                    )
                    while not any(m.startswith("started ") for m in progress):
                        await anyio.sleep(0.05)
                    group.cancel_scope.cancel()  # the client leaves: stdin closes, the server stops the run
            except* anyio.BrokenResourceError:
                pass

        run_async(main, timeout=120)
        run_id = progress[0].split()[1].rstrip(":")
        listed = json.loads(cli("runs", "--json").stdout)
        assert {e["run_id"]: (e["status"], e["exit_code"]) for e in listed}[run_id] == ("interrupted", 130)
        resumed = cli("resume", run_id, timeout=120)
    assert resumed.returncode == 0, resumed.stderr  # what the client started, `orchestrator resume` finishes


@pytest.mark.integration
@pytest.mark.embedded
def test_the_quickstart_runs_on_the_embedded_model_with_progress(tmp_path: Path) -> None:
    project = brief_quickstart(tmp_path)
    progress: list[tuple[float, str]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message or ""))

    async def main() -> None:
        async with stdio_session(project, tmp_path / "server.log", "--trusted") as session:
            answer = await session.call_tool(
                "run_workflow",
                {"spec": "spec.yaml"},
                read_timeout_seconds=timedelta(seconds=900),
                progress_callback=on_progress,
            )
            record = structured(answer)
            assert record["exit_status"] in (0, 1), text(answer)  # finished (1: a finding at or above fail_on)
            assert not answer.isError
            result = json.loads((Path(record["output_dir"]) / "result.json").read_text())
            assert result["run_id"] == record["run_id"] and result["exit_code"] == record["exit_status"]
            assert isinstance(record["findings"], list) and isinstance(record["patches"], list)
            assert all(p["verdict"] in ("verified", "unverified", "not_applied", "rejected") for p in record["patches"])
            assert record["outputs"] and all(Path(p).is_file() for p in record["outputs"])
            assert {Path(p).name for p in record["outputs"]} >= {"report.md", "report.html", "result.json"}
            assert Path(record["output_dir"]).is_relative_to(project / "out")

    run_async(main, timeout=1200)
    values = [value for value, _ in progress]
    assert values == sorted(values) and len(set(values)) == len(values)  # progress only increases
    messages = [message for _, message in progress]
    assert any(m.startswith("started debug") for m in messages) and any(m.startswith("finished ") for m in messages)
    assert messages[-1].startswith("done: ")


# streamable HTTP


@contextmanager
def http_server(cwd: Path, log: Path, *options: str) -> Iterator[str]:
    """`orchestrator mcp --http PORT OPTIONS` on a free loopback port; yields the MCP URL."""
    port = free_port()
    with log.open("w") as errlog:
        process = subprocess.Popen(
            [str(ORCHESTRATOR), "mcp", "--http", str(port), *options], cwd=cwd, stdout=errlog, stderr=errlog
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the HTTP server did not start"
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            process.terminate()
            process.wait(timeout=30)


@asynccontextmanager
async def http_session(url: str) -> AsyncIterator[ClientSession]:
    async with (
        streamable_http_client(url) as (read, write, _),
        ClientSession(read, write, read_timeout_seconds=CALL) as session,
    ):
        await session.initialize()
        yield session


def test_the_http_server_never_listens_beyond_loopback() -> None:
    port = free_port()
    done = cli("mcp", "--http", str(port), "--host", "0.0.0.0", timeout=60)
    assert done.returncode == 2 and "not a loopback address" in done.stderr
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


HTTP_SPEC = """
version: 1
name: over-http
goal: Review and debug the app.
workspace: ws
include: ["**/*.py"]
providers: {{api: {{kind: openai, base_url: '{url}/v1'}}}}
tasks:
  - {{role: architecture_review, instruction: Review the app., files: [app.py]}}
  - {{role: debug, instruction: Find why add is wrong., files: [app.py]}}
models: {{planner: api/planner, architecture_review: api/review, debug: api/debug}}
limits: {{timeout_s: 60, backoff_s: 0.05}}
fail_on: none
"""


def test_over_http_tools_a_run_on_a_loopback_model_server_and_its_report(tmp_path: Path) -> None:
    progress: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    with ModelServer({name: "canned" for name in ("planner", "review", "debug")}) as models:
        write_spec(tmp_path, HTTP_SPEC.format(url=models.url))
        write_spec(tmp_path, BAD_SPEC, name="bad.yaml")

        async def main() -> None:
            async with http_session(url) as session:
                names = {tool.name for tool in (await session.list_tools()).tools}
                assert names == TOOLS
                assert not (await session.call_tool("validate_spec", {"spec": "spec.yaml"})).isError
                bad = await session.call_tool("validate_spec", {"spec": "bad.yaml"})
                assert bad.isError and "bad.yaml:3: roles.x.output: " in text(bad)
                ae = structured(await session.call_tool("list_models", {"country": "AE"}))
                assert [m["id"] for m in ae["models"]] == [e.id for e in load_catalog().filter(country="AE")]

                answer = await session.call_tool("run_workflow", {"spec": "spec.yaml"}, progress_callback=on_progress)
                record = structured(answer)
                assert not answer.isError and record["exit_status"] == 0 and record["status"] == "ok", text(answer)
                assert {s["role"] for s in record["subtasks"]} == {"architecture_review", "debug"}
                assert all(s["status"] == "ok" for s in record["subtasks"])
                assert record["findings"] and all(f["role"] == "architecture_review" for f in record["findings"])
                assert all(Path(p).is_file() for p in record["outputs"])
                assert all(p["path"] is None or Path(p["path"]).is_file() for p in record["patches"])

                run_id = record["run_id"]
                listed = {str(r.uri) for r in (await session.list_resources()).resources}
                assert {f"run://{run_id}/report.md", f"run://{run_id}/result.json"} <= listed
                report = (await session.read_resource(AnyUrl(f"run://{run_id}/report.md"))).contents[0]
                assert isinstance(report, TextResourceContents)
                assert report.text == (Path(record["output_dir"]) / "report.md").read_text()
                stored = (await session.read_resource(AnyUrl(f"run://{run_id}/result.json"))).contents[0]
                assert isinstance(stored, TextResourceContents) and json.loads(stored.text)["run_id"] == run_id

        with http_server(tmp_path, tmp_path / "server.log", "--trusted") as url:
            run_async(main, timeout=240)
        calls = sum(models.state.requests.values())
    assert calls >= 3  # the planner's aggregation and both subtasks went to the loopback server
    assert any(m.startswith("started debug") for m in progress) and progress[-1].startswith("done: ok")


@pytest.mark.xdist_group("ollama-port")  # one test at a time on Ollama's port
def test_an_inline_run_is_confined_to_the_workspace_and_served_by_the_catalogs_ollama(tmp_path: Path) -> None:
    """An inline goal with files and one model for every role, on the catalog's own Ollama address
    (the test's Ollama-compatible server listens there)."""
    try:
        httpd = ThreadingHTTPServer(("127.0.0.1", 11434), Handler)
    except OSError:
        unavailable("something already listens on the Ollama port 11434")
    httpd.daemon_threads = True
    httpd.state = ServerState(models={"m:1b": "canned"})  # type: ignore[attr-defined]
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "app.py").write_text("def add(a, b):\n    return a - b\n")
    (tmp_path / "ws" / "notes.txt").write_text("not asked for\n")
    with http_server(tmp_path / "ws", tmp_path / "server.log", "--trusted") as url:

        async def main() -> None:
            async with http_session(url) as session:
                escape = await session.call_tool("run_workflow", {"goal": "Review.", "files": ["../*"]})
                assert escape.isError and "climbs out of the workspace" in text(escape)
                answer = await session.call_tool(
                    "run_workflow",
                    {"goal": "Review the app.", "files": ["*.py"], "models": "ollama/m:1b", "graph": "review-only"},
                )
                record = structured(answer)
                assert record["exit_status"] in (0, 1) and record["graph"] == "review-only", text(answer)
                result = json.loads((Path(record["output_dir"]) / "result.json").read_text())
                assert result["files"]["included"] == ["app.py"]
                assert {c["model"] for c in [*result["subtasks"], result["aggregate"]]} == {"ollama/m:1b"}
                assert not Path(record["output_dir"]).is_relative_to(tmp_path / "ws" / "out")

        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            run_async(main, timeout=240)
        finally:
            httpd.shutdown()
            httpd.server_close()
    assert httpd.state.requests["m:1b"] >= 2  # type: ignore[attr-defined]
