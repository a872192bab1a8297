"""The compiled graph LangGraph Server runs for a served graph, with policy, budgets and egress
kept inside it.

The server calls a graph factory for every access and streams the graph it returns with the
run's input; our nodes need a run context that only that input can give (its spec, workspace and
models), so `ServedGraph` is the compiled graph of the served spec (what Studio draws, with the
server's checkpointer) whose `astream` does, per run, what `orchestrator run` does before its
graph streams: the input is validated, the spec loaded and prepared (`prepare_workflow`: policy
refusals happen here, before any model call), the run context built by the runtime (the model
pool with its budget, egress ledger and clock), and the run's graph compiled with the server's
checkpointer streams with that context, node by node. Runs do not pause for the budget: a budget
reached fails the calls it refuses, and the report says so.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from orchestrator.errors import OrchestratorError, Problem, SpecError
from orchestrator.log import get_logger
from orchestrator.runtime import OFF, RunOptions, new_run_id
from orchestrator.runtime._context import initial_state, mcp_tools
from orchestrator.runtime._setup import compile_run_graph, set_up_run, telemetry
from orchestrator.runtime._stores import run_paths
from orchestrator.serve._langgraph_input import THREAD_INPUT, Served, ThreadInput, parse_input, prepare_run
from orchestrator.workflow import Workflow

log = get_logger(__name__)

TRACING_ENV = ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2")


class ServedGraph(CompiledStateGraph):  # type: ignore[type-arg]
    """A served graph: the compiled graph of its spec, whose every run is prepared from its input."""

    def __init__(self, *, served: Served, root: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.served = served
        self.root = root  # the folder the server runs in: relative paths start here

    @classmethod
    def of(cls, compiled: CompiledStateGraph, served: Served, root: Path) -> ServedGraph:  # type: ignore[type-arg]
        attrs = {key: value for key, value in compiled.__dict__.items() if key != "__orig_class__"}
        return cls(served=served, root=root, **attrs)

    def get_input_jsonschema(self, config: Any = None) -> dict[str, Any]:
        return ThreadInput.model_json_schema()

    def get_context_jsonschema(self) -> dict[str, Any] | None:
        return None  # the run context is built per run, from the input; a client gives none

    def stream(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
        raise SpecError("a served graph runs asynchronously: use astream or ainvoke (LangGraph Server does)")

    async def astream(self, input: Any, config: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        """One run: the input validated and prepared like `orchestrator run`, then the run's
        graph streamed with its run context (every stream mode the caller asks for)."""
        try:
            workflow = await self._prepare(input, kwargs.pop("context", None))
        except OrchestratorError as exc:
            raise RunRefused(exc) from None
        async for chunk in self._run(workflow, run_id_of(config), config or {}, kwargs):
            yield chunk

    async def _prepare(self, input: Any, given: Any) -> Workflow:
        if input is None or isinstance(input, Command):
            raise SpecError(
                [Problem(THREAD_INPUT, None, "", "a served graph's runs do not pause; start a new run with a goal")]
            )
        if given:
            raise SpecError([Problem(THREAD_INPUT, None, "context", "give the run's settings in its input instead")])
        refuse_blocking_dev_server()
        request = parse_input(input)
        return await asyncio.to_thread(prepare_run, self.served, request, self.root)

    async def _run(
        self, workflow: Workflow, run_id: str, config: dict[str, Any], kwargs: dict[str, Any]
    ) -> AsyncIterator[Any]:
        options = RunOptions(checkpoint=OFF, write=False, ledger=False, telemetry=tracing_requested())
        origin = datetime.now(UTC)
        try:
            paths = await asyncio.to_thread(run_paths, workflow, options, run_id)
            setup = await asyncio.to_thread(set_up_run, workflow, paths, options, None, origin)
        except OrchestratorError as exc:  # tracing the policy refuses, checks without their sandbox
            raise RunRefused(exc) from None
        context = setup.context
        structlog.contextvars.bind_contextvars(run_id=run_id)
        log.info("run.started", spec=workflow.loaded.spec.name, graph=workflow.graph_name, server="langgraph")
        try:
            async with mcp_tools(workflow, context):
                graph, steps = compile_run_graph(workflow, self.checkpointer)
                graph = graph.copy({"store": self.store, "name": self.name})
                limits = {"recursion_limit": steps, "max_concurrency": workflow.loaded.spec.limits.concurrency}
                with telemetry(options.telemetry):
                    async for chunk in graph.astream(
                        initial_state(workflow), {**config, **limits}, context=context, **kwargs
                    ):
                        yield chunk
        finally:
            if context.verifier is not None:
                context.verifier.close()
            setup.close()
            log.info("run.finished")


class RunRefused(ValueError):
    """The error that refused a run before its graph started (SpecError: exit 2, PolicyError:
    exit 5), as LangGraph Server shows it to the client: the server passes on the message of a
    ValueError only, and says "An internal error occurred" for anything else."""

    def __init__(self, error: OrchestratorError) -> None:
        self.error = error
        self.exit_code = error.exit_code
        text = f"{type(error).__name__} (exit {int(error.exit_code)}): {error.message}"
        super().__init__(text + (f"\nhint: {error.hint}" if error.hint else ""))


def run_id_of(config: Any) -> str:
    """The server's id of the run (the checkpoint's thread is the server's thread)."""
    config = config or {}
    run_id = config.get("run_id") or (config.get("metadata") or {}).get("run_id")
    return str(run_id) if run_id else new_run_id()


def tracing_requested(env: Any = None) -> bool:
    """LangSmith tracing is on only when the server's environment asks for it (`langgraph.json`
    keeps it off); each run then checks that the policy lets the endpoint see what it sees."""
    env = os.environ if env is None else env
    return any(str(env.get(name, "")).strip().lower() in ("1", "true") for name in TRACING_ENV)


def refuse_blocking_dev_server(env: Any = None) -> None:
    """`langgraph dev` raises on blocking calls in the event loop unless started with
    `--allow-blocking`; the nodes read files, SQLite and pipes, so a run would fail midway."""
    env = os.environ if env is None else env
    if env.get("LANGSMITH_LANGGRAPH_API_VARIANT") == "local_dev" and env.get("LANGGRAPH_ALLOW_BLOCKING") != "true":
        raise SpecError(
            "this `langgraph dev` server refuses blocking I/O, which the orchestrator's nodes do",
            hint="start it with `orchestrator studio`, or `langgraph dev --allow-blocking`",
        )
