"""What a result carries for the reports besides the calls: the graph that ran (from the compiled
LangGraph, so YAML and Python graphs alike, with each node's status from the records), the models
the run could reach (catalog and provider facts), and the source lines around each finding."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.engine.state import CallRecord, PlanRecord
from orchestrator.outputs.result import GraphEdge, GraphNode, GraphReport, ModelInfo, SourceExcerpt
from orchestrator.spec import PLANNER, worker_roles

if TYPE_CHECKING:
    from orchestrator.workflow import Workflow
    from orchestrator.workspace import SourceFile

START, END = "__start__", "__end__"
CONTEXT_LINES = 3  # lines shown before and after a finding's line
MAX_EXCERPTS = 200
MAX_LINE_CHARS = 400


def graph_shape(compiled: Any) -> tuple[list[str], list[tuple[str, str, bool, str | None]]]:
    """Nodes and edges (source, target, conditional, label) of a compiled LangGraph graph."""
    drawn = compiled.get_graph()
    nodes = [str(node_id) for node_id in drawn.nodes]
    edges = [(str(e.source), str(e.target), bool(e.conditional), str(e.data) if e.data else None) for e in drawn.edges]
    return nodes, edges


def graph_report(
    workflow: Workflow,
    shape: tuple[list[str], list[tuple[str, str, bool, str | None]]],
    plan: PlanRecord,
    calls: list[CallRecord],
) -> GraphReport:
    """The graph with each node's kind and what became of it in this run."""
    names, edges = shape
    kinds, roles = _kinds(workflow)
    by_node: dict[str, list[CallRecord]] = {}
    for call in calls:
        by_node.setdefault(call.node or call.role, []).append(call)
    nodes = []
    for name in names:
        records = by_node.get(name, [])
        if name == "plan" or kinds.get(name) == "plan":
            records = [plan.call] if plan.call else []
        status = _status(name, records, plan if kinds.get(name) == "plan" else None)
        nodes.append(
            GraphNode(
                name=name,
                kind=kinds.get(name, "start" if name == START else "end" if name == END else "node"),
                role=roles.get(name),
                status=status,
                runs=len(records),
                fallbacks=sum(len(r.fallbacks) for r in records),
            )
        )
    back = _back_edges(names, edges)
    report_edges = [
        GraphEdge(source=s, target=t, conditional=c, label=label, loop=(s, t) in back) for s, t, c, label in edges
    ]
    return GraphReport(nodes=nodes, edges=report_edges)


def _kinds(workflow: Workflow) -> tuple[dict[str, str], dict[str, str]]:
    kinds: dict[str, str] = {}
    roles: dict[str, str] = {}
    definition = workflow.graph
    if definition is None:
        return kinds, roles
    for name, node in definition.graph.nodes.items():
        if node.kind == "fanout":
            for role in worker_roles(workflow.roles):
                kinds.setdefault(role, "fanout")
                roles.setdefault(role, role)
            continue
        kinds[name] = node.kind
        if node.role:
            roles[name] = node.role
        elif node.kind in ("plan", "aggregate"):
            roles[name] = PLANNER
    return kinds, roles


def _status(name: str, records: list[CallRecord], plan: PlanRecord | None) -> str:
    if name in (START, END):
        return name.strip("_")
    if plan is not None and not records:  # the spec's tasks: planned without a call
        return "ok" if plan.subtasks else "not_run"
    if not records:
        return "not_run"
    failed = sum(1 for r in records if not r.ok)
    return "ok" if not failed else "failed" if failed == len(records) else "partial"


def _back_edges(names: list[str], edges: list[tuple[str, str, bool, str | None]]) -> set[tuple[str, str]]:
    """The edges that close a loop: depth first from START, an edge into a node still on the path."""
    outgoing: dict[str, list[str]] = {}
    for source, target, _, _ in edges:
        outgoing.setdefault(source, []).append(target)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    back: set[tuple[str, str]] = set()
    roots = [START] if START in names else []
    for root in [*roots, *names]:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, index = stack.pop()
            targets = outgoing.get(node, [])
            if index < len(targets):
                stack.append((node, index + 1))
                target = targets[index]
                if state.get(target) == 1:
                    back.add((node, target))
                elif target not in state:
                    state[target] = 1
                    stack.append((target, 0))
            else:
                state[node] = 2
    return back


def model_infos(workflow: Workflow) -> dict[str, ModelInfo]:
    """Every model of every chain the policy left (and every one it removed), with the facts the
    reports show: where it is served from, its lab and the lab's country, its license."""
    from orchestrator.catalog import Route, load_catalog

    catalog = load_catalog()
    routes: dict[str, Route] = {}
    for table in (*workflow.chains.roles.values(), *workflow.chains.nodes.values()):
        for chain in table.values():
            routes.update({route.ref: route for route in chain})
    infos: dict[str, ModelInfo] = {}
    for ref, route in sorted(routes.items()):
        config = workflow.providers.get(route.provider)
        entry = catalog.entry_for(route)
        infos[ref] = ModelInfo(
            provider=route.provider,
            kind=config.kind if config else "unknown",
            host=None if config is None or config.in_process else config.host,
            port=None if config is None or config.in_process else _port(config.base_url),
            local=bool(config and config.is_local),
            catalog_id=entry.id if entry else route.catalog_id,
            lab=entry.lab if entry else None,
            country=entry.country if entry else None,
            license=entry.license if entry else None,
            open_weights=entry.open_weights if entry else None,
        )
    return infos


def source_excerpts(files: list[SourceFile], calls: list[CallRecord]) -> list[SourceExcerpt]:
    """The lines around each finding's line, from the files as the models saw them (masked)."""
    by_path = {f.path: f for f in files}
    wanted: dict[str, set[int]] = {}
    for call in calls:
        for finding in call.findings():
            if finding.line and finding.file in by_path:
                wanted.setdefault(finding.file, set()).add(finding.line)
    excerpts: list[SourceExcerpt] = []
    for path, lines in sorted(wanted.items()):
        text = by_path[path].text.splitlines()
        for line in sorted(lines):
            if line > len(text) or len(excerpts) >= MAX_EXCERPTS:
                continue
            first = max(1, line - CONTEXT_LINES)
            shown = [row[:MAX_LINE_CHARS] for row in text[first - 1 : line + CONTEXT_LINES]]
            excerpts.append(SourceExcerpt(file=path, start=first, lines=shown))
    return excerpts


def _port(url: str | None) -> int | None:
    from urllib.parse import urlsplit

    if not url:
        return None
    parts = urlsplit(url)
    return parts.port or {"http": 80, "https": 443}.get(parts.scheme)
