"""Graph state (what flows between nodes and is checkpointed) and the run's dependencies
(what nodes receive through LangGraph's `Runtime.context`).

State holds plain JSON-able dicts only; file contents stay out of it, in the context.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypedDict

if TYPE_CHECKING:
    from orchestrator.catalog import Route
    from orchestrator.pool import ModelPool
    from orchestrator.role import Role
    from orchestrator.workspace import FileSet


class Subtask(TypedDict):
    id: str
    role: str
    instruction: str
    files: list[str]


class PlanRecord(TypedDict):
    source: str  # spec | planner | fallback
    notes: list[str]
    subtasks: list[Subtask]
    call: dict[str, Any] | None  # the planner call (model, hops, tokens), None for spec tasks


class SubtaskResult(TypedDict, total=False):
    id: str
    role: str
    instruction: str
    files: list[str]
    status: str  # ok | failed
    model: str | None
    catalog_id: str | None
    fallbacks: list[dict[str, Any]]
    tokens_in: int
    tokens_out: int
    latency_ms: int
    attempts: int
    waited_s: float
    structured_mode: str | None
    cached: bool
    cost_basis: str | None
    cost_usd: float | None
    output: dict[str, Any] | None
    error: dict[str, str] | None
    context: dict[str, Any]
    checks: list[dict[str, Any]]
    node: str  # the graph node that produced it
    iteration: int  # 1 on the node's first run
    proposal_of: str | None  # an ensemble proposal: the ensemble node's name
    data_class: str  # the data class of what the call saw (files and earlier results)


def merge_dicts(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    return {**(left or {}), **(right or {})}


def add_counts(left: dict[str, int] | None, right: dict[str, int] | None) -> dict[str, int]:
    out = dict(left or {})
    for key, value in (right or {}).items():
        out[key] = out.get(key, 0) + value
    return out


class RunState(TypedDict, total=False):
    goal: str
    plan: PlanRecord
    results: Annotated[list[SubtaskResult], operator.add]  # every call's result, in arrival order
    outputs: Annotated[dict[str, SubtaskResult], merge_dicts]  # graph node -> its latest result
    visits: Annotated[dict[str, int], add_counts]  # graph node -> how many times it ran
    aggregate: SubtaskResult


class SubtaskInput(TypedDict):
    subtask: Subtask


class ProposalInput(TypedDict):
    """What an ensemble sends each proposer (a Send carries no other state)."""

    proposer: int
    iteration: int
    inputs: dict[str, SubtaskResult]


class Progress(Protocol):
    """Where nodes report what they are doing (a live table on a terminal, lines in CI)."""

    def started(self, node: str, key: str, model: str) -> None: ...

    def finished(self, node: str, key: str, status: str, model: str | None, latency_ms: int, tokens: int) -> None: ...

    def note(self, message: str) -> None: ...


class SilentProgress:
    def started(self, node: str, key: str, model: str) -> None:
        pass

    def finished(self, node: str, key: str, status: str, model: str | None, latency_ms: int, tokens: int) -> None:
        pass

    def note(self, message: str) -> None:
        pass


@dataclass
class RunContext:
    """Everything a node needs for one run; passed as LangGraph's context, never global."""

    run_id: str
    goal: str
    workspace: Path
    roles: dict[str, Role]
    chains: dict[str, list[Route]]
    files: FileSet
    pool: ModelPool
    max_output_tokens: int
    fallback_roles: list[str]  # the plan fallback: one subtask per role in this list
    node_chains: dict[str, list[Route]] = field(default_factory=dict)  # graph nodes with their own models
    progress: Progress = field(default_factory=SilentProgress)
    base_class: str = "internal"  # the run's data class
    pausable: bool = True  # a checkpointer holds the run, so a node may pause (budget)
    file_classes: dict[str, str] = field(default_factory=dict)  # file -> data class (policy.files)
    class_chains: dict[str, dict[str, list[Route]]] = field(default_factory=dict)  # role -> class -> chain
    node_class_chains: dict[str, dict[str, list[Route]]] = field(default_factory=dict)

    def data_class_of(self, paths: Sequence[str], inputs: Sequence[Any] = ()) -> str:
        """The class of what a call sees: its files' classes and those of the results it reads."""
        order = ("public", "internal", "confidential")
        seen = [self.base_class, *(self.file_classes.get(p, self.base_class) for p in paths)]
        seen += [r.get("data_class") or self.base_class for r in inputs if r]
        return max(seen, key=order.index)

    def chain(self, role: str, data_class: str, node: str | None = None) -> list[Route]:
        """The policy-checked chain for this role (or graph node) at this data class."""
        if node is not None and node in self.node_class_chains:
            return self.node_class_chains[node].get(data_class, self.node_chains.get(node, []))
        if node is not None and node in self.node_chains:
            return self.node_chains[node]
        return self.class_chains.get(role, {}).get(data_class, self.chains.get(role, []))
