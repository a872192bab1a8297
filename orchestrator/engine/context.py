"""The run's dependencies, as nodes receive them through LangGraph's `Runtime.context` (never
module globals), and the progress protocol nodes report to."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from orchestrator.log import get_logger
from orchestrator.policy import CLASSES

if TYPE_CHECKING:
    from orchestrator.catalog import Route
    from orchestrator.checks import Verifier
    from orchestrator.diff import DiffScope
    from orchestrator.engine._relevance import Priority
    from orchestrator.engine._repomap import RepoIndex
    from orchestrator.engine.state import CallRecord, Subtask
    from orchestrator.mcp_tools import McpHub
    from orchestrator.models import ModelPool
    from orchestrator.models.chain import ChainResult
    from orchestrator.policy.chains import ChainTable
    from orchestrator.spec import CheckSpec, Role
    from orchestrator.workspace import FileSet


log = get_logger(__name__)
NOTE_QUEUED_S = 5.0  # a node that waited this long for its model says so in the progress


class Progress(Protocol):
    """Where nodes report what they are doing (a live table on a terminal, lines in CI)."""

    def started(self, node: str, key: str, model: str) -> None: ...

    def finished(self, node: str, key: str, status: str, model: str | None, latency_ms: int, tokens: int) -> None: ...

    def note(self, message: str) -> None: ...


class Executor(Protocol):
    """Where the work of a fanned-out role node runs (its model calls, tool loop and checks); the
    LangGraph run, its checkpoints, budget and reports stay in this process. None: right here."""

    async def role_work(self, ctx: RunContext, role: str, subtask: Subtask) -> CallRecord: ...


class Finished(Protocol):
    """Where each node's update is kept, durably, the moment the node finishes (keyed by its
    LangGraph task id, which is the same when a run resumes): a run killed right after a node
    finished does not run it again, and a stopped run's report holds every node that finished.
    `put` returns once the update is kept; `holds` tells the checkpointer it need not keep it too."""

    def get(self, task_id: str) -> dict[str, Any] | None: ...

    async def put(self, task_id: str, node: str, update: dict[str, Any]) -> None: ...

    def holds(self, task_id: str) -> bool: ...

    def updates(self) -> list[dict[str, Any]]: ...


class Forgetful:
    """No store: nothing is kept beyond the graph's own checkpoints (benchmarks, no checkpointer)."""

    def get(self, task_id: str) -> dict[str, Any] | None:
        return None

    async def put(self, task_id: str, node: str, update: dict[str, Any]) -> None:
        pass

    def holds(self, task_id: str) -> bool:
        return False

    def updates(self) -> list[dict[str, Any]]:
        return []


class SilentProgress:
    def started(self, node: str, key: str, model: str) -> None:
        pass

    def finished(self, node: str, key: str, status: str, model: str | None, latency_ms: int, tokens: int) -> None:
        pass

    def note(self, message: str) -> None:
        pass


@dataclass(frozen=True)
class AgentLimits:
    """The bounds of a role's tool loop, per attempt (the first answer and each reflection)."""

    max_turns: int = 8
    max_tool_calls: int = 24
    reflections: int = 2  # times a failed fix goes back to its model
    repeats: int = 3  # identical tool calls in a row that end the loop's tool use
    max_tools: int = 16  # tools one model is offered (a compact_output provider's: at most COMPACT_TOOLS)


