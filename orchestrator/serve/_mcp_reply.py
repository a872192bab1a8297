"""Tool results: structured content plus a short text, and errors the way the command line
reports them (one line per problem, the hint, the exit status) with isError set. One error
boundary for every tool: an error of one call is that call's result, never the server's end."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from mcp.types import CallToolResult, TextContent

from orchestrator.errors import ExitStatus, OrchestratorError, SpecError, printable
from orchestrator.log import get_logger

log = get_logger(__name__)


def reply(text: str, record: dict[str, Any], is_error: bool = False) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], structuredContent=record, isError=is_error)


def meaning(status: int) -> str:
    try:
        return ExitStatus(status).name.lower().replace("_", " ")
    except ValueError:
        return "unknown"


def error_reply(exc: OrchestratorError) -> CallToolResult:
    """An OrchestratorError as `orchestrator` prints it, naming the exit status it would exit with."""
    status = int(exc.exit_code)
    lines = [printable(line) for line in str(exc).splitlines() or [""]]
    if exc.hint:
        lines.append(f"hint: {printable(exc.hint)}")
    lines.append(f"exit status {status} ({meaning(status)})")
    record: dict[str, Any] = {
        "error": str(exc),
        "kind": type(exc).__name__,
        "hint": exc.hint,
        "exit_status": status,
    }
    if isinstance(exc, SpecError):
        record["problems"] = [
            {"file": p.file, "line": p.line, "field": p.field, "message": p.message} for p in exc.problems
        ]
    return reply("\n".join(lines), record, is_error=True)


async def guarded(call: Callable[[], Awaitable[CallToolResult]]) -> CallToolResult:
    """The error boundary of a tool call."""
    try:
        return await call()
    except OrchestratorError as exc:
        return error_reply(exc)
    except Exception as exc:  # a bug: this call fails, the server goes on (the traceback goes to the log)
        log.exception("mcp.tool_failed")
        text = f"internal error (a bug; please report it): {type(exc).__name__}: {printable(exc)}"
        return reply(text, {"error": str(exc), "kind": type(exc).__name__}, is_error=True)
