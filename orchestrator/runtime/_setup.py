"""What every run sets up before its graph streams, whoever drives it (`orchestrator run`, a
LangGraph Server thread): the result cache, the run context nodes receive (the model pool with
its budget and egress ledger, the run's clock), the checks that refuse before any model call
(tracing under the policy, checks that need a sandbox), the store of finished nodes, and the
graph compiled for the run's checkpointer."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from orchestrator.checks import remove_leftovers
from orchestrator.engine.context import RunContext
from orchestrator.log import get_logger
from orchestrator.models.timing import RunClock
from orchestrator.runtime._context import build_context
from orchestrator.runtime._finished import FinishedStore, KeptInMemory
from orchestrator.runtime._stores import OFF, RunPaths, cache_for, finished_store
from orchestrator.runtime.executor import start_executor
from orchestrator.runtime.verify import refuse_without_sandbox, sandbox_warning
from orchestrator.workflow import Workflow

if TYPE_CHECKING:
    from orchestrator.runtime._run import RunOptions

log = get_logger(__name__)


@dataclass
class RunSetup:
    """One run's dependencies, and what must be closed when its graph has finished."""

    context: RunContext
    cache: Any
    recorder: Any
    finished: FinishedStore | KeptInMemory | None
    warnings: list[str] = field(default_factory=list)
    executor: Any = None  # where role nodes' work runs (None: here)

    def close(self) -> None:
        if self.executor is not None:
            self.executor.close()
        if self.recorder is not None:
            self.recorder.flush()
        if self.cache is not None:
            self.cache.close()
        if self.finished is not None:
            self.finished.close()


def set_up_run(workflow: Workflow, paths: RunPaths, options: RunOptions, recorder: Any, origin: datetime) -> RunSetup:
    """The run context of `workflow` and its keepers, kept where `paths` says. Raises PolicyError
    (tracing the policy refuses) or SpecError (checks that need a missing sandbox) before any model
    is called. A checkpoint "off" means no node may pause (budget) and nothing is kept."""
    # what a killed run (SIGKILL, a crash) could not remove: its scratch copies, its checks' cgroups
    remove_leftovers()
    cache = cache_for(paths)
    context = build_context(workflow, paths.run_id, options.progress, recorder, cache)
    context.pool.clock = RunClock(origin.timestamp())
    if options.telemetry:
        workflow.allow_tracing(context.pool.egress)
    context.pausable = paths.checkpoint != OFF
    warnings = _sandbox_checked(context)
    _busy_machine(context)
    executor = start_executor(workflow, options.executor, paths.recording is not None)
    context.executor = executor
    finished = finished_store(paths)
    if finished is not None:
        context.finished = finished
    return RunSetup(context, cache, recorder, finished, warnings, executor)


def _sandbox_checked(context: RunContext) -> list[str]:
    """Exit 2 before any model call when the checks need a sandbox that is not there; the loud
    warning when they will run without one."""
    refuse_without_sandbox(context.verifier)
    warning = sandbox_warning(context.verifier)
    if warning is None:
        return []
    log.warning("checks.unsandboxed", reason=context.verifier.sandbox.reason if context.verifier else "")
    context.progress.note(warning)
    return [warning]


def _busy_machine(context: RunContext) -> None:
    """A doctor's hint: on a machine busier than its cores, say what to expect of the models that
    run on it (progress only: the result does not depend on the machine's load)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    cores = os.cpu_count() or 1
    providers = context.pool.providers
    on_this_machine = {name for name, config in providers.items() if config.is_local}
    local = sorted(ref for ref in context.chains.allowed if ref.split("/", 1)[0] in on_this_machine)
    if load <= cores or not local:
        return
    context.progress.note(
        f"this machine is busy (load {load:.1f} on {cores} cores): calls to {', '.join(local)} wait their turn "
        "and take longer; timeout_s counts from when a model starts a call, not while it waits "
        "(limits.queue_wait_s bounds the wait, limits.stall_s a call that stops progressing)"
    )


def compile_run_graph(workflow: Workflow, saver: Any) -> tuple[Any, int]:
    """The run's compiled graph with `saver` as its checkpointer (None: the caller's, such as
    LangGraph Server's), and its recursion limit. A fanout node has one node per worker role
    with an allowed model (the roles the run context holds)."""
    from orchestrator.engine import compile_graph
    from orchestrator.spec.graphfile import recursion_limit

    if workflow.graph is not None:
        builder = compile_graph(workflow.graph, sorted(workflow.worker_roles))
        return builder.compile(checkpointer=saver), recursion_limit(workflow.graph)
    built = workflow.python_graph  # a Python graph, built at validation with the same node factories
    if hasattr(built, "add_node"):
        return built.compile(checkpointer=saver), 200
    built.checkpointer = saver
    return built, 200


def telemetry(enabled: bool) -> Any:
    """LangSmith tracing only when asked for: with it off, no trace leaves the machine even when
    the environment sets LANGSMITH_TRACING / LANGCHAIN_TRACING_V2."""
    from langsmith import tracing_context

    return tracing_context(enabled=enabled)
