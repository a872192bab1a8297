"""Where a run keeps what it keeps: its checkpointer (SQLite or PostgreSQL, memory, or none), the
recorder of `--record` / `--replay`, the result cache, the store of finished nodes, and the data
folder they live in (outside a checkout the run does not own)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from orchestrator.errors import SpecError
from orchestrator.log import get_logger
from orchestrator.runtime import checkpoints, ledger
from orchestrator.runtime._finished import FinishedStore, KeptInMemory
from orchestrator.workflow import Workflow

log = get_logger(__name__)

DEFAULT = "default"  # RunOptions.checkpoint: a SQLite file in the workspace's data folder
MEMORY = "memory"  # in memory: resumable within the process only (budget pauses still work)
OFF = "off"  # no checkpointer at all (benchmarks): no resume, no budget pause


def checkpoint_location(option: str, workflow: Workflow) -> str | None:
    """Where the run's checkpoints go: a path or URL, None for memory, "off" for none."""
    if option == DEFAULT:
        return str(data_dir(workflow) / "checkpoints.sqlite")
    if option == MEMORY:
        return None
    return option


@asynccontextmanager
async def open_saver(location: str | None) -> AsyncIterator[Any]:
    if location == OFF:
        yield None
        return
    if location is None:
        yield checkpoints.memory_saver()
        return
    async with checkpoints.open_checkpointer(location) as saver:
        yield saver


def recorder_for(options: Any, workflow: Workflow) -> Any:
    """The recorder of `--record`/`--replay`: a recording replays only for the spec it was made of."""
    if options.record is not None and options.replay is not None:
        raise SpecError("--record and --replay cannot be used together")
    if options.record is None and options.replay is None:
        return None
    import hashlib

    from orchestrator.models.recording import Recorder, RecordingMismatch

    digest = hashlib.sha256(workflow.loaded.path.read_bytes()).hexdigest()
    try:
        if options.record is not None:
            return Recorder(options.record, "record", digest)
        return Recorder(options.replay or Path(), "replay", digest)
    except (FileNotFoundError, RecordingMismatch) as exc:
        raise SpecError(str(exc)) from None


def cache_for(options: Any, workflow: Workflow, recorder: Any) -> Any:
    if options.cache is False or (recorder is not None and recorder.mode == "replay"):
        return None
    from orchestrator.models.cache import ResponseCache

    key = ledger.machine_key()
    if isinstance(options.cache, Path):
        return ResponseCache(options.cache, key)
    return ResponseCache(data_dir(workflow) / "cache.sqlite", key)


def finished_store(workflow: Workflow, run_id: str, location: str | None) -> FinishedStore | KeptInMemory | None:
    """Where each node's update is kept as it finishes: beside the run's other data when it is
    checkpointed durably, in a dict when in memory, nowhere without a checkpointer."""
    if location == OFF:
        return None
    if location is None:
        return KeptInMemory()
    return FinishedStore(
        checkpoints.finished_path(location, run_id) or data_dir(workflow) / "finished" / f"{run_id}.sqlite"
    )


def store_carries(saver: Any, finished: FinishedStore | KeptInMemory | None, location: str | None) -> None:
    """The checkpointer leaves each node's update to the finished-node store, where the store sits
    beside the checkpoint (memory, or a SQLite file's folder). A Postgres checkpoint keeps its own
    copy: a resume on another machine has the database, not this machine's store."""
    if saver is not None and finished is not None and (location is None or checkpoints.finished_path(location, "")):
        saver.carried = finished


def data_dir(workflow: Workflow) -> Path:
    folder, warning = checkpoints.run_data_dir(workflow.loaded.workspace, workflow.operator.untrusted)
    if warning and warning not in workflow.warnings:
        workflow.warnings.append(warning)
        log.warning("run.data_dir", warning=warning)
    return folder


def backend_name(location: str | None) -> str:
    if location is None:
        return "memory"
    if location == OFF:
        return "off"
    return "postgres" if checkpoints.is_postgres(location) else "sqlite"
