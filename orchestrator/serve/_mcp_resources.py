"""Resources: the built-in graphs (`graph://NAME`, the YAML text `orchestrator graph show NAME`
draws) and the outputs of finished runs (`run://RUN_ID/report.md`, `result.json`, `report.html`
when the run wrote it), found through the run ledger that `orchestrator runs` lists. A run id is
looked up in the ledger, never joined to a path. The ledger (and with it the run machinery) is
imported at the first read, not when the server starts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp.server.fastmcp.exceptions import ResourceError
from mcp.server.fastmcp.resources import FunctionResource
from mcp.types import Resource

from orchestrator.errors import printable
from orchestrator.spec import read_data
from orchestrator.spec.graphfile import builtin_graph_names

if TYPE_CHECKING:
    from orchestrator.runtime.ledger import RunEntry

RUN_FILES = {"report.md": "text/markdown", "result.json": "application/json", "report.html": "text/html"}
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")
MAX_RESOURCE_BYTES = 50_000_000
LISTED_RUNS = 50


def graph_resources() -> list[FunctionResource]:
    return [_graph(name) for name in builtin_graph_names()]


def _graph(name: str) -> FunctionResource:
    def text() -> str:
        return read_data("graphs", f"{name}.yaml")

    return FunctionResource(
        uri=f"graph://{name}",  # type: ignore[arg-type]  # pydantic parses the URL
        name=name,
        title=f"graph {name}",
        description=f"the built-in graph {name} (YAML)",
        mime_type="application/yaml",
        fn=text,
    )


def run_file(run_id: str, name: str) -> Path:
    """A finished run's output file, as the ledger knows it (ResourceError when there is none)."""
    from orchestrator.runtime import ledger

    if not RUN_ID.match(run_id):
        raise ResourceError(f"'{printable(run_id[:130])}' is not a run id (see `orchestrator runs`)")
    stored = ledger.stored_result(run_id)
    if stored is None:
        raise ResourceError(f"no finished run {run_id} on this machine (see `orchestrator runs`)")
    path = Path(stored.output_dir or "") / name if stored.output_dir else None
    if name == "result.json" and (path is None or not path.is_file()):
        path = Path(stored.path)  # the result kept in the run data folder, whatever formats were written
    if path is None or not path.is_file():
        raise ResourceError(f"run {run_id} wrote no {name} (its formats: {', '.join(stored.formats) or 'none'})")
    if path.stat().st_size > MAX_RESOURCE_BYTES:
        raise ResourceError(f"{name} of run {run_id} is larger than {MAX_RESOURCE_BYTES} bytes: open {path}")
    return path


def read_run_file(run_id: str, name: str) -> str:
    try:
        return run_file(run_id, name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResourceError(f"{name} of run {run_id} cannot be read: {exc}") from None


def run_resources(limit: int = LISTED_RUNS) -> list[Resource]:
    """The outputs of the newest finished runs, as concrete resources."""
    from orchestrator.runtime import ledger

    found: list[Resource] = []
    for entry in ledger.list_runs(limit):
        stored = ledger.stored_result(entry.run_id)
        if stored is None or not RUN_ID.match(entry.run_id):
            continue
        for name, mime in RUN_FILES.items():
            folder = Path(stored.output_dir) if stored.output_dir else None
            if (folder is not None and (folder / name).is_file()) or name == "result.json":
                found.append(_listed(entry, name, mime))
    return found


def _listed(entry: RunEntry, name: str, mime: str) -> Resource:
    meta: dict[str, Any] = {"status": entry.status, "exit_status": entry.exit_code, "started_at": entry.started_at}
    return Resource(
        uri=f"run://{entry.run_id}/{name}",  # type: ignore[arg-type]  # pydantic parses the URL
        name=f"{entry.run_id}/{name}",
        title=f"{printable(entry.spec_name)} {entry.run_id}: {name}",
        description=f"{name} of run {entry.run_id} ({printable(entry.spec_name)}, {entry.status})",
        mimeType=mime,
        _meta=meta,
    )
