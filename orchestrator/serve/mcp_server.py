"""`orchestrator mcp`: the orchestrator as a Model Context Protocol server, built on the official
`mcp` SDK (an optional extra, imported only by this command: `orchestrator --help` stays fast).

Tools: `run_workflow` (a spec, or an inline goal with files, models and a graph; it blocks until
the run ends, with progress notifications at least every few seconds), `start_workflow` (the same
run, answered at once with its run id), `get_run` and `cancel_run` (a started run's progress and
result; stopping it, checkpointed), `validate_spec`, `list_models` and `verify_patch`. Resources:
the built-in graphs (`graph://NAME`) and finished runs (`run://RUN_ID/report.md`, `result.json`,
`report.html`), with resource templates for `run://`. The server names itself with the
orchestrator's version. Nothing of the run machinery (LangGraph, the engine) is imported until a
tool needs it, so the server answers its first request about as soon as a bare FastMCP server.

Transports: stdio (the default; stdout carries only the protocol, anything else written to file
descriptor 1 goes to stderr), or streamable HTTP on a loopback address (`--http PORT`, at
`/mcp`), with DNS-rebinding protection: the server has no authentication, so it never listens
beyond this machine.

Every argument is hostile input (typed, bounded, confined to the server's workspace); every spec
is held to the operator's policy and trust as on the command line; an error in one call is that
call's result (isError, naming the exit status the CLI would exit with), never the server's end.
A request or notification the SDK does not know (a newer client probing for a feature) is
answered as the SDK answers it, without the SDK's page of validation warnings.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import anyio
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, Resource, ToolAnnotations
from pydantic import Field

from orchestrator import __version__
from orchestrator.catalog import is_loopback
from orchestrator.errors import SpecError
from orchestrator.log import get_logger
from orchestrator.serve._mcp_args import (
    MAX_CHAIN,
    MAX_FILES,
    MAX_GOAL,
    MAX_MODEL_REF,
    MAX_MODELS,
    MAX_PATCH,
    MAX_PATH,
)
from orchestrator.serve._mcp_resources import RUN_FILES, graph_resources, read_run_file, run_resources
from orchestrator.serve._mcp_tools import Tools
from orchestrator.spec.operator import Operator

NAME = "sovereign-orchestrator"
INSTRUCTIONS = (
    "Runs coding workflows (review, refactor, debug, docs) across many LLMs under the operator's "
    "sovereignty policy. validate_spec before a run; runs take minutes: start_workflow answers at once "
    "with a run id, get_run reports progress and the result (wait_s waits), cancel_run stops a run; "
    "run_workflow blocks until the end. list_models shows the catalog; verify_patch judges a unified "
    "diff with a spec's checks. Finished runs are resources run://RUN_ID/..."
)
log = get_logger(__name__)

SpecPath = Annotated[
    str, Field(min_length=1, max_length=MAX_PATH, description="a spec file (YAML), relative to the server's workspace")
]
PathText = Annotated[str, Field(min_length=1, max_length=MAX_PATH)]
ModelRef = Annotated[str, Field(min_length=1, max_length=MAX_MODEL_REF)]
Chain = Annotated[list[ModelRef], Field(min_length=1, max_length=MAX_CHAIN)]
RoleModels = Annotated[dict[Annotated[str, Field(max_length=64)], ModelRef | Chain], Field(max_length=MAX_MODELS)]
RunId = Annotated[str, Field(min_length=1, max_length=128, description="a run id, as start_workflow answers it")]
Goal = Annotated[str | None, Field(max_length=MAX_GOAL, description="inline mode: what to do")]
Files = Annotated[
    list[PathText] | None, Field(max_length=MAX_FILES, description="inline mode: paths or globs inside the workspace")
]
Models = Annotated[
    RoleModels | ModelRef | None,
    Field(description="inline mode: role -> model id (or a fallback chain), or one model id for every role"),
]
GraphName = Annotated[
    str | None,
    Field(max_length=MAX_PATH, description="inline mode: a built-in graph (coding-workflow) or a graph file"),
]


@dataclass(frozen=True)
class McpSettings:
    operator: Operator
    root: Path  # the server's workspace: --workspace, else the working directory
    port: int | None = None  # None: stdio
    host: str = "127.0.0.1"
    max_runs: int = 2  # runs and verifications at once (more calls wait for a slot)


class OrchestratorMCP(FastMCP[Any]):
    """FastMCP whose resource list also holds the newest finished runs of the ledger."""

    async def list_resources(self) -> list[Resource]:
        listed = await super().list_resources()
        return listed + await anyio.to_thread.run_sync(run_resources)


def build_server(settings: McpSettings) -> tuple[OrchestratorMCP, Tools]:
    if not is_loopback(settings.host):
        raise SpecError(
            f"--host {settings.host} is not a loopback address: the MCP server has no authentication",
            hint="serve on 127.0.0.1 (the default), ::1 or localhost, and tunnel to it if needed",
        )
    host = settings.host.strip("[]")
    shown = f"[{host}]" if ":" in host else host
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{shown}:*", "127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=[f"http://{shown}:*", "http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )
    server = OrchestratorMCP(
        NAME,
        instructions=INSTRUCTIONS,
        host=host,
        port=settings.port or 8765,
        log_level="WARNING",
        transport_security=security,
    )
    # clients see the orchestrator's version, not the SDK's
    server._mcp_server.version = __version__
    tools = Tools(settings.operator, settings.root, settings.max_runs)
    _add_tools(server, tools)
    _add_resources(server)
    return server, tools


def _add_tools(server: FastMCP[Any], tools: Tools) -> None:
    @server.tool(annotations=ToolAnnotations(title="Run a workflow", destructiveHint=False, openWorldHint=True))
    async def run_workflow(
        ctx: Context[Any, Any, Any],
        spec: SpecPath | None = None,
        goal: Goal = None,
        files: Files = None,
        models: Models = None,
        graph: GraphName = None,
    ) -> CallToolResult:
        """Run a workflow and wait for its end: a spec file, or an inline goal with files (plus
        models and a graph). Runs take minutes: clients with a request time limit should use
        start_workflow. Progress comes as notifications (progress out of a total that grows as
        the planner plans), one per node started or finished and a heartbeat every few seconds.
        Returns the summary, findings, patches with their verification verdicts, the exit status
        (0 ok, 1 quality gate, 3 provider failure, 4 budget reached), the run id and the outputs."""
        return await tools.run_workflow(ctx, spec, goal, files, models, graph)

    @server.tool(annotations=ToolAnnotations(title="Start a workflow", destructiveHint=False, openWorldHint=True))
    async def start_workflow(
        spec: SpecPath | None = None,
        goal: Goal = None,
        files: Files = None,
        models: Models = None,
        graph: GraphName = None,
    ) -> CallToolResult:
        """Start a workflow (as run_workflow) and answer at once with its run id; the run goes on
        in the server. get_run reports its progress and, once it has ended, its result;
        cancel_run stops it. A spec error is answered at once, as validate_spec answers it."""
        return await tools.start_workflow(spec, goal, files, models, graph)

    @server.tool(annotations=ToolAnnotations(title="Get a run", readOnlyHint=True, openWorldHint=False))
    async def get_run(
        run_id: RunId,
        wait_s: Annotated[
            float, Field(ge=0, le=50, description="wait up to this long for the run to end (0: answer at once)")
        ] = 0,
    ) -> CallToolResult:
        """A run's state (queued, running, finished, interrupted, error, cancelled) and progress
        (calls finished out of those known, the calls in flight, the last progress lines); once
        it has ended, the result run_workflow returns. Runs this server did not start are
        reported from the run ledger (`orchestrator runs`)."""
        return await tools.get_run(run_id, wait_s)

    @server.tool(annotations=ToolAnnotations(title="Cancel a run", destructiveHint=False, openWorldHint=False))
    async def cancel_run(run_id: RunId) -> CallToolResult:
        """Stop a run started with start_workflow, as Ctrl-C does: what finished is checkpointed
        and kept in its outputs, and `orchestrator resume RUN_ID` finishes it. Answers once the
        run has written down where it stopped."""
        return await tools.cancel_run(run_id)

    @server.tool(annotations=ToolAnnotations(title="Validate a spec", readOnlyHint=True, openWorldHint=False))
    async def validate_spec(spec: SpecPath) -> CallToolResult:
        """Check a spec file, its graph, models and policy under the operator's policy; calls no
        model. Problems come as `file:line: field: message` lines (isError, exit status 2 or 5)."""
        return await tools.validate_spec(spec)

    @server.tool(annotations=ToolAnnotations(title="List models", readOnlyHint=True, openWorldHint=False))
    async def list_models(
        country: Annotated[str | None, Field(max_length=8, description="ISO 3166 code of the lab, e.g. AE")] = None,
        strength: Annotated[str | None, Field(max_length=64, description="e.g. coding, reasoning, arabic")] = None,
        open_weights: Annotated[bool, Field(description="only models with open weights")] = False,
        provider: Annotated[str | None, Field(max_length=64, description="only models with a route on it")] = None,
    ) -> CallToolResult:
        """The model catalog, filtered as `orchestrator models` filters it."""
        return await tools.list_models(country, strength, open_weights, provider)

    @server.tool(annotations=ToolAnnotations(title="Verify a patch", readOnlyHint=True, openWorldHint=False))
    async def verify_patch(
        spec: SpecPath,
        patch: Annotated[str, Field(min_length=1, max_length=MAX_PATCH, description="a unified diff")],
    ) -> CallToolResult:
        """Judge a unified diff with the spec's checks, on a scratch copy of the workspace (before
        and after the patch, in the sandbox); no model is involved. Returns the verdict
        (verified: exit status 0, else 1) and each check's result."""
        return await tools.verify_patch(spec, patch)


