"""Python graphs: `graph: "pkg.module:build"` names a function that receives a GraphKit and
returns a `StateGraph` (or a compiled graph). The kit hands out the node factories the YAML
compiler uses, so a Python graph gets fallback chains, the policy, limits, accounting, progress and
reports for free:

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import Problem, SpecError
from orchestrator.spec.graphfile import NodeSpec, python_graph_problem


@dataclass
class GraphKit:
    """What a Python graph's `build(kit)` receives: the node factories of the YAML compiler.

    `role_node(name, role=..., models=...)` registers per-node models through the same
    resolution (catalog, policy, every data class) as a spec's models."""

    worker_roles: list[str]
    resolve_models: Callable[[str, str, list[str]], None]  # (node, role, model refs)

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

        from orchestrator.engine.context import RunContext
        from orchestrator.engine.state import RunState

        return StateGraph(RunState, context_schema=RunContext)

    def plan_node(self) -> Any:
        from orchestrator.engine._nodes import plan_node

        return plan_node

    def fanout(self, graph: Any, after: str, then: str) -> None:
        """One node per worker role after `after` (usually "plan"), each leading to `then`."""
        from orchestrator.engine._nodes import dispatch, make_role_node
        from orchestrator.engine.state import SubtaskInput

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
        from orchestrator.engine._steps import make_step_node

        if models:
            self.resolve_models(name, role, models)
        spec = NodeSpec(
            kind="role", role=role, instruction=instruction, files=files or [], retries=retries, timeout_s=timeout_s
        )
        return make_step_node(name, spec, list(inputs or []))

    def aggregate_node(self, name: str = "aggregate") -> Any:
        from orchestrator.engine._nodes import make_aggregate_node

        return make_aggregate_node(name)


def load_python_graph(ref: str, base_dir: Path) -> Callable[[GraphKit], Any]:
    """Import `pkg.module:function`, looking next to the spec first."""
    if why := python_graph_problem(ref):
        raise SpecError([Problem("", None, "graph", why)])
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
