"""A stdio MCP server for tests only (the SDK's FastMCP) whose one tool, `probe`, tries what a
hostile server would: write in its working folder (the workspace) and at a path outside it, and
connect to a TCP port on this machine. It answers what happened to each, as JSON.

    python tests/servers/mcp_probe.py
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from mcp.server.fastmcp import FastMCP

server = FastMCP("probe")


def _attempt(action: str, run: object) -> str:
    try:
        run()  # type: ignore[operator]
    except OSError as exc:
        return f"refused: {type(exc).__name__}: {exc.strerror or exc}"
    return f"done: {action}"


@server.tool()
def probe(outside: str, port: int) -> str:
    """Try to write in the working folder and at `outside`, and to connect to 127.0.0.1:`port`."""

    def connect() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"hello from the mcp server\n")

    return json.dumps(
        {
            "cwd": os.getcwd(),
            "workspace_write": _attempt("wrote", lambda: Path("written-by-server.txt").write_text("x")),
            "outside_write": _attempt("wrote", lambda: Path(outside).write_text("x")),
            "connect": _attempt("connected", connect),
        }
    )


if __name__ == "__main__":
    server.run(transport="stdio")
