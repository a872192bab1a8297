"""Running a prepared workflow: build the run's context, compile the graph with a checkpointer,
stream it, decide the exit code, write the outputs. `resume_workflow` finishes an interrupted
run from its checkpoint. Library code: it returns a RunOutcome and raises Interrupted on a
signal; it never exits."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from orchestrator.budget import Budget
from orchestrator.egress import Egress
from orchestrator.errors import Interrupted, OrchestratorError
from orchestrator.pool import ModelPool
from orchestrator.recording import Recorder
from orchestrator.registry import CallSettings
from orchestrator.report import write_outputs
from orchestrator.result import build_result
from orchestrator.role import AGGREGATE, PLANNER, worker_roles
from orchestrator.secret import redact, redact_tree, secret_values
from orchestrator.state import Progress, RunContext, RunState, SilentProgress, Subtask
from orchestrator.workflow import DEFAULT_KEY, Workflow
from orchestrator.workspace import FileSet, SourceFile

log = structlog.get_logger(__name__)


@dataclass
class RunOptions:
    output_dir: Path | None = None  # None: the spec's output.dir, relative to the spec
    formats: list[str] | None = None
    write: bool = True
    progress: Progress = field(default_factory=SilentProgress)
    run_id: str | None = None
    handle_sigterm: bool = False  # the CLI: SIGTERM stops the run like Ctrl-C (exit 143)
    recorder: Recorder | None = None  # --record / --replay
    checkpoint: str | None = None  # a SQLite path or postgres:// URL; None: in memory; "off": none
    cache: Path | None = None  # the result cache's SQLite file; None: no cache
    telemetry: bool = False  # LangSmith tracing (when its environment is set); off unless asked for


@dataclass
class RunOutcome:
    result: dict[str, Any]
    exit_code: int
    written: list[Path]


class NoCheckpoint(OrchestratorError):
    exit_code = 2
    hint = "list the runs with `orchestrator runs`"


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def build_context(
    workflow: Workflow, run_id: str, options: RunOptions, cache: Any = None, egress: Egress | None = None
) -> RunContext:
    spec = workflow.loaded.spec
    usable = set(workflow.worker_roles)
    roles = {name: role for name, role in workflow.roles.items() if name in usable or name in (PLANNER, AGGREGATE)}
    named = [r for r in spec.models if r in usable and r != DEFAULT_KEY]
    limits = spec.limits
    settings = CallSettings(
        max_output_tokens=limits.max_output_tokens,
        timeout_s=limits.timeout_s,
        retries=limits.retries,
        backoff_s=limits.backoff_s,
        max_wait_s=limits.max_wait_s,
        cooldown_after=limits.cooldown_after,
    )
    budget = Budget(limits.max_cost_usd, limits.max_tokens)
    secrets = secret_values(p.api_key_env for p in workflow.providers.values() if p.api_key_env)
    for keeper in (options.recorder, cache):
        if keeper is not None:
            keeper.secrets = secrets
    pool = ModelPool(workflow.providers, settings, budget, options.recorder, cache, egress, workflow.allowed)
    pool.secrets = secrets
    files = FileSet([SourceFile(f.path, redact(f.text, secrets)) for f in workflow.files.files], workflow.files.skipped)
    return RunContext(
        run_id=run_id,
        goal=spec.goal.strip(),
        workspace=workflow.loaded.workspace,
        roles=roles,
        chains=workflow.chains,
        files=files,
        pool=pool,
        max_output_tokens=spec.limits.max_output_tokens,
        fallback_roles=named or sorted(worker_roles(roles)),
        node_chains=workflow.node_chains,
        progress=options.progress,
        base_class=workflow.base_class,
        file_classes=workflow.file_classes,
        class_chains=workflow.class_chains,
        node_class_chains=workflow.node_class_chains,
    )


def initial_state(workflow: Workflow) -> RunState:
    spec = workflow.loaded.spec
    state = RunState(goal=spec.goal.strip(), results=[])
    if spec.tasks:
        subtasks = [
            Subtask(id=task.id or f"t{i}", role=task.role, instruction=task.instruction.strip(), files=task.files)
            for i, task in enumerate(spec.tasks, 1)
        ]
        state["plan"] = {"source": "spec", "notes": [], "subtasks": subtasks, "call": None}
    return state


class _Tracker:
    """The latest state of the run: the last superstep's values plus every node that has
    finished since (LangGraph streams a task's update as soon as it is done)."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = dict(state)
        self.pending: list[Any] = []
        self.extra: dict[str, Any] = {}
        self.interrupts: list[dict[str, Any]] = []

    def see(self, mode: str, chunk: Any) -> None:
        if mode == "values":
            self.state, self.pending, self.extra = dict(chunk), [], {}
            return
        for name, update in (chunk or {}).items():
            if name == "__interrupt__":
                self.interrupts += [{"id": i.id, **(i.value if isinstance(i.value, dict) else {})} for i in update]
            if not isinstance(update, dict) or name.startswith("__"):
                continue
            self.pending += update.get("results") or []
            self.extra.update({k: v for k, v in update.items() if k in ("plan", "aggregate") and v})

    def snapshot(self) -> dict[str, Any]:
        state = {**self.state, **self.extra}
        state["results"] = list(self.state.get("results") or []) + self.pending
        return state


@asynccontextmanager
async def _checkpointer(location: str | None) -> AsyncIterator[Any]:
    if location == "off":  # no checkpointer at all (benchmarks): no resume, no budget pause
        yield None
        return
    if location is None:
        from langgraph.checkpoint.memory import InMemorySaver

        from orchestrator.store import strict_serde

        yield InMemorySaver(serde=strict_serde())
        return
    from orchestrator.store import open_checkpointer

    async with open_checkpointer(location) as saver:
        yield saver


def _compile(workflow: Workflow, context: RunContext, saver: Any) -> tuple[Any, int]:
    from orchestrator.compile import compile_graph
    from orchestrator.graph import recursion_limit

    if workflow.graph is not None:
        builder = compile_graph(workflow.graph, sorted(worker_roles(context.roles)))
        return builder.compile(checkpointer=saver), recursion_limit(workflow.graph)
    built = workflow.python_graph  # a Python graph, built at validation with the same node factories
    if hasattr(built, "add_node"):
        return built.compile(checkpointer=saver), 200
    built.checkpointer = saver
    return built, 200


async def run_workflow_async(workflow: Workflow, options: RunOptions, resume: bool = False) -> RunOutcome:
    """Run (or, with `resume`, finish) the workflow; the run id is the checkpoint's thread."""
    from orchestrator.store import DURABILITY, public_location

    run_id = options.run_id or new_run_id()
    structlog.contextvars.bind_contextvars(run_id=run_id)
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    cache = _open_cache(options)
    egress = Egress()
    context = build_context(workflow, run_id, options, cache, egress)
    context.pausable = options.checkpoint != "off"
    interrupted = False
    signals: list[str] = []
    if options.handle_sigterm:
        _on_sigterm(signals)
    async with _checkpointer(options.checkpoint) as saver:
        graph, steps = _compile(workflow, context, saver)
        config: Any = {
            "configurable": {"thread_id": run_id},
            "max_concurrency": workflow.loaded.spec.limits.concurrency,
            "recursion_limit": steps,
        }
        start: Any = initial_state(workflow)
        tracker = _Tracker(dict(start))
        if resume:
            start, tracker = await _resume_point(graph, config, context, run_id)
        log.info("run.started", spec=workflow.loaded.spec.name, graph=workflow.graph_name, resume=resume)
        try:
            with _telemetry(options.telemetry):
                durable: Any = {"durability": DURABILITY} if saver is not None else {}  # langgraph#: none without one
                async for mode, chunk in graph.astream(
                    start, config=config, context=context, stream_mode=["updates", "values"], **durable
                ):
                    tracker.see(mode, chunk)
        except asyncio.CancelledError:  # Ctrl-C or SIGTERM: keep what finished (it is checkpointed), then stop
            interrupted = True
        finally:
            if options.recorder is not None:
                options.recorder.flush()
            if cache is not None:
                cache.close()
        duration_ms = int((time.perf_counter() - started) * 1000)
        checkpointing = {
            "backend": _backend(options.checkpoint),
            "location": options.checkpoint and public_location(options.checkpoint),
            "durability": DURABILITY,
            "writes": getattr(saver, "puts", 0),
            "ms": round(getattr(saver, "elapsed_s", 0.0) * 1000, 2),
        }
    state = tracker.snapshot()
    result = build_result(
        workflow, run_id, state, started_at, duration_ms, context.pool.budget, interrupted, tracker.interrupts
    )
    result["checkpoint"] = checkpointing
    result["egress"] = egress.report()
    result = redact_tree(result, context.pool.secrets)
    written = _write(workflow, options, result)
    log.info("run.finished", status=result["status"], exit_code=result["exit_code"], **result["totals"])
    outcome = RunOutcome(result=result, exit_code=result["exit_code"], written=written)
    if interrupted:
        name = signals[0] if signals else "SIGINT"
        raise Interrupted(
            f"the run was stopped by {name}; resume it with `orchestrator resume {run_id}`",
            outcome=outcome,
            signal_name=name,
        )
    return outcome


async def _resume_point(graph: Any, config: Any, context: RunContext, run_id: str) -> tuple[Any, _Tracker]:
    """Where an interrupted run goes on: the checkpointed state, pending budget interrupts
    answered, and the budget already spent carried over."""
    from langgraph.types import Command

    snapshot = await graph.aget_state(config)
    if not snapshot.values:
        raise NoCheckpoint(f"no checkpoint for run {run_id}")
    values = dict(snapshot.values)
    calls = [*values.get("results", []), values.get("aggregate"), (values.get("plan") or {}).get("call")]
    budget = context.pool.budget
    budget.spent_tokens = sum(c.get("tokens_in", 0) + c.get("tokens_out", 0) for c in calls if c)
    budget.spent_cost = sum(c.get("cost_usd") or 0.0 for c in calls if c)
    pending = {i.id: True for task in snapshot.tasks for i in task.interrupts}
    start: Any = Command(resume=pending) if pending else None
    return start, _Tracker(values)


def _telemetry(enabled: bool) -> Any:
    """LangSmith tracing only when asked for: with it off, no trace leaves the machine even when
    the environment sets LANGSMITH_TRACING / LANGCHAIN_TRACING_V2."""
    from langsmith import tracing_context

    return tracing_context(enabled=enabled)


def _backend(location: str | None) -> str:
    if location is None:
        return "memory"
    if location == "off":
        return "off"
    from orchestrator.store import is_postgres

    return "postgres" if is_postgres(location) else "sqlite"


def _open_cache(options: RunOptions) -> Any:
    if options.cache is None or (options.recorder is not None and options.recorder.mode == "replay"):
        return None
    from orchestrator.cache import ResponseCache

    return ResponseCache(options.cache)


def _on_sigterm(signals: list[str]) -> None:
    task = asyncio.current_task()
    assert task is not None

    def stop() -> None:
        signals.append("SIGTERM")
        task.cancel()

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop)


def _write(workflow: Workflow, options: RunOptions, result: dict[str, Any]) -> list[Path]:
    if not options.write:
        return []
    spec = workflow.loaded.spec
    out_dir = options.output_dir or (workflow.loaded.base_dir / spec.output.dir)
    line_counts = {f.path: f.lines for f in workflow.files.files}
    formats = options.formats or list(spec.output.formats)
    return write_outputs(result, workflow.roles, out_dir, formats, line_counts)


def run_workflow(workflow: Workflow, options: RunOptions | None = None) -> RunOutcome:
    return asyncio.run(run_workflow_async(workflow, options or RunOptions()))


def resume_workflow(workflow: Workflow, run_id: str, options: RunOptions | None = None) -> RunOutcome:
    """Finish an interrupted run from its checkpoint: no completed subtask runs again."""
    options = options or RunOptions()
    options.run_id = run_id
    return asyncio.run(run_workflow_async(workflow, options, resume=True))
