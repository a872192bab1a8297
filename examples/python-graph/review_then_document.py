"""A custom graph in Python: review the code, then document it in Arabic with the review in
view, then the report. It uses the orchestrator's node factories (kit), so it gets model
fallback chains, limits, accounting, progress and the reports like any built-in graph.

Referenced from spec.yaml as `graph: "review_then_document:build"` (the spec's folder is
searched first), or shown with `orchestrator graph show review_then_document:build`.
"""

from __future__ import annotations

from typing import Any


def build(kit: Any) -> Any:
    graph = kit.state_graph()
    graph.add_node("review", kit.role_node("review", role="architecture_review", instruction="Review $goal"))
    graph.add_node(
        "document",
        kit.role_node(
            "document",
            role="arabic_docs",
            inputs=["review"],
            instruction="Document the public API; mention the review's main finding.",
        ),
    )
    graph.add_node("aggregate", kit.aggregate_node(), defer=True)
    graph.add_edge(kit.START, "review")
    graph.add_edge("review", "document")
    graph.add_edge("document", "aggregate")
    graph.add_edge("aggregate", kit.END)
    return graph
