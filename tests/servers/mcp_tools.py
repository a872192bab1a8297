"""An MCP server for the tests of MCP tools granted to roles (the official SDK's FastMCP): over
stdio by default, over streamable HTTP on loopback with `--http PORT`. Every call is appended to
the `--log` file as a JSON line, so tests assert what the server itself received.

    python tests/servers/mcp_tools.py --log calls.jsonl [--http PORT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mcp.server.fastmcp import FastMCP

GLOSSARY = {"store": "a keyed collection of items", "sku": "a stock keeping unit: one product's code"}


def build(log: Path, host: str = "127.0.0.1", port: int = 8000) -> FastMCP:
    server = FastMCP("test-tools", host=host, port=port)

    def logged(tool: str, **args: object) -> None:
        with log.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"tool": tool, "args": args}) + "\n")

    @server.tool()
    def lookup(term: str) -> str:
        """Look a term of the project's glossary up."""
        logged("lookup", term=term)
        return f"{term}: {GLOSSARY.get(term.lower(), 'not in the glossary')}"

    @server.tool()
    def shout(text: str, times: int = 1) -> str:
        """Repeat a text in capitals."""
        logged("shout", text=text, times=times)
        return " ".join([text.upper()] * max(1, min(times, 5)))

    @server.tool()
    def broken() -> str:
        """Always fails."""
        logged("broken")
        raise ValueError("this tool always fails")

    @server.tool()
    def huge() -> str:
        """Answers far more than a model may be shown."""
        logged("huge")
        return "x" * 500_000

    @server.tool()
    def sleepy(seconds: float) -> str:
        """Sleeps, then answers."""
        logged("sleepy", seconds=seconds)
        time.sleep(min(seconds, 30))
        return "awake"

    @server.tool(name="dot.ted")
    def dotted() -> str:
        """A name with a dot (a model sees it with an underscore)."""
        return "dotted"

    @server.tool(name="dot_ted")
    def underscored() -> str:
        """The name the dotted one becomes for a model."""
        return "underscored"

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--http", type=int)
    args = parser.parse_args()
    server = build(args.log, port=args.http or 8000)
    server.run(transport="streamable-http" if args.http else "stdio")


if __name__ == "__main__":
    main()
