"""Runs started with `start_workflow`: each a job of the server (not of the call or the client's
session), that `get_run` reports on and `cancel_run` stops. A job waits for a run slot (queued),
runs (running), then ends: finished (the run's own status: ok, quality_gate, ...), interrupted
(stopped, checkpointed, resumable), error, or cancelled (stopped before it started). A run this
server did not start (another process's, or one from before the server started) is reported
from the run ledger."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from orchestrator.errors import OrchestratorError, printable
from orchestrator.serve._mcp_records import result_record, run_text
from orchestrator.serve._mcp_run import RunProgress, RunThread

if TYPE_CHECKING:
    from orchestrator.runtime import RunOutcome
    from orchestrator.workflow import Workflow

KEPT_JOBS = 100  # jobs that have ended, remembered for get_run (older ones: the ledger's word)
ENDED = ("finished", "interrupted", "error", "cancelled")


@dataclass
class Job:
    worker: RunThread
    workflow: Workflow
    progress: RunProgress
    state: str = "queued"  # queued | running | finished | interrupted | error | cancelled
    outcome: RunOutcome | None = None
    error: OrchestratorError | None = None
    ended: anyio.Event = field(default_factory=anyio.Event)  # made on the server's loop
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)  # the job's task, while queued
    created: float = field(default_factory=time.monotonic)

    @property
    def run_id(self) -> str:
        return self.worker.run_id

    @property
    def over(self) -> bool:
        return self.state in ENDED


def job_record(job: Job) -> dict[str, Any]:
    """A job as get_run answers it: where it is, and once it has ended, its result."""
    workflow = job.workflow
    record: dict[str, Any] = {
        "run_id": job.run_id,
        "state": job.state,
        "status": job.state,
        "done": job.over,
        "spec": workflow.loaded.spec.name,
        "graph": workflow.graph_name,
        "output_dir": str(job.worker.output_dir.resolve()),
        "progress": job.progress.snapshot(),
    }
    if job.outcome is not None:
        outcome = job.outcome
        record |= result_record(outcome.result, int(outcome.exit_code), outcome.written, job.worker.output_dir)
        record["status"] = "interrupted" if job.state == "interrupted" else outcome.result.status
    elif job.state == "queued":
        record["exit_status"] = None
    if job.error is not None:
        record["error"] = str(job.error)
        record["hint"] = job.error.hint
        record["exit_status"] = int(job.error.exit_code)
    if job.state == "interrupted":
        record["resume"] = f"orchestrator resume {job.run_id}"
    record["warnings"] = list(dict.fromkeys([*workflow.warnings, *record.get("warnings", [])]))
    return record


def ledger_record(run_id: str) -> dict[str, Any] | None:
    """A run this server does not hold, as the ledger knows it (None: no such run here)."""
    from orchestrator.outputs import RunResult
    from orchestrator.runtime import ledger

    entry = ledger.get_run(run_id)
    if entry is None:
        return None
    record: dict[str, Any] = {
        "run_id": run_id,
        "state": "running" if entry.status == "running" else "ended",
        "status": entry.status,
        "done": entry.status != "running",
        "spec": entry.spec_name,
        "exit_status": entry.exit_code,
        "started_at": entry.started_at,
        "finished_at": entry.finished_at,
        "note": "not started by this server: its status is the run ledger's",
    }
    stored = ledger.stored_result(run_id)
    if stored is not None and entry.status != "running":
        try:
            result = RunResult.model_validate_json(Path(stored.path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return record
        folder = Path(stored.output_dir) if stored.output_dir else Path(stored.path).parent
        written = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
        exit_status = entry.exit_code if entry.exit_code is not None else result.exit_code
        record |= result_record(result, exit_status, written, folder)
        record["status"] = entry.status
    if entry.status == "interrupted":
        record["resume"] = f"orchestrator resume {run_id}"
    return record


def status_text(record: dict[str, Any]) -> str:
    """The few lines a person reads: the result once the run has ended, else where it is."""
    run_id, status = record["run_id"], record["status"]
    if record.get("summary") is not None and "subtasks" in record:
        lines = run_text(record).splitlines()
    elif not record["done"]:
        progress = record.get("progress") or {}
        lines = [f"run {run_id}: {status}"]
        if progress:
            finished, known = progress["calls_finished"], progress["calls_known"]
            lines[0] += f", {finished} of {known} calls finished so far ({progress['elapsed_s']:.0f}s)"
            lines += [f"  now: {c['call']} on {c['model']} ({c['seconds']:.0f}s)" for c in progress["running"]]
        lines.append("ask get_run again (wait_s waits for the end, up to 50 s a call); cancel_run stops it")
    else:
        exit_status = record.get("exit_status")
        lines = [f"run {run_id}: {status}" + (f" (exit status {exit_status})" if exit_status is not None else "")]
    if record.get("error"):
        lines.append(f"error: {printable(record['error'])}")
    if record.get("resume"):
        lines.append(f"resume it with `{record['resume']}` (what finished is checkpointed)")
    return "\n".join(printable(line) for line in lines)


def prune(jobs: dict[str, Job], keep: int = KEPT_JOBS) -> None:
    """Forget the oldest jobs that have ended beyond `keep` (the ledger still knows them)."""
    ended = sorted((job for job in jobs.values() if job.over), key=lambda job: job.created)
    for job in ended[: max(0, len(ended) - keep)]:
        jobs.pop(job.run_id, None)
