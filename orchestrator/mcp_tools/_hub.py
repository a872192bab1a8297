"""The MCP servers of one run: started (stdio) or connected (streamable HTTP) once when the run
starts, their tools listed, and each call bounded.

Everything a server says is a stranger's data: a tool's name, description and argument schema are
bounded and checked before a model is shown them, a result is cut to a bound and fenced by the
toolbox, and a call that hangs is timed out. An HTTP server's traffic is counted in the egress
report like a model's (its host was checked against the policy at validate).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import ExitStatus, OrchestratorError, SpecError, printable
from orchestrator.log import get_logger
from orchestrator.policy import Egress
from orchestrator.spec import McpServerSpec, mcp_server_of

log = get_logger(__name__)

DESCRIPTION_CHARS = 1000  # of a tool's description, as the model is shown it
SCHEMA_BYTES = 16_000  # a larger argument schema is refused (it would crowd the prompt)
RESULT_BYTES = 200_000  # of one result, before the toolbox's own cut
RESERVED = ("tool",)  # a grammar turn's action key: no tool may take an argument of that name
EXPOSED = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # function names endpoints accept
# (server name, its command) -> the argv that starts it: the runtime's sandbox in pull-request mode
Launch = Callable[[str, list[str]], list[str]]


class McpUnavailable(OrchestratorError):
    """A declared MCP server could not be started or reached, or lacks a granted tool (exit 3)."""

    exit_code = ExitStatus.PROVIDER_FAILURE
    hint = "check the server's command or URL with the MCP inspector, or remove its tools from the roles"


@dataclass
class McpTool:
    server: str
    name: str  # as the server names it
    description: str
    schema: dict[str, Any]  # the arguments, a JSON Schema object
    runnable: Any  # the LangChain tool of langchain-mcp-adapters

    @property
    def granted(self) -> str:
        """As a spec grants it: SERVER.TOOL."""
        return f"{self.server}.{self.name}"

    @property
    def exposed(self) -> str:
        """As a model calls it (function names take no dot)."""
        return f"{self.server}__{self.name.replace('.', '_')}"


@dataclass
class McpHub:
    """The granted tools of the run's MCP servers, by the name a model calls them."""

    tools: dict[str, McpTool] = field(default_factory=dict)  # granted name -> tool
    timeouts: dict[str, float] = field(default_factory=dict)  # server -> seconds per call

    def tool(self, granted: str) -> McpTool | None:
        return self.tools.get(granted)

    async def call(self, granted: str, args: dict[str, Any]) -> tuple[str, str]:
        """(text, status) of one call: ok, or error with what went wrong (the run goes on)."""
        from langchain_core.tools import ToolException

        tool = self.tools[granted]
        try:
            content = await asyncio.wait_for(tool.runnable.ainvoke(args), self.timeouts.get(tool.server, 30))
        except TimeoutError:
            return f"the tool did not answer within {self.timeouts.get(tool.server, 30):g} s", "error"
        except ToolException as exc:
            return f"the tool reported an error: {printable(str(exc))[:2000]}", "error"
        except Exception as exc:  # noqa: BLE001 - a broken server or transport fails this call, not the run
            log.warning("mcp.call_failed", tool=granted, error=type(exc).__name__)
            return f"the call failed: {type(exc).__name__}: {printable(str(exc))[:500]}", "error"
        return _text(content)[:RESULT_BYTES], "ok"


