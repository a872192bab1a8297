"""Running a prepared workflow and everything a run leaves behind: checkpoints (durable by
default), the run ledger (`orchestrator runs`), resume, and progress display."""

from orchestrator.runtime._run import (
    DEFAULT,
    MEMORY,
    OFF,
    RunOptions,
    RunOutcome,
    new_run_id,
    prepare_resume,
    resume_workflow,
    run_workflow,
    run_workflow_async,
)

__all__ = [
    "DEFAULT",
    "MEMORY",
    "OFF",
    "RunOptions",
    "RunOutcome",
    "new_run_id",
    "prepare_resume",
    "resume_workflow",
    "run_workflow",
    "run_workflow_async",
]
