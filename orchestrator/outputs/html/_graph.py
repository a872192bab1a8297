"""The graph that ran, as inline SVG: nodes in layers from START (longest path, loops left out),
coloured by status, with their kind, runs and fallbacks; conditional edges dashed and labelled,
loops drawn back up the right side."""

from __future__ import annotations

from orchestrator.outputs.html._base import clip, esc, status_color
from orchestrator.outputs.result import GraphEdge, GraphNode, GraphReport

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 168, 46, 22, 46, 16
TERMINAL_W = 84


def _layers(graph: GraphReport) -> list[list[GraphNode]]:
    forward = [e for e in graph.edges if not e.loop]
    depth = {n.name: 0 for n in graph.nodes}
    for _ in range(len(graph.nodes)):  # longest path; at most |nodes| rounds on a DAG
        changed = False
        for edge in forward:
            if edge.source in depth and edge.target in depth and depth[edge.target] < depth[edge.source] + 1:
                depth[edge.target] = depth[edge.source] + 1
                changed = True
        if not changed:
            break
    rows: dict[int, list[GraphNode]] = {}
    for node in graph.nodes:
        rows.setdefault(depth[node.name], []).append(node)
    return [rows[d] for d in sorted(rows)]


def _width(node: GraphNode) -> int:
    return TERMINAL_W if node.kind in ("start", "end") else NODE_W


def render_graph(graph: GraphReport) -> str:
    layers = _layers(graph)
    widest = max((sum(_width(n) for n in row) + GAP_X * (len(row) - 1) for row in layers), default=NODE_W)
    loops = [e for e in graph.edges if e.loop]
    width = widest + 2 * PAD + (200 if loops else 0)
    height = len(layers) * (NODE_H + GAP_Y) - GAP_Y + 2 * PAD
    place: dict[str, tuple[float, float, int]] = {}  # name -> (x, y, width)
    for depth, row in enumerate(layers):
        row_width = sum(_width(n) for n in row) + GAP_X * (len(row) - 1)
        x = PAD + (widest - row_width) / 2
        for node in row:
            place[node.name] = (x, PAD + depth * (NODE_H + GAP_Y), _width(node))
            x += _width(node) + GAP_X
    parts = [
        f'<svg class="graph" role="img" aria-label="the graph that ran" viewBox="0 0 {width:.0f} {height}" '
        f'width="{width:.0f}" height="{height}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#546e7a"/></marker></defs>',
    ]
    for edge in graph.edges:
        if edge.source in place and edge.target in place:
            parts.append(_edge(edge, place, widest + PAD))
    for node in graph.nodes:
        parts.append(_node(node, place[node.name]))
    parts.append("</svg>")
    return "".join(parts)


def _edge(edge: GraphEdge, place: dict[str, tuple[float, float, int]], right: float) -> str:
    sx, sy, sw = place[edge.source]
    tx, ty, tw = place[edge.target]
    dash = ' stroke-dasharray="5 4"' if edge.conditional else ""
    title = f"<title>{esc(edge.source)} → {esc(edge.target)}{': ' + esc(edge.label) if edge.label else ''}</title>"
    if edge.loop:  # back up the right side, into the target's right edge
        x1, y1 = sx + sw, sy + NODE_H / 2
        x2, y2 = tx + tw, ty + NODE_H / 2
        bend = right + 40
        path = f"M{x1:.0f},{y1:.0f} C{bend:.0f},{y1:.0f} {bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
        said = f"loop: {clip(edge.label, 24)}" if edge.label else "loop"
        label = f'<text class="elabel" x="{bend + 4:.0f}" y="{(y1 + y2) / 2:.0f}">{esc(said)}</text>'
        return (
            f'<g class="edge loop">{title}<path d="{path}" fill="none" stroke="#546e7a"{dash} '
            f'marker-end="url(#arrow)"/>{label}</g>'
        )
    x1, y1 = sx + sw / 2, sy + NODE_H
    x2, y2 = tx + tw / 2, ty
    label = ""
    if edge.label:
        middle = f'x="{(x1 + x2) / 2 + 4:.0f}" y="{(y1 + y2) / 2:.0f}"'
        label = f'<text class="elabel" {middle}>{esc(clip(edge.label, 28))}</text>'
    return (
        f'<g class="edge">{title}<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2 - 2:.0f}" '
        f'stroke="#546e7a"{dash} marker-end="url(#arrow)"/>{label}</g>'
    )


def _node(node: GraphNode, at: tuple[float, float, int]) -> str:
    x, y, w = at
    color = status_color(node.status)
    facts = [node.kind]
    if node.runs > 1:
        facts.append(f"x{node.runs}")
    if node.fallbacks:
        facts.append(f"↻{node.fallbacks} fallback{'s' if node.fallbacks > 1 else ''}")
    if node.status not in ("ok", "start", "end"):
        facts.append(node.status.replace("_", " "))
    title = f"{node.name} ({node.kind}{', role ' + node.role if node.role else ''}): {node.status}, {node.runs} run(s)"
    label = "START" if node.kind == "start" else "END" if node.kind == "end" else clip(node.name, 22)
    radius = NODE_H / 2 if node.kind in ("start", "end") else 8
    fill = "#ffffff" if node.status == "not_run" else color
    text = "#424242" if node.status == "not_run" else "#ffffff"
    centre = f'x="{x + w / 2:.0f}" text-anchor="middle" fill="{text}"'
    lines = [f'<text {centre} y="{y + 19:.0f}" class="nname">{esc(label)}</text>']
    if node.kind not in ("start", "end"):
        lines.append(f'<text {centre} y="{y + 36:.0f}" class="nfacts">{esc(clip(" · ".join(facts), 30))}</text>')
    return (
        f'<g class="node" data-node="{esc(node.name)}" data-status="{esc(node.status)}"><title>{esc(title)}</title>'
        f'<rect x="{x:.0f}" y="{y:.0f}" width="{w}" height="{NODE_H}" rx="{radius:.0f}" fill="{fill}" '
        f'stroke="{color}" stroke-width="2"/>{"".join(lines)}</g>'
    )


LEGEND = (
    '<p class="legend"><span class="sw s-ok"></span>ok <span class="sw s-partial"></span>some runs failed '
    '<span class="sw s-failed"></span>failed <span class="sw s-not_run"></span>not run · dashed: conditional edge '
    "· xN: runs (iterations, subtasks, proposals) · ↻: fallbacks to the next model</p>"
)
