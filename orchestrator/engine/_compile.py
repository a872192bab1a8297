"""Compiling YAML graph files to LangGraph: one node per graph node (a fanout node becomes one
node per worker role), conditional edges routed on the source's latest result, and bounded loops.
Python graphs are built with the same node factories (python_graph.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.engine.state import facts_of
from orchestrator.spec.graphfile import Edge, GraphDefinition, NodeSpec


def compile_graph(definition: GraphDefinition, worker_roles: list[str]) -> Any:
    """The LangGraph StateGraph (not yet compiled) of a YAML graph definition."""
    from langgraph.graph import END, START, StateGraph

    from orchestrator.engine._nodes import dispatch, make_aggregate_node, make_role_node, plan_node
    from orchestrator.engine._steps import make_merge_node, make_proposer_node, make_step_node
    from orchestrator.engine.context import RunContext
    from orchestrator.engine.state import ProposalInput, RunState, SubtaskInput

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

    from orchestrator.engine.context import RunContext

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

    from orchestrator.engine._steps import ensemble_sends
    from orchestrator.engine.context import RunContext

    def start(state: Any) -> Any:
        return ensemble_sends(name, nodes[name], inputs[name], state, get_runtime(RunContext).context)

    start.__name__ = f"start_{name}"
    return start