def _add_resources(server: FastMCP[Any]) -> None:
    for resource in graph_resources():
        server.add_resource(resource)
    for name, mime in RUN_FILES.items():
        _run_template(server, name, mime)


def _run_template(server: FastMCP[Any], name: str, mime: str) -> None:
    @server.resource(f"run://{{run_id}}/{name}", name=f"run {name}", mime_type=mime, description=f"{name} of a run")
    def read(run_id: str) -> str:
        return read_run_file(run_id, name)


def serve(settings: McpSettings, announce: Callable[[str], None] | None = None) -> None:
    """Serve until the client closes stdin (stdio) or the process is stopped (HTTP); `announce`
    is told where an HTTP server listens. On the way out, runs still going are stopped and wait
    until they have written down where they stopped (`orchestrator resume RUN_ID` finishes them)."""
    server, tools = build_server(settings)
    logging.getLogger().addFilter(_quiet_probes)
    try:
        if settings.port is None:
            _protect_stdout()
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda signum, frame: _terminated(tools, signum))
            anyio.run(_serve_stdio, server, tools)
        else:
            if announce is not None:
                host = server.settings.host
                announce(f"serving MCP on http://{f'[{host}]' if ':' in host else host}:{settings.port}/mcp")
            anyio.run(_serve_http, server, tools)
    finally:
        tools.shutdown()