@dataclass
class RunContext:
    """Everything a node needs for one run."""

    run_id: str
    goal: str
    workspace: Path
    roles: dict[str, Role]
    chains: ChainTable  # the same table `validate` checked
    files: FileSet
    pool: ModelPool
    max_output_tokens: int
    fallback_roles: list[str]  # the plan fallback: one subtask per role in this list
    progress: Progress = field(default_factory=SilentProgress)
    pausable: bool = True  # a checkpointer holds the run, so a node may pause (budget)
    finished: Finished = field(default_factory=Forgetful)  # every node's update, kept as it finishes
    file_classes: dict[str, str] = field(default_factory=dict)  # file -> data class (policy.files)
    check_class: str = ""  # the highest class of a check's copy: every file, selected or not
    paused: dict[str, int] = field(default_factory=dict)  # subtask -> when (run clock, ms) the budget paused it
    # agentic roles: the checks, the verifier that runs them, the loop's bounds, the run's clock
    checks: dict[str, CheckSpec] = field(default_factory=dict)
    verifier: Verifier | None = None
    agent: AgentLimits = field(default_factory=AgentLimits)
    mcp: McpHub | None = None  # the granted tools of the spec's MCP servers, while the run lasts
    executor: Executor | None = None  # where role nodes' work runs (None: in this process)
    diff: DiffScope | None = None  # the changes under review (diff_base); None: every file is reviewed
    # the secret behind the boundaries of tool-result fences (engine._fence): random unless the
    # runtime derives it from this user's machine key, so that the cache keeps answering
    fence_key: bytes = field(default_factory=lambda: os.urandom(32))
    # the repository context of prompts: the map's share of a prompt, files packed before all others
    # (a diff-scoped run's changed files and hunks), and the map's index (built on first use)
    map_tokens: int = 1024
    priority: list[Priority] = field(default_factory=list)
    repo: RepoIndex | None = None

    @property
    def base_class(self) -> str:
        return self.chains.base_class

    def data_class_of(self, paths: Sequence[str], inputs: Sequence[CallRecord | None] = ()) -> str:
        """The class of what a call sees: its files' classes and those of the results it reads."""
        seen = [self.base_class, *(self.file_classes.get(p, self.base_class) for p in paths)]
        seen += [r.data_class or self.base_class for r in inputs if r is not None]
        return max(seen, key=CLASSES.index)

    def chain(self, role: str, data_class: str, node: str | None = None) -> list[Route]:
        """The policy-checked chain for this role (or graph node) at this data class."""
        return self.chains.chain(role, data_class, node=node)

    def may_see(self, route: Route, role: str, data_class: str, node: str | None = None) -> bool:
        """Whether the policy lets this model see data of this class, in this role (or node)."""
        return any(r.ref == route.ref for r in self.chain(role, data_class, node))

    def may_read(self, route: Route, role: str, path: str, node: str | None = None) -> bool:
        """Whether this model may see this file, in this role (or node): the tools' rule."""
        return self.may_see(route, role, self.file_classes.get(path, self.base_class), node)

    @property
    def workspace_class(self) -> str:
        """What a check's output may show: the highest class of the files of its copy, which are
        every file of the workspace, the ones the selection leaves out included."""
        copied = [self.check_class] if self.check_class else []
        return max([self.base_class, *self.file_classes.values(), *copied], key=CLASSES.index)

    def offset_ms(self) -> int:
        """Now on the run's clock (from its first start, across resumes): tool calls and checks."""
        return self.pool.clock.ms()


def node_finished(ctx: RunContext, node: str, key: str, outcome: ChainResult, duration_ms: int, **fields: Any) -> None:
    """The progress display's line and the canonical `node.finished` log line of a node's work."""
    model = outcome.route.ref if outcome.route else None
    tokens_in, tokens_out = outcome.usage.tokens_in, outcome.usage.tokens_out
    status = "ok" if outcome.ok else "failed"
    ctx.progress.finished(node, key, status, model, duration_ms, tokens_in + tokens_out)
    queued, served = outcome.usage.queued_s, outcome.usage.served_s
    if queued >= NOTE_QUEUED_S:
        who = model or (outcome.hops[-1]["model"] if outcome.hops else "its model")
        ctx.progress.note(f"{key}: {waiting_text(queued, served, who)}")
    log.info(
        "node.finished",
        node=node,
        subtask=key,
        status=status,
        model=model,
        fallbacks=len(outcome.hops),
        duration_ms=duration_ms,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        queued_s=round(queued, 1),
        served_s=round(served, 1),
        **fields,
    )


def waiting_text(queued_s: float, served_s: float, model: str) -> str:
    """Where a call's time went, as the progress and the report say it."""
    return f"waited {queued_s:.0f} s for {model}, then {served_s:.0f} s generating"
