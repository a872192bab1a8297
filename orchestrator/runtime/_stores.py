"""Where a run keeps what it keeps: its checkpointer (SQLite or PostgreSQL, memory, or none), the
recorder of `--record` / `--replay`, the result cache, the store of finished nodes, its outputs,
its stored result, and the data folder they live in (outside a checkout the run does not own).

`run_paths` derives every one of these locations once per run (a RunPaths record), before the
run opens anything; whatever opens, writes or lists them is handed that record, never the
workflow to derive them again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import SpecError
from orchestrator.log import get_logger
from orchestrator.runtime import checkpoints, ledger
from orchestrator.runtime._finished import FinishedStore, KeptInMemory
from orchestrator.runtime._report import output_target
from orchestrator.workflow import Workflow

if TYPE_CHECKING:
    from orchestrator.runtime._run import RunOptions

log = get_logger(__name__)

DEFAULT = "default"  # RunOptions.checkpoint: a SQLite file in the workspace's data folder
MEMORY = "memory"  # in memory: resumable within the process only (budget pauses still work)
OFF = "off"  # no checkpointer at all (benchmarks): no resume, no budget pause


@dataclass(frozen=True)
class RunPaths:
    """Every location of one run, derived once (`run_paths`) from its workflow, options and run id."""

    run_id: str
    spec: Path  # the spec file: the ledger's entry, and what a recording is bound to
    checkpoint: str | None  # a SQLite file or a Postgres URL; None: in memory; OFF: none
    finished: Path | None  # the finished-node store's file (None: kept in memory, or not kept)
    carried: bool  # the finished-node store sits beside the checkpoint (memory or a SQLite file's folder)
    cache: Path | None  # the result cache's file (None: no cache)
    recording: Path | None  # the folder of --record or --replay
    replaying: bool  # --replay: every call is answered from `recording`
    output_dir: Path
    formats: tuple[str, ...]
    results: Path | None  # where a listed run's result.json is kept (None: the run is not listed)
    data: Path | None  # the run data folder (None: the run keeps nothing in it)

    @property
    def listed(self) -> bool:
        """Whether the run is in the run ledger (`orchestrator runs`): its checkpoint is durable."""
        return self.results is not None


def run_paths(workflow: Workflow, options: RunOptions, run_id: str) -> RunPaths:
    """Where the run `run_id` keeps what it keeps; SpecError for --record with --replay. The data
    folder is found (and made) only when the run keeps something in it."""
    if options.record is not None and options.replay is not None:
        raise SpecError("--record and --replay cannot be used together")
    option = options.checkpoint
    postgres = option not in (DEFAULT, MEMORY, OFF) and checkpoints.is_postgres(option)
    listed = options.ledger and option not in (MEMORY, OFF)
    default_cache = options.cache is True and options.replay is None
    data = _data_folder(workflow) if option == DEFAULT or default_cache or postgres or listed else None
    checkpoint: str | None = None if option == MEMORY else option
    if option == DEFAULT and data is not None:
        checkpoint = str(data / "checkpoints.sqlite")
    finished: Path | None = None
    if checkpoint is not None and checkpoint != OFF:
        # beside a SQLite checkpoint; for a Postgres one, in this machine's data folder
        finished = checkpoints.finished_path(checkpoint, run_id)
        if finished is None and data is not None:
            finished = data / "finished" / f"{run_id}.sqlite"
    cache = options.cache if isinstance(options.cache, Path) and options.replay is None else None
    if default_cache and data is not None:
        cache = data / "cache.sqlite"
    output_dir, formats = output_target(workflow, options)
    return RunPaths(
        run_id=run_id,
        spec=workflow.loaded.path,
        checkpoint=checkpoint,
        finished=finished,
        carried=checkpoint is None or (checkpoint != OFF and not postgres),
        cache=cache,
        recording=options.record if options.record is not None else options.replay,
        replaying=options.replay is not None,
        output_dir=output_dir,
        formats=tuple(formats),
        results=data / "results" / f"{run_id}.json" if listed and data is not None else None,
        data=data,
    )


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


def recorder_for(paths: RunPaths) -> Any:
    """The recorder of `--record`/`--replay`: a recording replays only for the spec it was made of."""
    if paths.recording is None:
        return None
    import hashlib

    from orchestrator.models.recording import Recorder, RecordingMismatch

    digest = hashlib.sha256(paths.spec.read_bytes()).hexdigest()
    try:
        return Recorder(paths.recording, "replay" if paths.replaying else "record", digest)
    except (FileNotFoundError, RecordingMismatch) as exc:
        raise SpecError(str(exc)) from None


def cache_for(paths: RunPaths) -> Any:
    if paths.cache is None:
        return None
    from orchestrator.models.cache import ResponseCache

    return ResponseCache(paths.cache, ledger.machine_key())


def finished_store(paths: RunPaths) -> FinishedStore | KeptInMemory | None:
    """Where each node's update is kept as it finishes: beside the run's other data when it is
    checkpointed durably, in a dict when in memory, nowhere without a checkpointer."""
    if paths.checkpoint is None:
        return KeptInMemory()
    if paths.finished is None:
        return None
    return FinishedStore(paths.finished)


def store_carries(saver: Any, finished: FinishedStore | KeptInMemory | None, paths: RunPaths) -> None:
    """The checkpointer leaves each node's update to the finished-node store, where the store sits
    beside the checkpoint (memory, or a SQLite file's folder). A Postgres checkpoint keeps its own
    copy: a resume on another machine has the database, not this machine's store."""
    if saver is not None and finished is not None and paths.carried:
        saver.carried = finished


def _data_folder(workflow: Workflow) -> Path:
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