async def _serve_stdio(server: FastMCP[Any], tools: Tools) -> None:
    """The stdio session, with the server's own task group for started runs: they outlive the
    call that started them, and when the client closes stdin they are stopped and written down."""
    async with anyio.create_task_group() as group:
        tools.group = group
        try:
            await server.run_stdio_async()
        finally:
            await anyio.to_thread.run_sync(tools.shutdown)
            tools.group = None
            group.cancel_scope.cancel()


def _quiet_probes(record: logging.LogRecord) -> bool:
    """The SDK answers a request it does not know (a newer client probing for a feature) with an
    error, then logs the pydantic error of every request type it knows: about 200 lines. Only a
    debug line is kept."""
    message = record.getMessage()
    if message.startswith(("Failed to validate request", "Failed to validate notification")):
        log.debug("mcp.unknown_message", detail=message.splitlines()[0][:200])
        return False
    return True


def _terminated(tools: Tools, signum: int) -> None:
    """SIGTERM or SIGINT on stdio: the runs still going are stopped and written down, then the
    signal does what it does by default (a thread blocked reading stdin would keep an ordinary
    exit waiting for the client)."""
    tools.shutdown(timeout=30)
    sys.stderr.flush()
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


async def _serve_http(server: FastMCP[Any], tools: Tools) -> None:
    """Streamable HTTP with uvicorn (as FastMCP does), where a signal first stops the runs, so
    their calls answer and the shutdown does not wait on them, and the lifespan waits for them."""
    import uvicorn

    app = server.streamable_http_app()
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with inner(app) as state:
            try:
                yield state
            finally:
                await anyio.to_thread.run_sync(tools.shutdown)

    app.router.lifespan_context = lifespan
    logging.getLogger("mcp.server.streamable_http").addFilter(_quiet_goodbyes)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            tools.stop_runs()

    config = uvicorn.Config(
        app, host=server.settings.host, port=server.settings.port, log_level="warning", timeout_graceful_shutdown=30
    )
    async with anyio.create_task_group() as group:  # started runs outlive their call and the client's session
        tools.group = group
        await Server(config).serve()
        tools.group = None
        group.cancel_scope.cancel()


def _quiet_goodbyes(record: logging.LogRecord) -> bool:
    """The SDK logs a client's ordinary goodbye (its event stream already closed when the session
    ends) as an error with a traceback; that one record is dropped, every other is kept."""
    error = record.exc_info[1] if record.exc_info else None
    return not isinstance(error, anyio.ClosedResourceError)


def _protect_stdout() -> None:
    """Only the protocol on stdout: the SDK writes to a copy of file descriptor 1, and fd 1 itself
    (what native code and child processes write to) becomes stderr."""
    sys.stdout.flush()
    protocol = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = io.TextIOWrapper(os.fdopen(protocol, "wb"), encoding="utf-8", write_through=True)
