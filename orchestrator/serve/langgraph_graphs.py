"""Graph factories for LangGraph Server (`langgraph dev`, `orchestrator studio`) and Studio.

The repository's `langgraph.json` points one graph at each factory below: the shipped graphs
(`graphs/*.yaml`) and the quickstart spec. LangGraph Server calls a factory for every run (and
to draw the graph); each run's input is the goal and, optionally, a spec file, a workspace and
models (`ThreadInput`), and the run gets the checks of `orchestrator run`: the spec prepared
under the operator's policy before any model call, its own budget, egress ledger and model pool.

Serve your own spec or graph from a module of your project, and point your `langgraph.json` at it:

    # my_project/served.py
    from orchestrator.serve.langgraph_graphs import serve_graph, serve_spec

    review = serve_spec("specs/review.yaml")        # the spec's graph, goal, files and models
    triage = serve_graph("graphs/triage.yaml")      # a graph file, a shipped name or "pkg.module:build"

    # langgraph.json: {"dependencies": ["."], "graphs": {"review": "my_project.served:review"}}

Paths are relative to the folder the server runs in (where `langgraph dev` starts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.serve._langgraph_input import Served, ThreadInput

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig

__all__ = [
    "SHIPPED",
    "ThreadInput",
    "architect_editor",
    "coding_workflow",
    "debug_loop",
    "ensemble_review",
    "quickstart",
    "review_only",
    "serve_graph",
    "serve_spec",
]

GraphFactory = Callable[["RunnableConfig"], Awaitable[Any]]
QUICKSTART_SPEC = "examples/quickstart/spec.yaml"
SHIPPED = ("architect-editor", "coding-workflow", "debug-loop", "ensemble-review", "review-only")


def serve_spec(spec: str | Path) -> GraphFactory:
    """A graph factory that serves the workflow of a spec file: its graph, goal, files, models
    and policy. A run's input may replace the goal, the workspace, models or the whole spec."""
    return _factory(Served(spec=str(spec)), f"the workflow of {spec}")


def serve_graph(graph: str | Path) -> GraphFactory:
    """A graph factory that serves a graph (a shipped name, a graph file or `pkg.module:build`)
    with no spec of its own: each run's input gives the goal, and optionally the workspace (by
    default the server's folder), the models (by default the embedded model) or a spec."""
    return _factory(Served(graph=str(graph)), f"the {graph} graph")


def _factory(served: Served, what: str) -> GraphFactory:
    async def factory(config: RunnableConfig) -> Any:
        return await asyncio.to_thread(_served_graph, served)  # reads files: not on the server's event loop

    factory.__doc__ = f"LangGraph Server's graph factory for {what}."
    return factory


def _served_graph(served: Served) -> Any:
    from orchestrator.errors import OrchestratorError
    from orchestrator.runtime._setup import compile_run_graph
    from orchestrator.serve._langgraph_graph import RunRefused, ServedGraph
    from orchestrator.serve._langgraph_input import prepare_template

    root = Path.cwd()
    try:
        template = prepare_template(served, root)
    except OrchestratorError as exc:  # a broken spec, a policy that leaves a role no model
        raise RunRefused(exc) from None
    compiled, _ = compile_run_graph(template, None)  # the server brings its checkpointer
    return ServedGraph.of(compiled, served, root)


architect_editor = serve_graph("architect-editor")
coding_workflow = serve_graph("coding-workflow")
debug_loop = serve_graph("debug-loop")
ensemble_review = serve_graph("ensemble-review")
review_only = serve_graph("review-only")
quickstart = serve_spec(QUICKSTART_SPEC)
