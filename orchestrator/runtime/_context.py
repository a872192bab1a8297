"""What one run starts from: the run context nodes receive (the model pool with its budget,
cache, recorder and egress accounting; secrets masked in the files), the initial graph state,
and the tracker that keeps the latest state while the graph streams."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from orchestrator.diff import Hunk
from orchestrator.engine import Priority
from orchestrator.engine.context import AgentLimits, Progress, RunContext
from orchestrator.engine.state import PlanRecord, RunState, Subtask
from orchestrator.mcp_tools import McpHub, open_servers
from orchestrator.models import Budget, CallSettings, ModelPool
from orchestrator.policy import Egress, redact, secret_values
from orchestrator.policy.secrets import remember
from orchestrator.runtime._mcp_sandbox import sandboxed_launch
from orchestrator.runtime.verify import make_verifier
from orchestrator.spec import AGGREGATE, PLANNER, mcp_server_of, worker_roles
from orchestrator.workflow import DEFAULT_KEY, Workflow
from orchestrator.workspace import FileSet, SourceFile


def build_context(workflow: Workflow, run_id: str, progress: Progress, recorder: Any, cache: Any) -> RunContext:
    spec = workflow.loaded.spec
    usable = set(workflow.worker_roles)
    roles = {name: role for name, role in workflow.roles.items() if name in usable or name in (PLANNER, AGGREGATE)}
    named = [r for r in spec.models if r in usable and r != DEFAULT_KEY]
    limits = spec.limits
    settings = CallSettings(
        max_output_tokens=limits.max_output_tokens,
        timeout_s=limits.timeout_s,
        stall_s=limits.stall_s,
        queue_wait_s=limits.queue_wait_s,
        retries=limits.retries,
        backoff_s=limits.backoff_s,
        max_wait_s=limits.max_wait_s,
        cooldown_after=limits.cooldown_after,
    )
    budget = Budget(limits.max_cost_usd, limits.max_tokens)
    secrets = secret_values(p.api_key_env for p in workflow.providers.values() if p.api_key_env)
    remember(secrets)  # the log processor masks them too
    for keeper in (recorder, cache):
        if keeper is not None:
            keeper.secrets = secrets
    egress = Egress(limits.max_response_bytes)
    pool = ModelPool(workflow.providers, settings, budget, recorder, cache, egress, workflow.chains.allowed)
    pool.secrets = secrets
    files = FileSet([SourceFile(f.path, redact(f.text, secrets)) for f in workflow.files.files], workflow.files.skipped)
    agent = AgentLimits(limits.max_turns, limits.max_tool_calls, spec.verify.reflections, max_tools=limits.max_tools)
    context = RunContext(
        run_id=run_id,
        goal=spec.goal.strip(),
        workspace=workflow.loaded.workspace,
        roles=roles,
        chains=workflow.chains,
        files=files,
        pool=pool,
        max_output_tokens=spec.limits.max_output_tokens,
        fallback_roles=named or sorted(worker_roles(roles)),
        progress=progress,
        file_classes=workflow.file_classes,
        check_class=workflow.check_class,
        checks=dict(spec.checks),
        agent=agent,
        map_tokens=limits.map_tokens,
    )
    context.verifier = make_verifier(
        workflow.loaded, secrets, recorder, context.offset_ms, policy=workflow.operator.policy
    )
    if workflow.diff is not None:  # the hunks the models see, with the same secrets masked as the files
        patches = {path: redact(text, secrets) for path, text in workflow.diff.patches.items()}
        context.diff = replace(workflow.diff, patches=patches)
        # the changed files are packed before any other, cut (when they must be) around their hunks
        context.priority = [
            Priority(f.path, "changed in the diff under review", tuple(_hunk_lines(f.hunks)))
            for f in workflow.diff.report.reviewed()
        ]
    if cache is not None:  # an unchanged tool result keeps its fence's boundary: the cache keeps answering
        context.fence_key = hmac.new(cache.secret, b"tool-result-fence", hashlib.sha256).digest()
    return context


@asynccontextmanager
async def mcp_tools(workflow: Workflow, context: RunContext) -> AsyncIterator[McpHub | None]:
    """The spec's MCP servers whose tools a role of this run is granted, started (or connected)
    for as long as the run lasts; nothing is started when no role is granted one."""
    granted = [tool for role in context.roles.values() for tool in role.tools if mcp_server_of(tool)]
    if not granted:
        yield None
        return
    servers = workflow.loaded.spec.mcp_servers
    workspace = workflow.loaded.workspace
    sandboxed = workflow.sandboxed_servers
    with sandboxed_launch(sandboxed, workspace) as launch:
        async with open_servers(servers, granted, workspace, context.pool.egress, launch) as hub:
            context.mcp = hub
            try:
                yield hub
            finally:
                context.mcp = None


def initial_state(workflow: Workflow) -> RunState:
    spec = workflow.loaded.spec
    state = RunState(goal=spec.goal.strip(), results=[])
    if spec.tasks:
        subtasks = [
            Subtask(id=task.id or f"t{i}", role=task.role, instruction=task.instruction.strip(), files=task.files)
            for i, task in enumerate(spec.tasks, 1)
        ]
        state["plan"] = PlanRecord(source="spec", subtasks=subtasks)
    return state


class Tracker:
    """The latest state of the run: the last superstep's values plus every node that has
    finished since (LangGraph streams a task's update as soon as it is done)."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = dict(state)
        self.pending: list[Any] = []
        self.extra: dict[str, Any] = {}
        self.interrupts: list[dict[str, Any]] = []

    def see(self, mode: str, chunk: Any) -> None:
        if mode == "values":
            self.state, self.pending, self.extra = dict(chunk), [], {}
            return
        for name, update in (chunk or {}).items():
            if name == "__interrupt__":
                self.interrupts += [{"id": i.id, **(i.value if isinstance(i.value, dict) else {})} for i in update]
            if not isinstance(update, dict) or name.startswith("__"):
                continue
            self.pending += update.get("results") or []
            self.extra.update({k: v for k, v in update.items() if k in ("plan", "aggregate") and v})

    def snapshot(self, kept: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The state to report; `kept` (the finished-node store's updates) adds any node that
        finished but whose update the stream had not delivered when the run was stopped."""
        state = {**self.state, **self.extra}
        results = list(self.state.get("results") or []) + self.pending
        seen = {(r.node, r.id, r.iteration, r.proposal_of) for r in results}
        for update in kept or []:
            for record in update.get("results") or []:
                if (record.node, record.id, record.iteration, record.proposal_of) not in seen:
                    results.append(record)
                    seen.add((record.node, record.id, record.iteration, record.proposal_of))
            for key in ("plan", "aggregate"):
                if update.get(key) is not None and not state.get(key):
                    state[key] = update[key]
        state["results"] = results
        return state


def _hunk_lines(hunks: list[Hunk]) -> list[tuple[int, int]]:
    """The lines of the new file each hunk shows (1-based, inclusive)."""
    return [(h.new_start, h.new_start + h.new_count - 1) for h in hunks if h.new_count]
