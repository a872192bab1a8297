"""Running a prepared workflow, and the run's lifecycle: its durable checkpoint (by default under
the workspace's data folder), the result cache, the recorder, the run ledger (`orchestrator
runs`), the graph stream, the exit status and the outputs. A run started from Python is
checkpointed, listed and resumable exactly like a CLI run. Library code: it returns a RunOutcome
and raises Interrupted on a signal; it never exits."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from orchestrator.checks import VerificationReport
from orchestrator.engine.context import Progress, RunContext, SilentProgress
from orchestrator.errors import ExitStatus, Interrupted, NoCheckpoint, OrchestratorError, StateError
from orchestrator.log import get_logger
from orchestrator.outputs import RunResult, write_outputs
from orchestrator.outputs.result import CheckpointReport, EgressReport
from orchestrator.policy import redact_tree
from orchestrator.runtime import checkpoints, ledger
from orchestrator.runtime._context import Tracker, initial_state, mcp_tools
from orchestrator.runtime._report import check_formats, store_result
from orchestrator.runtime._result import build_result
from orchestrator.runtime._setup import compile_run_graph, set_up_run, telemetry
from orchestrator.runtime._shape import graph_shape
from orchestrator.runtime._signature import signature
from orchestrator.runtime._stores import (
    DEFAULT,
    OFF,
    RunPaths,
    backend_name,
    open_saver,
    recorder_for,
    run_paths,
    store_carries,
)
from orchestrator.runtime.otel import prepare_export
from orchestrator.runtime.verify import finish_verification
from orchestrator.spec import load_spec
from orchestrator.spec.operator import Operator
from orchestrator.workflow import Workflow, prepare_workflow

log = get_logger(__name__)
# what writing the run's own state raises (a full disk, a read-only folder): never a model's error
STATE_ERRORS = (OSError, sqlite3.Error)


@dataclass
class RunOptions:
    output_dir: Path | None = None  # None: the spec's output.dir, relative to the spec
    formats: list[str] | None = None
    write: bool = True
    progress: Progress = field(default_factory=SilentProgress)
    run_id: str | None = None
    handle_sigterm: bool = False  # SIGTERM stops the run like Ctrl-C (exit 143), outputs kept
    record: Path | None = None  # --record DIR: write every model call down
    replay: Path | None = None  # --replay DIR: answer every call from a recording
    checkpoint: str = DEFAULT  # "default" | "memory" | "off" | a SQLite path | a postgres:// URL
    cache: bool | Path = True  # the result cache: the default file, none (False), or this file
    telemetry: bool = False  # LangSmith tracing (when its environment is set); off unless asked for
    ledger: bool = True  # list a durably checkpointed run in `orchestrator runs`
    otel: bool = False  # export OpenTelemetry spans to the OTLP endpoint of OTEL_EXPORTER_OTLP_* (otel.py)
    executor: str | None = None  # --executor local|ray|ray:ADDRESS (None: the operator policy's, else local)


@dataclass
class RunOutcome:
    result: RunResult
    exit_code: ExitStatus
    written: list[Path]

    @property
    def run_id(self) -> str:
        return self.result.run_id


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


async def run_workflow_async(workflow: Workflow, options: RunOptions | None = None, resume: bool = False) -> RunOutcome:
    """Run (or, with `resume`, finish) the workflow; the run id is the checkpoint's thread."""
    options = options or RunOptions()
    check_formats(workflow, options)
    run_id = options.run_id or new_run_id()
    paths = run_paths(workflow, options, run_id)  # every location of the run, derived once
    recorder = recorder_for(paths)
    if options.telemetry:
        workflow.allow_tracing(None)  # exit 5 before anything is listed, opened or sent
    listed = paths.listed
    origin = datetime.now(UTC)  # the run's clock starts when the ledger says it did (to the millisecond)
    origin = origin.replace(microsecond=origin.microsecond // 1000 * 1000)
    if listed and not resume:
        try:
            ledger.start_run(_entry(workflow, paths, options, origin))
        except STATE_ERRORS as exc:
            raise StateError.of(exc, "list the run in the run ledger (no run was started)") from exc
    elif resume and (entry := ledger.get_run(run_id)) is not None:
        origin = datetime.fromisoformat(entry.started_at)
    try:
        outcome = await _run(workflow, options, paths, recorder, resume, origin)
    except Interrupted as stopped:
        if listed:
            ledger.finish_run(run_id, "interrupted", stopped.exit_code)
            if stopped.outcome is not None:
                store_result(workflow, paths, stopped.outcome.result)
        raise
    except StateError as failed:  # the run finished, its outputs could not be written
        raise _kept(workflow, paths, failed) from failed.__cause__
    except OrchestratorError as failed:  # e.g. the checkpoint database is down: a resume can try again
        code = failed.exit_code
        if listed and not resume:
            _quietly(lambda: ledger.finish_run(run_id, "error", code))
        raise
    except STATE_ERRORS as exc:  # a checkpoint, the cache, a recording or a scratch copy on a full disk
        raise _unwritable(exc, run_id, listed) from exc
    if listed:
        try:
            ledger.finish_run(run_id, outcome.result.status, outcome.exit_code)
            store_result(workflow, paths, outcome.result)
        except STATE_ERRORS as exc:  # the disk filled as the run ended: its last checkpoint has it all
            raise _unwritable(exc, run_id, listed) from exc
    return outcome


def _unwritable(exc: BaseException, run_id: str, listed: bool) -> StateError:
    """The error of a run whose state could not be written, saying how to finish it."""
    if listed:
        _quietly(lambda: ledger.finish_run(run_id, "error", ExitStatus.PROVIDER_FAILURE))
    again = f"then `orchestrator resume {run_id}`: what finished is checkpointed" if listed else ""
    hint = "; ".join(h for h in (StateError.hint, again) if h)
    return StateError.of(exc, f"write the state of run {run_id}", hint=hint)


def _kept(workflow: Workflow, paths: RunPaths, failed: StateError) -> StateError:
    """A run whose outputs could not be written: its status in the ledger and its result in the
    data folder (when they can be written), and the error saying how to get the outputs."""
    outcome: RunOutcome | None = failed.outcome
    if outcome is None or not paths.listed:
        return failed
    run_id = paths.run_id
    stored = _quietly(lambda: ledger.finish_run(run_id, outcome.result.status, outcome.exit_code))
    stored = stored and _quietly(lambda: store_result(workflow, paths, outcome.result))
    again = f"`orchestrator report {run_id}` writes them" if stored else f"`orchestrator resume {run_id}` writes them"
    return StateError(
        f"run {run_id} finished ({outcome.result.status}) but {failed.message}",
        hint=f"{StateError.hint}; then {again}",
        outcome=outcome,
    )


def _quietly(write: Callable[[], object]) -> bool:
    """A write of the run's bookkeeping that may fail on the same full disk: True when it did not."""
    try:
        write()
    except STATE_ERRORS as exc:
        log.warning("run.state_unwritable", error=str(exc))
        return False
    return True


def _entry(workflow: Workflow, paths: RunPaths, options: RunOptions, started: datetime) -> ledger.RunEntry:
    return ledger.RunEntry(
        run_id=paths.run_id,
        spec_name=workflow.loaded.spec.name,
        spec_path=str(paths.spec.resolve()),
        overrides=list(workflow.loaded.overrides),
        checkpoint=checkpoints.public_location(paths.checkpoint or ""),  # a Postgres password is not written down
        output_dir=str(options.output_dir.resolve()) if options.output_dir else None,
        formats=list(options.formats) if options.formats else None,
        status="running",
        exit_code=None,
        started_at=started.isoformat(timespec="milliseconds"),
        finished_at=None,
    )


async def _run(
    workflow: Workflow, options: RunOptions, paths: RunPaths, recorder: Any, resume: bool, origin: datetime
) -> RunOutcome:
    run_id, location = paths.run_id, paths.checkpoint
    structlog.contextvars.bind_contextvars(run_id=run_id)
    exporter = prepare_export(workflow) if options.otel else None  # refused by the policy: exit 5, nothing sent
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    setup = set_up_run(workflow, paths, options, recorder, origin)
    context, finished, warnings = setup.context, setup.finished, setup.warnings
    stopped_by: str | None = None
    signals: list[str] = []
    if options.handle_sigterm:
        stop_on_sigterm(signals)
    async with open_saver(location) as saver, mcp_tools(workflow, context):
        store_carries(saver, finished, paths)
        graph, steps = compile_run_graph(workflow, saver)
        shape = graph_shape(graph)
        config: Any = {
            "configurable": {"thread_id": run_id},
            "max_concurrency": workflow.loaded.spec.limits.concurrency,
            "recursion_limit": steps,
        }
        start: Any = initial_state(workflow)
        tracker = Tracker(dict(start))
        if resume:
            start, tracker = await _resume_point(graph, config, context, run_id)
        log.info("run.started", spec=workflow.loaded.spec.name, graph=workflow.graph_name, resume=resume)
        try:
            with telemetry(options.telemetry):
                durable: Any = {"durability": checkpoints.DURABILITY} if saver is not None else {}
                async for mode, chunk in graph.astream(
                    start, config=config, context=context, stream_mode=["updates", "values"], **durable
                ):
                    tracker.see(mode, chunk)
        except asyncio.CancelledError:  # Ctrl-C or SIGTERM: keep what finished (it is checkpointed), then stop
            stopped_by = signals[0] if signals else "SIGINT"
        finally:
            verification = await _verification(context, tracker, stopped_by)
            kept = finished.updates() if finished is not None and stopped_by else []
            if finished is not None:  # its last commits and the WAL's checkpoint, off the event loop
                await asyncio.to_thread(finished.close)
            setup.close()  # the recorder flushed, the cache and the finished-node store closed
        checkpointing = CheckpointReport(
            backend=backend_name(location),
            location=checkpoints.public_location(location) if location not in (None, OFF) else None,
            durability=checkpoints.DURABILITY,
            writes=getattr(saver, "puts", 0),
            ms=round(getattr(saver, "elapsed_s", 0.0) * 1000, 2),
        )
    duration_ms = int((time.perf_counter() - started) * 1000)
    egress = EgressReport.model_validate(context.pool.egress.report() if context.pool.egress else {})
    result = build_result(
        workflow,
        run_id,
        tracker.snapshot(kept),
        started_at,
        duration_ms,
        context.pool.budget,
        stopped_by,
        tracker.interrupts,
        checkpointing,
        egress,
        shape,
        context.files.files,
        context.pool.clock.origin,
        verification,
    )
    result.warnings += warnings
    result = RunResult.model_validate(redact_tree(result.model_dump(mode="json"), context.pool.secrets))
    if exporter is not None:  # the spans leave after the run (secrets masked), and the collector is egress too
        result = exporter.export(result)
    # `apply` writes only patches whose verdicts this machine's key signed
    result.signature = signature(result, ledger.machine_key())
    try:
        written = _write(workflow, options, paths, result)
    except STATE_ERRORS as exc:
        unwritten = RunOutcome(result=result, exit_code=ExitStatus(result.exit_code), written=[])
        raise StateError.of(exc, f"write its outputs in {paths.output_dir}", outcome=unwritten) from exc
    log.info("run.finished", status=result.status, exit_code=result.exit_code, **result.totals.model_dump())
    outcome = RunOutcome(result=result, exit_code=ExitStatus(result.exit_code), written=written)
    if stopped_by is not None:
        raise Interrupted(
            f"the run was stopped by {stopped_by}; resume it with `orchestrator resume {run_id}`",
            outcome=outcome,
            signal_name=stopped_by,
        )
    return outcome


async def _verification(context: RunContext, tracker: Tracker, stopped_by: str | None) -> VerificationReport | None:
    """Every verified patch together, once the graph has finished (not after a signal)."""
    verifier = context.verifier
    if verifier is None:
        return None
    try:
        subtasks = [r for r in tracker.snapshot().get("results", []) if not r.proposal_of]
        if stopped_by is not None:
            return verifier.report([v for s in subtasks for v in s.verification], None)
        return await finish_verification(verifier, subtasks)
    finally:
        verifier.close()


async def _resume_point(graph: Any, config: Any, context: RunContext, run_id: str) -> tuple[Any, Tracker]:
    """Where an interrupted run goes on: the checkpointed state, pending budget interrupts
    answered, and the budget already spent carried over."""
    from langgraph.types import Command

    snapshot = await graph.aget_state(config)
    if not snapshot.values:
        raise NoCheckpoint(f"no checkpoint for run {run_id}")
    values = dict(snapshot.values)
    # what the finished-node store kept: nodes of the stopped step (the checkpoint left them to it)
    spent = Tracker(values).snapshot(context.finished.updates())
    plan = spent.get("plan")
    calls = [*spent.get("results", []), spent.get("aggregate"), plan.call if plan else None]
    budget = context.pool.budget
    budget.spent_tokens = sum(c.tokens_in + c.tokens_out for c in calls if c)
    budget.spent_cost = sum(c.cost_usd or 0.0 for c in calls if c)
    pending = {i.id: True for task in snapshot.tasks for i in task.interrupts}
    for task in snapshot.tasks:  # when the budget paused each node, for the timeline's budget waits
        for paused in task.interrupts:
            value = paused.value if isinstance(paused.value, dict) else {}
            if isinstance(value.get("at_ms"), int) and value.get("subtask"):
                context.paused[str(value["subtask"])] = value["at_ms"]
    start: Any = Command(resume=pending) if pending else None
    return start, Tracker(values)


def stop_on_sigterm(signals: list[str]) -> None:
    """SIGTERM cancels the current task (the run, or a sweep of runs), as Ctrl-C does; `signals` records it."""
    task = asyncio.current_task()
    assert task is not None

    def stop() -> None:
        signals.append("SIGTERM")
        task.cancel()

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop)


