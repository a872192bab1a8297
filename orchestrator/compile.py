"""Compiling graphs to LangGraph: YAML graph files, and Python graphs built with the same
node factories (`graph: "pkg.module:build"`).

A Python graph is a function that receives a GraphKit and returns a `StateGraph` (or a compiled
graph). The kit hands out the node factories the YAML compiler uses, so a Python graph gets
fallback chains, limits, accounting, progress and reports for free:

    def build(kit):
        graph = kit.state_graph()
        graph.add_node("review", kit.role_node("review", role="architecture_review"))
        graph.add_node("aggregate", kit.aggregate_node(), defer=True)
        graph.add_edge(kit.START, "review")
        graph.add_edge("review", "aggregate")
        graph.add_edge("aggregate", kit.END)
        return graph
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.condition import facts_of
from orchestrator.errors import Problem, SpecError
from orchestrator.graph import Edge, GraphDefinition, NodeSpec


def compile_graph(definition: GraphDefinition, worker_roles: list[str]) -> Any:
    """The LangGraph StateGraph (not yet compiled) of a YAML graph definition."""
    from langgraph.graph import END, START, StateGraph

    from orchestrator.node import dispatch, make_aggregate_node, make_role_node, plan_node
    from orchestrator.state import ProposalInput, RunContext, RunState, SubtaskInput
    from orchestrator.step import make_merge_node, make_proposer_node, make_step_node

    nodes = definition.graph.nodes
    inputs = _inputs(definition)
    builder: Any = StateGraph(RunState, context_schema=RunContext)
    for name, node in nodes.items():
        if node.kind == "plan":
            builder.add_node(name, plan_node)
        elif node.kind == "aggregate":  # deferred: it runs once every branch has finished
            builder.add_node(name, make_aggregate_node(name), defer=True)
        elif node.kind == "fanout":
            for role in worker_roles:
                builder.add_node(role, make_role_node(role), input_schema=SubtaskInput)
        elif node.kind == "role":
            builder.add_node(name, make_step_node(name, node, inputs[name]))
        elif node.kind == "ensemble":
            builder.add_node(name, make_proposer_node(name, node), input_schema=ProposalInput)
        else:  # merge
            builder.add_node(name, make_merge_node(name, node, nodes[node.of or ""]))
    terminal = {"START": START, "END": END}

    def target_of(name: str) -> str:
        return terminal.get(name, name)

    for source, edges in definition.outgoing().items():
        sources = worker_roles if source in nodes and nodes[source].kind == "fanout" else [target_of(source)]
        for origin in sources:
            if edges[0].condition is not None:
                router = _router(source, edges, nodes, inputs)
                labels = {_label(e): target_of(e.target) for e in edges}  # Mermaid shows the conditions
                builder.add_conditional_edges(origin, router, labels)
            elif edges[0].target in nodes and nodes[edges[0].target].kind == "fanout":
                builder.add_conditional_edges(origin, dispatch, list(worker_roles))
            elif edges[0].target in nodes and nodes[edges[0].target].kind == "ensemble":
                builder.add_conditional_edges(
                    origin, _ensemble_starter(edges[0].target, nodes, inputs), [edges[0].target]
                )
            else:
                for edge in edges:
                    builder.add_edge(origin, target_of(edge.target))
    return builder


def _inputs(definition: GraphDefinition) -> dict[str, list[str]]:
    """What each node reads: its `inputs`, or by default the nodes with an edge into it."""
    nodes = definition.graph.nodes
    found: dict[str, list[str]] = {}
    for name, node in nodes.items():
        if node.inputs is not None:
            found[name] = list(node.inputs)
        else:
            found[name] = sorted({e.source for e in definition.edges if e.target == name and e.source in nodes})
    return found


def _label(edge: Edge) -> str:
    """The key a router returns for an edge: its condition, which Mermaid shows on the edge."""
    assert edge.condition is not None
    return edge.condition.text


def _exhausted(node: NodeSpec | None, visits: dict[str, int], name: str) -> bool:
    return node is not None and node.max_iterations is not None and visits.get(name, 0) >= node.max_iterations


def _router(
    source: str, edges: list[Edge], nodes: dict[str, NodeSpec], inputs: dict[str, list[str]]
) -> Callable[..., Any]:
    """Route on the source's latest result: the first condition that holds and whose target has
    runs left, else the `else` edge (a target that has run max_iterations times is skipped)."""
    from langgraph.graph import END
    from langgraph.runtime import get_runtime

    from orchestrator.state import RunContext

    ordered = [e for e in edges if e.condition is not None and not e.condition.is_else]
    fallback = next(e for e in edges if e.condition is not None and e.condition.is_else)

    def go(edge: Edge, state: Any) -> Any:
        if edge.target != "END" and nodes[edge.target].kind == "ensemble":
            return _ensemble_starter(edge.target, nodes, inputs)(state)
        return _label(edge)

    def route(state: Any) -> Any:
        visits = state.get("visits", {})
        facts = facts_of(state.get("outputs", {}).get(source), visits.get(source, 0))
        for edge in ordered:
            assert edge.condition is not None
            if edge.condition.holds(facts) and not _exhausted(nodes.get(edge.target), visits, edge.target):
                return go(edge, state)
        if not _exhausted(nodes.get(fallback.target), visits, fallback.target):
            return go(fallback, state)
        get_runtime(RunContext).context.progress.note(f"{source}: every route out has run out of iterations; ending")
        return END

    route.__name__ = f"route_{source}"
    return route


def _ensemble_starter(name: str, nodes: dict[str, NodeSpec], inputs: dict[str, list[str]]) -> Callable[..., Any]:
    from langgraph.runtime import get_runtime

    from orchestrator.state import RunContext
    from orchestrator.step import ensemble_sends

    def start(state: Any) -> Any:
        return ensemble_sends(name, nodes[name], inputs[name], state, get_runtime(RunContext).context)

    start.__name__ = f"start_{name}"
    return start


# ---------------------------------------------------------------- Python graphs


@dataclass
class GraphKit:
    """What a Python graph's `build(kit)` receives: the node factories of the YAML compiler.

    `role_node(name, role=..., models=...)` registers per-node models through the same
    resolution (catalog, policy) as a spec's models; `node_models` collects them."""

    worker_roles: list[str]
    resolve_models: Callable[[str, list[str]], list[Any]]
    node_models: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def START(self) -> str:
        from langgraph.graph import START

        return START

    @property
    def END(self) -> str:
        from langgraph.graph import END

        return END

    def state_graph(self) -> Any:
        from langgraph.graph import StateGraph

        from orchestrator.state import RunContext, RunState

        return StateGraph(RunState, context_schema=RunContext)

    def plan_node(self) -> Any:
        from orchestrator.node import plan_node

        return plan_node

    def fanout(self, graph: Any, after: str, then: str) -> None:
        """One node per worker role after `after` (usually "plan"), each leading to `then`."""
        from orchestrator.node import dispatch, make_role_node
        from orchestrator.state import SubtaskInput

        for role in self.worker_roles:
            graph.add_node(role, make_role_node(role), input_schema=SubtaskInput)
            graph.add_edge(role, then)
        graph.add_conditional_edges(after, dispatch, list(self.worker_roles))

    def role_node(
        self,
        name: str,
        *,
        role: str,
        instruction: str | None = None,
        inputs: list[str] | None = None,
        files: list[str] | None = None,
        models: list[str] | None = None,
        retries: int | None = None,
        timeout_s: float | None = None,
    ) -> Any:
        from orchestrator.step import make_step_node

        if models:
            self.node_models[name] = self.resolve_models(name, models)
        spec = NodeSpec(
            kind="role", role=role, instruction=instruction, files=files or [], retries=retries, timeout_s=timeout_s
        )
        return make_step_node(name, spec, list(inputs or []))

    def aggregate_node(self, name: str = "aggregate") -> Any:
        from orchestrator.node import make_aggregate_node

        return make_aggregate_node(name)


