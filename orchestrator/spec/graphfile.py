"""Graph files: a YAML format for workflows that compiles to a LangGraph StateGraph.

    version: 1
    name: debug-loop
    roles: {}                          # extra roles, as in a spec (output may be a JSON Schema)
    nodes:
      diagnose: {kind: role, role: debug, max_iterations: 3}
      patch:    {kind: role, role: refactor, inputs: [diagnose]}
      aggregate: {kind: aggregate}
    edges:
      - [START, diagnose]
      - [diagnose, patch]
      - {from: patch, to: diagnose, when: "patches.valid == 0"}
      - {from: patch, to: aggregate, when: else}
      - [aggregate, END]

Node kinds: `plan` (the planner's plan or the spec's tasks), `fanout` (one node per worker
role; one Send per planned subtask), `role` (one role on one instruction), `ensemble` (one
role on several models in parallel) and `merge` (an aggregator over an ensemble's proposals,
with the points where they disagree), `aggregate` (the final report). Every problem is found
when the graph is loaded, with the file, line and field.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from importlib.resources import as_file
from pathlib import Path
from typing import Literal

from pydantic import Field

from orchestrator.errors import Problem, SpecError
from orchestrator.spec._document import Document, Strict, StrList, close_match, load_yaml, validate_document
from orchestrator.spec._resources import data_dir, list_data
from orchestrator.spec.condition import Condition, ConditionError, parse_condition
from orchestrator.spec.roles import RoleSpec

TERMINALS = ("START", "END")
MAX_NODES = 200  # a graph is written by people; thousands of nodes are an attack or a mistake
NodeKind = Literal["plan", "fanout", "role", "ensemble", "merge", "aggregate"]


class NodeSpec(Strict):
    kind: NodeKind = Field(
        description="plan: the plan; fanout: one node per subtask; role: one role; ensemble: one role on several "
        "models; merge: an ensemble's proposals merged; aggregate: the final report"
    )
    role: str | None = Field(default=None, description="role kinds: the role this node runs")
    models: StrList | None = Field(
        default=None, description="a model or fallback chain overriding the spec's models for this node"
    )
    instruction: str | None = Field(default=None, description="what the node does ($goal is the spec's goal)")
    files: list[str] = Field(default_factory=list, description="globs: the files given to this node")
    inputs: list[str] | None = Field(default=None, description="nodes whose outputs this node reads")
    retries: int | None = Field(default=None, ge=0, le=10, description="this node's limits.retries")
    timeout_s: float | None = Field(default=None, gt=0, description="this node's limits.timeout_s")
    max_iterations: int | None = Field(default=None, ge=1, le=100, description="bound on runs inside a loop")
    proposers: int | None = Field(default=None, ge=1, le=16, description="ensemble: how many proposals")
    of: str | None = Field(default=None, description="merge: the ensemble node it merges")
    description: str = Field(default="", description="free text for people reading the graph")


class EdgeSpec(Strict):
    source: str = Field(alias="from", description="the node (or START) the edge leaves")
    target: str = Field(alias="to", description="the node (or END) the edge enters")
    when: str | None = Field(default=None, description="condition on the source's result, or 'else'")


class GraphFile(Strict):
    version: Literal[1] = Field(default=1, description="the graph format's version")
    name: str = Field(description="the graph's name")
    description: str = Field(default="", description="free text for people reading the graph")
    roles: dict[str, RoleSpec] = Field(default_factory=dict, description="role -> a role of this graph, as in a spec")
    nodes: dict[str, NodeSpec] = Field(min_length=1, max_length=MAX_NODES, description="name -> node")
    edges: list[tuple[str, str] | EdgeSpec] = Field(
        min_length=1, max_length=4 * MAX_NODES, description="[FROM, TO], or {from, to, when} for a conditional edge"
    )


@dataclass(frozen=True)
class Edge:
    index: int
    source: str
    target: str
    condition: Condition | None


@dataclass
class GraphDefinition:
    graph: GraphFile
    document: Document
    builtin: bool
    edges: list[Edge]

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def base_dir(self) -> Path:
        return self.document.path.parent

    def nodes_of(self, kind: str) -> list[str]:
        return [name for name, node in self.graph.nodes.items() if node.kind == kind]

    def outgoing(self) -> dict[str, list[Edge]]:
        found: dict[str, list[Edge]] = defaultdict(list)
        for edge in self.edges:
            found[edge.source].append(edge)
        return found


def builtin_graph_names() -> list[str]:
    return [name.removesuffix(".yaml") for name in list_data("graphs", ".yaml")]


def is_python_graph(ref: str) -> bool:
    return ":" in ref and not ref.endswith((".yaml", ".yml"))


PYTHON_GRAPH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


def python_graph_problem(ref: str) -> str | None:
    """Why a Python graph reference is not `pkg.module:function`, or None."""
    return None if PYTHON_GRAPH.match(ref) else f"'{ref}' is not a Python graph reference (pkg.module:function)"


def load_graph(ref: str, base_dir: Path) -> GraphDefinition:
    """A built-in graph by name, or a graph file (relative to the spec's folder)."""
    if ref in builtin_graph_names():
        with as_file(data_dir("graphs").joinpath(f"{ref}.yaml")) as path:
            document = load_yaml(path, kind="graph")
        builtin = True
    elif ref.endswith((".yaml", ".yml")) or "/" in ref:
        document = load_yaml((base_dir / ref).resolve(), kind="graph")
        builtin = False
    else:
        hint = close_match(ref, builtin_graph_names())
        known = ", ".join(builtin_graph_names())
        raise SpecError([Problem("", None, "graph", f"unknown graph '{ref}'{hint} (built-in: {known})")])
    graph = validate_document(document, GraphFile)
    problems: list[Problem] = []
    edges = _edges(graph, document, problems)
    definition = GraphDefinition(graph, document, builtin, edges)
    problems += check_graph(definition)
    if problems:
        raise SpecError(problems)
    return definition


def _edges(graph: GraphFile, doc: Document, problems: list[Problem]) -> list[Edge]:
    edges = []
    for index, raw in enumerate(graph.edges):
        source, target, when = (raw[0], raw[1], None) if isinstance(raw, tuple) else (raw.source, raw.target, raw.when)
        condition = None
        if when is not None:
            try:
                condition = parse_condition(when)
            except ConditionError as exc:
                problems.append(doc.problem(("edges", index, "when"), str(exc)))
                continue
        edges.append(Edge(index, source, target, condition))
    return edges


def check_graph(definition: GraphDefinition, known_roles: set[str] | None = None) -> list[Problem]:
    """Structure and meaning of a graph; `known_roles` (when given) checks every role exists."""
    graph, doc = definition.graph, definition.document
    nodes = graph.nodes
    problems: list[Problem] = []
    kinds: dict[str, list[str]] = defaultdict(list)
    for name, node in nodes.items():
        kinds[node.kind].append(name)
        problems += _check_node(definition, name, node, known_roles)
    for kind in ("plan", "aggregate", "fanout"):
        if len(kinds[kind]) > 1:
            problems.append(doc.problem(("nodes", kinds[kind][1]), f"a graph has at most one '{kind}' node"))
    if kinds["fanout"] and not kinds["plan"]:
        problems.append(doc.problem(("nodes", kinds["fanout"][0]), "a fanout node needs a plan node before it"))
    problems += _check_edges(definition)
    if not problems:
        problems += _check_reach(definition) + _check_cycles(definition)
    return problems


def _check_node(definition: GraphDefinition, name: str, node: NodeSpec, known_roles: set[str] | None) -> list[Problem]:
    doc, nodes = definition.document, definition.graph.nodes
    problems = []
    if name in TERMINALS:
        problems.append(doc.problem(("nodes", name), "START and END are reserved"))
    if node.kind in ("role", "ensemble"):
        if node.role is None:
            problems.append(doc.problem(("nodes", name), f"a {node.kind} node needs a role"))
        elif known_roles is not None and node.role not in known_roles:
            hint = close_match(node.role, known_roles)
            problems.append(doc.problem(("nodes", name, "role"), f"unknown role '{node.role}'{hint}"))
    elif node.role is not None:
        problems.append(doc.problem(("nodes", name, "role"), f"a {node.kind} node takes no role"))
    merges_ensemble = node.of is not None and nodes.get(node.of, NodeSpec(kind="plan")).kind == "ensemble"
    if node.kind == "merge" and not merges_ensemble:
        problems.append(doc.problem(("nodes", name, "of"), "a merge node names the ensemble node it merges"))
    for position, source in enumerate(node.inputs or []):
        if source not in nodes:
            hint = close_match(source, list(nodes))
            problems.append(doc.problem(("nodes", name, "inputs", position), f"unknown node '{source}'{hint}"))
    if node.proposers is not None and node.kind != "ensemble":
        problems.append(doc.problem(("nodes", name, "proposers"), "only ensemble nodes have proposers"))
    return problems


def _check_edges(definition: GraphDefinition) -> list[Problem]:
    graph, doc = definition.graph, definition.document
    nodes = graph.nodes
    problems = []
    for edge in definition.edges:
        for position, end in enumerate((edge.source, edge.target)):
            if end not in nodes and end not in TERMINALS:
                hint = close_match(end, list(nodes))
                problems.append(doc.problem(("edges", edge.index, position), f"unknown node '{end}'{hint}"))
        if edge.source == "END" or edge.target == "START":
            problems.append(doc.problem(("edges", edge.index), "edges cannot leave END or enter START"))
        source_kind = nodes[edge.source].kind if edge.source in nodes else None
        target_kind = nodes[edge.target].kind if edge.target in nodes else None
        if target_kind == "fanout" and source_kind != "plan":
            problems.append(doc.problem(("edges", edge.index), "a fanout node must follow the plan node"))
        if edge.condition is not None and source_kind == "fanout":
            problems.append(doc.problem(("edges", edge.index, "when"), "edges leaving a fanout cannot have conditions"))
        if target_kind == "merge" and nodes[edge.target].of != edge.source:
            problems.append(doc.problem(("edges", edge.index), "a merge node is entered from its ensemble only"))
    for source, edges in definition.outgoing().items():
        conditional = [e for e in edges if e.condition is not None]
        if conditional and len(conditional) != len(edges):
            problems.append(doc.problem(("edges", edges[0].index), f"edges from '{source}' mix conditions and none"))
        elif conditional:
            texts = [e.condition.text for e in conditional if e.condition is not None]
            for edge in conditional:
                if edge.condition is not None and texts.count(edge.condition.text) > 1:
                    twice = ("edges", edge.index, "when")
                    problems.append(doc.problem(twice, f"the same condition leaves '{source}' twice"))
                    break
            elses = [e for e in conditional if e.condition is not None and e.condition.is_else]
            if len(elses) != 1:
                problems.append(
                    doc.problem(
                        ("edges", conditional[0].index, "when"), f"conditions from '{source}' need one 'else' edge"
                    )
                )
        elif len(edges) > 1 and source != "START":
            where = ("edges", edges[1].index)
            problems.append(doc.problem(where, f"'{source}' has several unconditional edges; give them conditions"))
    return problems


def _check_reach(definition: GraphDefinition) -> list[Problem]:
    doc, nodes = definition.document, definition.graph.nodes
    outgoing = definition.outgoing()
    problems = []
    if "START" not in outgoing:
        problems.append(doc.problem(("edges",), "no edge leaves START"))
    reached = _reachable(outgoing, "START")
    for name in nodes:
        if name not in reached:
            problems.append(doc.problem(("nodes", name), "unreachable from START"))
        elif name not in outgoing:
            problems.append(doc.problem(("nodes", name), "dead end: no edge leaves it"))
        elif "END" not in _reachable(outgoing, name):
            problems.append(doc.problem(("nodes", name), "never reaches END"))
    return problems


def _reachable(outgoing: dict[str, list[Edge]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for edge in outgoing.get(todo.pop(), []):
            if edge.target not in seen:
                seen.add(edge.target)
                todo.append(edge.target)
    return seen


def _check_cycles(definition: GraphDefinition) -> list[Problem]:
    """Every cycle must be entered through a conditional edge into a node with max_iterations
    (that edge stops being taken once the node has run that many times)."""
    nodes = definition.graph.nodes
    breaking = {
        e.index
        for e in definition.edges
        if e.condition is not None and (nodes.get(e.target) or NodeSpec(kind="plan")).max_iterations
    }
    remaining: dict[str, list[str]] = defaultdict(list)
    for edge in definition.edges:
        if edge.index not in breaking:
            remaining[edge.source].append(edge.target)
    cycle = _find_cycle(remaining)
    if cycle is None:
        return []
    loop = " -> ".join([*cycle, cycle[0]])
    message = (
        f"the loop {loop} is unbounded: give a node in it max_iterations and enter that node "
        "through a conditional edge (with an else edge that leaves the loop)"
    )
    return [definition.document.problem(("nodes", cycle[0]), message)]


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle of the graph, as its nodes in order, or None (iterative: no depth limit)."""
    state: dict[str, int] = {}
    for start in list(graph):
        if start in state:
            continue
        stack: list[str] = [start]
        edges = [iter(graph.get(start, []))]
        state[start] = 1
        while stack:
            nxt = next(edges[-1], None)
            if nxt is None:
                state[stack.pop()] = 2
                edges.pop()
            elif state.get(nxt) == 1:
                return stack[stack.index(nxt) :]
            elif nxt not in state:
                state[nxt] = 1
                stack.append(nxt)
                edges.append(iter(graph.get(nxt, [])))
    return None


def recursion_limit(definition: GraphDefinition) -> int:
    """Supersteps LangGraph may take: every node once, loops as often as they are bounded."""
    nodes = definition.graph.nodes
    loops = sum(node.max_iterations or 1 for node in nodes.values())
    return 10 + 3 * len(nodes) * loops
