"""Running a prepared workflow: build the run's context, compile and invoke the graph, decide
the exit code, write the outputs. Library code: it returns a RunOutcome, it never exits."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from orchestrator.budget import Budget
from orchestrator.errors import Interrupted
from orchestrator.pool import ModelPool
from orchestrator.recording import Recorder
from orchestrator.registry import CallSettings
from orchestrator.report import write_outputs
from orchestrator.result import build_result
from orchestrator.role import AGGREGATE, PLANNER, worker_roles
from orchestrator.state import Progress, RunContext, RunState, SilentProgress, Subtask
from orchestrator.workflow import DEFAULT_KEY, Workflow

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


@dataclass
class RunOutcome:
    result: dict[str, Any]
    exit_code: int
    written: list[Path]


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def build_context(workflow: Workflow, run_id: str, progress: Progress, recorder: Recorder | None = None) -> RunContext:
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
    return RunContext(
        run_id=run_id,
        goal=spec.goal.strip(),
        workspace=workflow.loaded.workspace,
        roles=roles,
        chains=workflow.chains,
        files=workflow.files,
        pool=ModelPool(workflow.providers, settings, Budget(limits.max_cost_usd, limits.max_tokens), recorder),
        max_output_tokens=spec.limits.max_output_tokens,
        fallback_roles=named or sorted(worker_roles(roles)),
        node_chains=workflow.node_chains,
        progress=progress,
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

    def see(self, mode: str, chunk: Any) -> None:
        if mode == "values":
            self.state, self.pending, self.extra = dict(chunk), [], {}
            return
        for update in (chunk or {}).values():
            if not isinstance(update, dict):
                continue
            self.pending += update.get("results") or []
            self.extra.update({k: v for k, v in update.items() if k in ("plan", "aggregate") and v})

    def snapshot(self) -> dict[str, Any]:
        state = {**self.state, **self.extra}
        state["results"] = list(self.state.get("results") or []) + self.pending
        return state


async def run_workflow_async(workflow: Workflow, options: RunOptions) -> RunOutcome:
    from orchestrator.compile import compile_graph
    from orchestrator.graph import recursion_limit

    run_id = options.run_id or new_run_id()
    structlog.contextvars.bind_contextvars(run_id=run_id)
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    context = build_context(workflow, run_id, options.progress, options.recorder)
    if workflow.graph is not None:
        graph = compile_graph(workflow.graph, sorted(worker_roles(context.roles))).compile()
        steps = recursion_limit(workflow.graph)
    else:  # a Python graph, built at validation with the same node factories
        built = workflow.python_graph
        graph = built.compile() if hasattr(built, "add_node") else built
        steps = 200
    log.info("run.started", spec=workflow.loaded.spec.name, graph=workflow.graph_name)
    config: Any = {"max_concurrency": workflow.loaded.spec.limits.concurrency, "recursion_limit": steps}
    tracker = _Tracker(dict(initial_state(workflow)))
    interrupted = False
    signals: list[str] = []
    if options.handle_sigterm:
        task = asyncio.current_task()
        assert task is not None

        def on_sigterm() -> None:
            signals.append("SIGTERM")
            task.cancel()

        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        async for mode, chunk in graph.astream(
            initial_state(workflow), config=config, context=context, stream_mode=["updates", "values"]
        ):
            tracker.see(mode, chunk)
    except asyncio.CancelledError:  # Ctrl-C or SIGTERM: keep what finished, then stop
        interrupted = True
    finally:
        if options.recorder is not None:
            options.recorder.flush()
    duration_ms = int((time.perf_counter() - started) * 1000)
    result = build_result(
        workflow, run_id, tracker.snapshot(), started_at, duration_ms, context.pool.budget, interrupted
    )
    written = _write(workflow, options, result)
    log.info("run.finished", status=result["status"], exit_code=result["exit_code"], **result["totals"])
    outcome = RunOutcome(result=result, exit_code=result["exit_code"], written=written)
    if interrupted:
        name = signals[0] if signals else "SIGINT"
        raise Interrupted(f"the run was stopped by {name}", outcome=outcome, signal_name=name)
    return outcome


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
