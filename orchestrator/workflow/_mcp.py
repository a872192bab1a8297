"""What `validate` shows of the MCP servers a spec declares, and the graph file's grants checked
against them (every granted tool names a declared server). What a server may reach, start or be
sent is policy: `orchestrator.policy.mcp`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrator.errors import Problem
from orchestrator.policy.mcp import server_host
from orchestrator.spec import LoadedSpec, Role, mcp_server_of, unknown_server
from orchestrator.spec.graphfile import GraphDefinition


def mcp_plan(loaded: LoadedSpec, roles: dict[str, Role], *, sandboxed: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """What `validate` shows of each server: how it is reached and which roles have which tools."""
    plan: dict[str, dict[str, Any]] = {}
    for name, server in loaded.spec.mcp_servers.items():
        granted = {r: [t for t in role.tools if mcp_server_of(t) == name] for r, role in roles.items()}
        local = "this machine (a local process" + (", in the sandbox)" if name in sandboxed else ")")
        plan[name] = {
            "transport": "stdio" if server.command else "streamable_http",
            "host": server_host(server) or local,
            "roles": {r: tools for r, tools in granted.items() if tools},
        }
    return plan


def graph_tool_problems(loaded: LoadedSpec, graph: GraphDefinition | None) -> list[Problem]:
    """A graph file's roles granting tools of servers the spec does not declare."""
    if graph is None:
        return []
    declared = list(loaded.spec.mcp_servers)
    problems = []
    for name, role in graph.graph.roles.items():
        for index, tool in enumerate(role.tools or []):
            why = unknown_server(tool, declared)
            if why:
                problems.append(graph.document.problem(("roles", name, "tools", index), why))
    return problems
