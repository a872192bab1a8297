"""`orchestrator mcp`: serve the tools to MCP clients (Claude Code, Cursor, Goose, ...) over stdio,
or streamable HTTP on loopback. The MCP SDK is imported only when the command runs."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli._common import echo, log_options, operator, setup_logging, trust_options


@click.command("mcp")
@click.option(
    "--http",
    "port",
    type=click.IntRange(1, 65535),
    help="serve streamable HTTP on this port (at /mcp) instead of stdio",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="with --http: the loopback address to listen on")
@trust_options
@log_options
def mcp(
    port: int | None,
    host: str,
    policy: Path | None,
    trusted: bool | None,
    workspace: Path | None,
    log_format: str,
    verbose: int,
) -> None:
    """Serve run_workflow, validate_spec, list_models and verify_patch over the Model Context
    Protocol, with the built-in graphs and finished runs as resources.

    Every spec a client gives is held to these options as `orchestrator run` holds its spec:
    the operator's --policy, --trusted/--untrusted, --workspace. Spec paths and inline files are
    confined to the workspace (--workspace, else the working directory)."""
    from orchestrator.serve.mcp_server import McpSettings, serve

    setup_logging(log_format, verbose)
    who = operator(policy, trusted, workspace)
    root = who.workspace or Path.cwd().resolve()
    serve(McpSettings(operator=who, root=root, port=port, host=host), announce=lambda text: echo(text, err=True))


COMMANDS: list[click.Command] = [mcp]
