"""`orchestrator studio`: the graphs of `langgraph.json` on LangGraph Server (`langgraph dev`, in
memory) for LangGraph Studio, bound to this machine, with analytics, version checks and LangSmith
tracing off. The server's code is the optional extra `langgraph`; nothing of it is imported here.

LangGraph Studio itself is a web page hosted by LangChain (smith.langchain.com): it needs the
internet and a LangSmith login, and from the browser it talks to this server. The command says
so before it starts, and refuses a port something already listens on (`langgraph dev` would
quietly serve elsewhere)."""

from __future__ import annotations

import importlib.util
import os
import socket
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


def notice(host: str, port: int) -> str:
    """What Studio is and needs, said before the server starts."""
    shown = f"[{host}]" if ":" in host else host
    return (
        f"serving the graphs on http://{shown}:{port} (LangGraph Server, in memory: the API, with docs at /docs)\n"
        "LangGraph Studio is a web page hosted by LangChain (https://smith.langchain.com): it needs the internet "
        "and a LangSmith login, and your browser connects it to this server. Offline, use the API instead "
        f"(langgraph-sdk: get_client(url='http://{shown}:{port}')) or `orchestrator run`."
    )


def port_taken(host: str, port: int) -> bool:
    """Something already listens on host:port (a socket left in TIME_WAIT does not count)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError:
        return False  # an address that does not resolve: the server says so itself
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            return True
    return False


def free_port_near(host: str, port: int) -> int | None:
    return next((p for p in range(port + 1, min(port + 50, 65536)) if not port_taken(host, p)), None)


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

    Runs `langgraph dev --no-browser` in memory; use the API (langgraph-sdk) at http://HOST:PORT,
    or open the Studio URL it prints: Studio is a page hosted by LangChain that needs the internet
    and a LangSmith login. A port already taken is refused. Every run is prepared like
    `orchestrator run`: policy, budgets and egress are enforced in the nodes."""
    missing = [name for name in ("langgraph_cli", "langgraph_api") if importlib.util.find_spec(name) is None]
    if missing:
        fail(f"LangGraph Server is not installed ({', '.join(missing)} missing)", f"install it: {EXTRA}")
    if not config.is_file():
        fail(f"no LangGraph config at {config}", "run from the repository root, or pass --config langgraph.json")
    if port_taken(host, port):
        free = free_port_near(host, port)
        hint = f"stop what listens there, or pass another port (--port {free} is free)" if free else "pass --port"
        fail(f"port {port} on {host} is taken: something already listens there", hint)
    click.echo(notice(host, port), err=True)
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
