"""Running a prepared workflow and everything a run leaves behind: checkpoints (durable by
default), the run ledger (`orchestrator runs`), resume, stored results (`orchestrator report`),
OpenTelemetry export (`--otel`) and progress display."""

from orchestrator.runtime._report import rebuild_outputs
from orchestrator.runtime._run import (
    RunOptions,
    RunOutcome,
    new_run_id,
    prepare_resume,
    resume_workflow,
    run_workflow,
    run_workflow_async,
)
from orchestrator.runtime._stores import DEFAULT, MEMORY, OFF
from orchestrator.runtime.sweep import run_sweep

__all__ = [
    "DEFAULT",
    "MEMORY",
    "OFF",
    "RunOptions",
    "RunOutcome",
    "new_run_id",
    "prepare_resume",
    "rebuild_outputs",
    "resume_workflow",
    "run_sweep",
    "run_workflow",
    "run_workflow_async",
]
