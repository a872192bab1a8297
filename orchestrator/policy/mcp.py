"""MCP servers a spec declares, as policy: a server's URL is egress (a role that may hold
confidential data reaches only the hosts its rules allow, exactly as a model's host); and in
pull-request mode a spec starts no server process and reaches no host the operator has not admitted
(`allow_mcp_servers` command patterns, `trusted_hosts`), and the stdio servers it starts run in the
sandbox, but for those the operator lists as its own (`trusted_mcp_servers`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from orchestrator.catalog.provider import is_loopback
from orchestrator.policy._rules import CLASSES, host_refusal, rules_for
from orchestrator.policy.commands import check_command, command_pattern, command_refusal
from orchestrator.policy.trust import introduced_refusal
from orchestrator.spec import LoadedSpec, McpServerSpec, Role, mcp_server_of
from orchestrator.spec.operator import Operator, OperatorPolicy


def server_host(server: McpServerSpec) -> str | None:
    """The host (lower case) an HTTP server is reached at; None for a local stdio server."""
    return (urlsplit(server.url).hostname or "").lower() if server.url else None


def granted_servers(role: Role) -> list[str]:
    return list(dict.fromkeys(s for s in map(mcp_server_of, role.tools) if s is not None))


def sandboxed_servers(loaded: LoadedSpec, operator: Operator) -> list[str]:
    """Pull-request mode: the spec's stdio servers that run in the sandbox, which is all of them but
    those whose command the operator's `trusted_mcp_servers` patterns admit (its own)."""
    if not operator.untrusted:
        return []
    own = [command_pattern(p) for p in operator.policy.trusted_mcp_servers]
    return [
        name
        for name, server in loaded.spec.mcp_servers.items()
        if server.command is not None and not any(p.match(check_command(server.command)) for p in own)
    ]


def mcp_refusals(loaded: LoadedSpec, operator: Operator) -> list[str]:
    """Pull-request mode (or the operator's allow_mcp_servers): servers the operator did not admit."""
    found = []
    for name, server in loaded.spec.mcp_servers.items():
        if server.command is not None:
            loc = ("mcp_servers", name, "command")
            why = command_refusal(loaded, operator, loc, server.command, "allow_mcp_servers")
            found += [why] if why else []
        host = server_host(server)
        if host and operator.untrusted and host not in operator.trusted_hosts:
            where = loaded.problem(("mcp_servers", name, "url"), "").render().rstrip(": ")
            found.append(introduced_refusal(where, operator.pull_request_mode, host))
    return found


def mcp_egress_refusals(
    loaded: LoadedSpec, roles: dict[str, Role], file_classes: dict[str, str], base: str, floor: OperatorPolicy | None
) -> list[str]:
    """A role granted an HTTP server's tools may send it anything it has seen: it is held to the
    highest class of the workspace (what its tools can reach), and the host to that class's rules."""
    top = max([base, *file_classes.values()], key=CLASSES.index)
    found = []
    for role_name, role in roles.items():
        for name in granted_servers(role):
            server = loaded.spec.mcp_servers.get(name)
            host = server_host(server) if server is not None else None
            if not host:
                continue
            rules = rules_for(loaded.spec.policy, role_name, top, floor)
            why = host_refusal(f"MCP server {name}", host, is_loopback(host), rules)
            if why:
                where = loaded.problem(("mcp_servers", name, "url"), "").render().rstrip(": ")
                found.append(f"{where}: role '{role_name}' may see {top} data and is granted {name}'s tools: {why}")
    return found