def _write(workflow: Workflow, options: RunOptions, paths: RunPaths, result: RunResult) -> list[Path]:
    if not options.write:
        return []
    from orchestrator import __version__

    line_counts = {f.path: f.lines for f in workflow.files.files}
    return write_outputs(result, paths.output_dir, list(paths.formats), line_counts, __version__)


def run_workflow(workflow: Workflow, options: RunOptions | None = None, resume: bool = False) -> RunOutcome:
    """Run a prepared workflow to its end (checkpointed, cached and listed by default); with
    `resume`, finish the run `options.run_id` from its checkpoint."""
    options = options or RunOptions()
    options.run_id = options.run_id or new_run_id()
    return _sync(run_workflow_async(workflow, options, resume), options)


def resume_workflow(
    run_id: str, overrides: Sequence[str] = (), options: RunOptions | None = None, operator: Operator | None = None
) -> RunOutcome:
    """Finish an interrupted run from its checkpoint: no completed subtask runs again.
    `overrides` change the spec for the rest of the run (`limits.max_cost_usd=2`)."""
    workflow, options = prepare_resume(run_id, overrides, options, operator)
    return run_workflow(workflow, options, resume=True)


def prepare_resume(
    run_id: str, overrides: Sequence[str] = (), options: RunOptions | None = None, operator: Operator | None = None
) -> tuple[Workflow, RunOptions]:
    """The workflow of a listed run, rebuilt from its spec and overrides under the operator's
    policy, and the options that finish it where it left its checkpoint and outputs."""
    entry = ledger.get_run(run_id)
    if entry is None:
        raise NoCheckpoint(f"no run {run_id} on this machine")
    workflow = prepare_workflow(load_spec(entry.spec_path, [*entry.overrides, *overrides]), operator)
    options = options or RunOptions()
    options.run_id = run_id
    if options.checkpoint == DEFAULT:  # the run's own checkpoint (a URL given again keeps its password)
        options.checkpoint = entry.checkpoint
    options.output_dir = options.output_dir or (Path(entry.output_dir) if entry.output_dir else None)
    options.formats = options.formats or entry.formats
    return workflow, options


def _sync(run: Any, options: RunOptions) -> RunOutcome:
    try:
        outcome: RunOutcome = asyncio.run(run)
    except KeyboardInterrupt:
        if options.ledger and options.run_id and ledger.get_run(options.run_id) is not None:
            ledger.finish_run(options.run_id, "interrupted", ExitStatus.INTERRUPTED)
        raise
    return outcome