def _text(content: Any) -> str:
    """A tool's content blocks as text (what is not text is named, not shown)."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content if isinstance(content, list) else [content]:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif isinstance(block, dict):
            parts.append(f"({block.get('type', 'content')} content not shown)")
        else:
            parts.append(str(block))
    return "\n".join(parts)


def needed_servers(granted: Iterable[str]) -> dict[str, list[str]]:
    """server -> the tools of it that some role is granted."""
    found: dict[str, list[str]] = {}
    for tool in granted:
        server = mcp_server_of(tool)
        if server is not None:
            found.setdefault(server, []).append(tool.split(".", 1)[1])
    return found


def _connection(
    name: str, server: McpServerSpec, cwd: Path, egress: Egress | None, launch: Launch | None
) -> dict[str, Any]:
    if server.command is not None:
        argv = launch(name, list(server.command)) if launch is not None else list(server.command)
        return {"transport": "stdio", "command": argv[0], "args": argv[1:], "cwd": str(cwd)}
    connection: dict[str, Any] = {"transport": "streamable_http", "url": server.url, "timeout": server.timeout_s}
    if egress is not None:
        connection["httpx_client_factory"] = _counted_client(egress, f"mcp server {name}")
    return connection


def _counted_client(egress: Egress, what: str) -> Any:
    """An httpx client factory whose traffic the egress report counts (as the MCP SDK's own)."""
    import httpx

    _, hooks = egress.hooks(what, "mcp_servers (validated against the policy)")

    def create(headers: Any = None, timeout: Any = None, auth: Any = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            headers=headers,
            timeout=timeout or httpx.Timeout(30, read=300),
            auth=auth,
            follow_redirects=False,  # the policy checked this host, not one it redirects to
            event_hooks=hooks,
        )

    return create


def _checked(server: str, tool: Any) -> McpTool:
    """A listed tool, bounded and checked (SpecError for one a model cannot be offered)."""
    schema = tool.args_schema if isinstance(tool.args_schema, dict) else {}
    schema = {"type": "object", "properties": {}, **schema}
    where = f"mcp_servers.{server}: tool {printable(tool.name)[:80]!r}"
    if len(json.dumps(schema)) > SCHEMA_BYTES:
        raise SpecError(f"{where}: its argument schema is larger than {SCHEMA_BYTES} bytes")
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        raise SpecError(f"{where}: its arguments are not a JSON object schema")
    taken = [key for key in RESERVED if key in schema["properties"]]
    if taken:
        raise SpecError(f"{where}: an argument named {taken[0]!r} clashes with the tool loop's own")
    schema.setdefault("required", [])
    made = McpTool(server, str(tool.name), printable(str(tool.description or ""))[:DESCRIPTION_CHARS], schema, tool)
    if not EXPOSED.match(made.exposed):
        raise SpecError(f"{where}: '{made.exposed}' is not a function name endpoints accept (64 characters at most)")
    return made


@asynccontextmanager
async def open_servers(
    servers: dict[str, McpServerSpec],
    granted: Iterable[str],
    cwd: Path,
    egress: Egress | None,
    launch: Launch | None = None,
) -> AsyncIterator[McpHub]:
    """Start or connect the servers whose tools are granted, for as long as the run lasts;
    `launch` turns a stdio server's command into the one that starts it (in a sandbox).

    The sessions live in a task of their own: the MCP SDK's transports are anyio task groups,
    which would wrap every exception of the run (an interruption, a budget stop) in an
    ExceptionGroup if the run went on inside them."""
    ready: asyncio.Future[McpHub] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    owner = asyncio.create_task(_hold(servers, needed_servers(granted), cwd, egress, launch, ready, stop))
    try:
        hub = await ready
    except BaseException:
        stop.set()
        await asyncio.gather(owner, return_exceptions=True)
        raise
    try:
        yield hub
    finally:
        stop.set()
        await asyncio.gather(owner, return_exceptions=True)


async def _hold(
    servers: dict[str, McpServerSpec],
    wanted: dict[str, list[str]],
    cwd: Path,
    egress: Egress | None,
    launch: Launch | None,
    ready: asyncio.Future[McpHub],
    stop: asyncio.Event,
) -> None:
    failure: BaseException | None = None
    try:
        async with AsyncExitStack() as stack:
            try:
                hub = await _connect(stack, servers, wanted, cwd, egress, launch)
            except (McpUnavailable, SpecError) as exc:
                failure = exc
            else:
                ready.set_result(hub)
                await stop.wait()
    except Exception as exc:  # noqa: BLE001 - closing a stranger's server must not fail the run
        log.warning("mcp.close_failed", error=f"{type(exc).__name__}: {exc}")
        failure = failure or McpUnavailable(f"mcp_servers: the server failed: {type(exc).__name__}: {exc}")
    if not ready.done():
        ready.set_exception(failure or McpUnavailable("mcp_servers: the servers stopped before the run started"))


async def _connect(
    stack: AsyncExitStack,
    servers: dict[str, McpServerSpec],
    wanted: dict[str, list[str]],
    cwd: Path,
    egress: Egress | None,
    launch: Launch | None,
) -> McpHub:
    from langchain_mcp_adapters.sessions import create_session
    from langchain_mcp_adapters.tools import load_mcp_tools

    hub = McpHub()
    for name, tools in wanted.items():
        server = servers[name]
        hub.timeouts[name] = server.timeout_s
        try:
            connection: Any = _connection(name, server, cwd, egress, launch)  # a langchain-mcp-adapters Connection
            session = await stack.enter_async_context(create_session(connection))
            await asyncio.wait_for(session.initialize(), server.timeout_s)
            listed = await asyncio.wait_for(
                load_mcp_tools(session, server_name=name, handle_tool_errors=False), server.timeout_s
            )
        except (OSError, TimeoutError, RuntimeError, ValueError) as exc:
            raise McpUnavailable(f"mcp_servers.{name}: could not start or reach the server: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - any failure of a stranger's server is this error
            raise McpUnavailable(f"mcp_servers.{name}: the server failed: {type(exc).__name__}: {exc}") from None
        by_name = {tool.name: tool for tool in listed}
        for wanted_tool in tools:
            if wanted_tool not in by_name:
                offered = ", ".join(sorted(map(str, by_name))[:20]) or "none"
                raise McpUnavailable(f"mcp_servers.{name}: no tool '{wanted_tool}' (the server offers: {offered})")
            made = _checked(name, by_name[wanted_tool])
            twin = next((t for t in hub.tools.values() if t.exposed == made.exposed), None)
            if twin is not None:  # `a__b` + `c` and `a` + `b__c` would reach a model as one function
                raise SpecError(f"mcp_servers: {twin.granted} and {made.granted} are both called {made.exposed}")
            hub.tools[made.granted] = made
        log.info("mcp.connected", server=name, tools=len(listed), granted=len(tools))
    return hub
