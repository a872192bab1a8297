"""`orchestrator studio`: the graphs of `langgraph.json` on LangGraph Server (`langgraph dev`, in
memory) for LangGraph Studio, bound to this machine, with analytics, version checks and LangSmith
tracing off. The server's code is the optional extra `langgraph`; nothing of it is imported here."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import click

from orchestrator.cli._common import fail
from orchestrator.errors import ExitStatus

EXTRA = "pip install 'sovereign-orchestrator[langgraph]'"

# Nothing leaves the machine unless asked for: the CLI's usage analytics, the server's check for
# a newer version on PyPI, LangSmith traces (langgraph.json may still ask for them; each run then
# checks the policy for the endpoint).
QUIET_ENV = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
}


def server_command(host: str, port: int, config: Path, reload: bool = False) -> list[str]:
    """`langgraph dev` for the orchestrator's graphs: no browser, blocking I/O allowed (the nodes
    read files, SQLite and pipes), no file watcher unless asked for (specs are read per run)."""
    argv = [sys.executable, "-m", "langgraph_cli", "dev", "--host", host, "--port", str(port)]
    argv += ["--config", str(config), "--no-browser", "--allow-blocking"]
    return argv if reload else [*argv, "--no-reload"]


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=2024, show_default=True, help="the server's port")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="the address to bind; any other than loopback lets others run the graphs on your files",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("langgraph.json"),
    show_default=True,
    help="the LangGraph config naming the graphs",
)
@click.option("--reload", is_flag=True, help="restart the server when Python files change")
def studio(port: int, host: str, config: Path, reload: bool) -> None:
    """Serve the shipped graphs (or those of --config) on LangGraph Server for LangGraph Studio.

    Runs `langgraph dev --no-browser` in memory; open the Studio URL it prints, or use the API
    (langgraph-sdk) at http://HOST:PORT. Every run is prepared like `orchestrator run`: policy,
    budgets and egress are enforced in the nodes."""
    missing = [name for name in ("langgraph_cli", "langgraph_api") if importlib.util.find_spec(name) is None]
    if missing:
        fail(f"LangGraph Server is not installed ({', '.join(missing)} missing)", f"install it: {EXTRA}")
    if not config.is_file():
        fail(f"no LangGraph config at {config}", "run from the repository root, or pass --config langgraph.json")
    argv = server_command(host, port, config, reload)
    env = {**os.environ, **QUIET_ENV}
    if os.name == "posix":  # the server takes this process's place: signals reach it directly
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, argv, env)
    try:
        code = subprocess.call(argv, env=env)
    except KeyboardInterrupt:
        code = int(ExitStatus.INTERRUPTED)
    sys.exit(code)


COMMANDS: list[click.Command] = [studio]
