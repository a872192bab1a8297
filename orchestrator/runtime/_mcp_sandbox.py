"""A spec's stdio MCP servers in the sandbox, in pull-request mode: the same bubblewrap sandbox as
the checks (`checks.Sandbox`), in which a server reads the workspace (its working folder) but
writes only a private folder and a private /tmp, and has no network. The operator's own servers
(`trusted_mcp_servers`) run as they are."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.checks import find_sandbox, shared_paths
from orchestrator.errors import SpecError
from orchestrator.mcp_tools import Launch


@contextmanager
def sandboxed_launch(names: list[str], workspace: Path) -> Iterator[Launch | None]:
    """How the servers `names` are started (None when there is none to sandbox), for as long as
    the run lasts; their private folders are removed at the end. No sandbox here: SpecError
    (exit 2), before any server or model is started."""
    if not names:
        yield None
        return
    sandbox = find_sandbox("required", [*shared_paths(workspace), workspace])
    if sandbox.refused:
        raise SpecError(
            f"mcp_servers: pull-request mode starts a spec's stdio MCP servers ({', '.join(names)}) only in "
            f"the sandbox, and there is none: {sandbox.reason}",
            hint="install bubblewrap, or list the server's command in the operator policy's trusted_mcp_servers",
        )
    root = Path(tempfile.mkdtemp(prefix="orchestrator-mcp-"))

    def launch(name: str, command: list[str]) -> list[str]:
        if name not in names:
            return command
        private = root / name
        (private / "home").mkdir(parents=True, exist_ok=True)
        (private / "tmp").mkdir(exist_ok=True)
        # the sandbox starts in its writable folder; the server's working folder is the workspace
        inside = ["env", "-C", str(workspace), "--", *command]
        return sandbox.command(inside, private / "home", private / "tmp")

    try:
        yield launch
    finally:
        shutil.rmtree(root, ignore_errors=True)