def load_python_graph(ref: str, base_dir: Path) -> Callable[[GraphKit], Any]:
    """Import `pkg.module:function`, looking next to the spec first."""
    module_name, _, attribute = ref.partition(":")
    added = str(base_dir) not in sys.path
    if added:
        sys.path.insert(0, str(base_dir))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError([Problem("", None, "graph", f"cannot import '{module_name}': {exc}")]) from None
    finally:
        if added:
            sys.path.remove(str(base_dir))
    builder = getattr(module, attribute, None)
    if not callable(builder):
        raise SpecError([Problem("", None, "graph", f"'{module_name}' has no function '{attribute}'")])
    return builder  # type: ignore[no-any-return]


def build_python_graph(ref: str, builder: Callable[[GraphKit], Any], kit: GraphKit) -> Any:
    """Call a Python graph's build function; it must return a StateGraph or compiled graph."""
    from langgraph.graph import StateGraph
    from langgraph.graph.state import CompiledStateGraph

    try:
        graph = builder(kit)
    except SpecError:
        raise
    except Exception as exc:  # noqa: BLE001 - user code: report what it raised as a spec error
        raise SpecError([Problem("", None, "graph", f"{ref} raised {type(exc).__name__}: {exc}")]) from None
    if not isinstance(graph, StateGraph | CompiledStateGraph):
        got = type(graph).__name__
        raise SpecError([Problem("", None, "graph", f"{ref} must return a StateGraph or a compiled graph, not {got}")])
    return graph
