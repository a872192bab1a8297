"""Graph files: a small YAML format that compiles to a LangGraph StateGraph.

    version: 1
    name: coding-workflow
    nodes:                       # name -> kind
      plan: {kind: plan}         # the planner's plan (or the spec's tasks)
      roles: {kind: fanout}      # one node per worker role; one Send per subtask
      aggregate: {kind: aggregate}
    edges: [[START, plan], [plan, roles], [roles, aggregate], [aggregate, END]]

A `fanout` node expands to one node per worker role, named after the role. Built-in graphs
live in `graphs/`; a spec may also point at a graph file of its own.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from importlib.resources import as_file
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import Problem, SpecError
from orchestrator.resource import data_dir, list_data
from orchestrator.source import Document, close_match, load_yaml, validate_document

TERMINALS = ("START", "END")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NodeSpec(_Strict):
    kind: Literal["plan", "fanout", "aggregate"]
    description: str = ""


class GraphFile(_Strict):
    version: Literal[1] = 1
    name: str
    description: str = ""
    nodes: dict[str, NodeSpec] = Field(min_length=1)
    edges: list[tuple[str, str]] = Field(min_length=1)


@dataclass
class GraphDefinition:
    graph: GraphFile
    document: Document
    builtin: bool

    @property
    def name(self) -> str:
        return self.graph.name


def builtin_graph_names() -> list[str]:
    return [name.removesuffix(".yaml") for name in list_data("graphs", ".yaml")]


def load_graph(ref: str, base_dir: Path) -> GraphDefinition:
    """A built-in graph by name, or a graph file (relative to the spec's folder)."""
    if ref in builtin_graph_names():
        with as_file(data_dir("graphs").joinpath(f"{ref}.yaml")) as path:
            document = load_yaml(path, kind="graph")
            document.path = Path("graphs") / f"{ref}.yaml"
        builtin = True
    elif ref.endswith((".yaml", ".yml")) or "/" in ref:
        document = load_yaml((base_dir / ref).resolve(), kind="graph")
        builtin = False
    else:
        hint = close_match(ref, builtin_graph_names())
        known = ", ".join(builtin_graph_names())
        raise SpecError([Problem("", None, "graph", f"unknown graph '{ref}'{hint} (built-in: {known})")])
    definition = GraphDefinition(validate_document(document, GraphFile), document, builtin)
    problems = check_graph(definition)
    if problems:
        raise SpecError(problems)
    return definition


def check_graph(definition: GraphDefinition) -> list[Problem]:
    graph, doc = definition.graph, definition.document
    problems: list[Problem] = []
    kinds = Counter(node.kind for node in graph.nodes.values())
    for kind in ("plan", "aggregate"):
        if kinds[kind] != 1:
            problems.append(doc.problem(("nodes",), f"needs exactly one node of kind '{kind}'"))
    for name in graph.nodes:
        if name in TERMINALS:
            problems.append(doc.problem(("nodes", name), "START and END are reserved"))
    for index, (source, target) in enumerate(graph.edges):
        for position, end in enumerate((source, target)):
            if end not in graph.nodes and end not in TERMINALS:
                hint = close_match(end, list(graph.nodes))
                problems.append(doc.problem(("edges", index, position), f"unknown node '{end}'{hint}"))
        if source == "END" or target == "START":
            problems.append(doc.problem(("edges", index), "edges cannot leave END or enter START"))
    sources = {source for source, _ in graph.edges}
    targets = {target for _, target in graph.edges}
    if "START" not in sources:
        problems.append(doc.problem(("edges",), "no edge leaves START"))
    for name in graph.nodes:
        if name not in targets:
            problems.append(doc.problem(("nodes", name), "unreachable: no edge leads to it"))
        elif name not in sources:
            problems.append(doc.problem(("nodes", name), "dead end: no edge leaves it"))
    for index, (source, target) in enumerate(graph.edges):
        into_fanout = graph.nodes.get(target, NodeSpec(kind="plan")).kind == "fanout"
        if into_fanout and graph.nodes.get(source, NodeSpec(kind="fanout")).kind != "plan":
            problems.append(doc.problem(("edges", index), "a fanout node must follow the plan node"))
    return problems


def compile_graph(definition: GraphDefinition, worker_roles: list[str]) -> Any:
    """Build the LangGraph StateGraph (not yet compiled) for these worker roles."""
    from langgraph.graph import END, START, StateGraph

    from orchestrator.node import aggregate_node, dispatch, make_role_node, plan_node
    from orchestrator.state import RunContext, RunState, SubtaskInput

    graph = definition.graph
    builder: Any = StateGraph(RunState, context_schema=RunContext)
    for name, node in graph.nodes.items():
        if node.kind == "plan":
            builder.add_node(name, plan_node)
        elif node.kind == "aggregate":
            builder.add_node(name, aggregate_node)
        else:
            for role in worker_roles:
                builder.add_node(role, make_role_node(role), input_schema=SubtaskInput)
    terminal = {"START": START, "END": END}
    for source, target in graph.edges:
        source_kind = graph.nodes[source].kind if source in graph.nodes else None
        target_kind = graph.nodes[target].kind if target in graph.nodes else None
        if target_kind == "fanout":
            builder.add_conditional_edges(source, dispatch, list(worker_roles))
        elif source_kind == "fanout":
            for role in worker_roles:
                builder.add_edge(role, terminal.get(target, target))
        else:
            builder.add_edge(terminal.get(source, source), terminal.get(target, target))
    return builder
