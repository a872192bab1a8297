"""Node factories. Node names equal role names (or graph node names), so logs, Mermaid and
specs agree; one factory serves built-in roles and the roles a spec or graph adds.

- `plan_node`: the spec's tasks, or the planner's plan, or a fallback plan (said so).
- `make_role_node(role)`: a fanned-out subtask on the role's fallback chain.
- `aggregate_node`: the planner's models merge every output into one report.
Graph-only kinds (role steps, ensembles, merges) are in _steps.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from langgraph.types import Send

from orchestrator.catalog import Route
from orchestrator.engine._agent import AgentTask, agentic, run_agent
from orchestrator.engine._answers import file_contract
from orchestrator.engine._changes import changes_for, review_files
from orchestrator.engine._packer import Viewer, focus_for, packed_messages, planner_messages, task_files
from orchestrator.engine._packing import digest
from orchestrator.engine._patch import check_patch
from orchestrator.engine._prompt import system_message, user_message
from orchestrator.engine._timing import call_timing, check_span, pause_for_budget, resumed_wait
from orchestrator.engine.context import RunContext, node_finished
from orchestrator.engine.state import (
    CallError,
    CallRecord,
    Hop,
    PatchCheck,
    PlanRecord,
    RunState,
    Served,
    Subtask,
    SubtaskInput,
)
from orchestrator.models import BoundModel, CallSettings, Contract, contract_for
from orchestrator.models._structured import Check
from orchestrator.models.chain import ChainResult, call_chain
from orchestrator.policy import redact_tree
from orchestrator.spec import AGGREGATE, PLANNER, Role, worker_roles
from orchestrator.spec.kinds import Plan
from orchestrator.workspace import SourceFile


class leaf:  # a decorator, named like one
    """A node callable that is not a Python function. At every compile, LangGraph disassembles
    each node function (and what it references) looking for subgraphs it might call; our nodes
    call none, and that search was ~70% of compiling a graph, most of a run's fixed cost
    (bench/overhead). LangGraph skips the search for callables that are not functions."""

    __slots__ = ("__name__", "func")

    def __init__(self, func: Callable[[Any, Runtime[RunContext]], Any]) -> None:
        self.func = func
        self.__name__ = func.__name__

    async def __call__(self, state: Any, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """The node's update; kept durably as soon as it is made, and given back without a call
        when a resumed run reaches the same task again."""
        finished = runtime.context.finished
        task = runtime.execution_info.task_id if runtime.execution_info is not None else ""
        if task and (kept := finished.get(task)) is not None:
            return kept
        result: dict[str, Any] = await self.func(state, runtime)
        if task:
            await finished.put(task, self.__name__, result)
        return result


def record(subtask: Subtask, outcome: ChainResult, checks: list[PatchCheck] | None = None, **extra: Any) -> CallRecord:
    """The typed record of one node's call (extra: node, iteration, proposal_of, ...)."""
    route = outcome.route
    return CallRecord(
        id=subtask.id,
        role=subtask.role,
        instruction=subtask.instruction,
        files=list(subtask.files),
        status="ok" if outcome.ok else "failed",
        model=route.ref if route else None,
        catalog_id=route.catalog_id if route else None,
        fallbacks=[Hop.model_validate(h) for h in outcome.hops],
        tokens_in=outcome.usage.tokens_in,
        tokens_out=outcome.usage.tokens_out,
        latency_ms=outcome.latency_ms,
        attempts=outcome.attempts,
        waited_s=outcome.waited_s,
        queued_s=round(outcome.usage.queued_s, 1),
        served_s=round(outcome.usage.served_s, 1),
        structured_mode=outcome.mode,
        cached=outcome.cached,
        cost_basis=outcome.cost_basis,
        cost_usd=outcome.cost_usd,
        output=outcome.output,
        error=CallError.model_validate(outcome.error) if outcome.error else None,
        context=outcome.context,
        checks=checks or [],
        timing=call_timing(outcome),
        host=outcome.host,
        served=Served.model_validate(outcome.served) if outcome.served else None,
        **extra,
    )


async def run_node(
    ctx: RunContext,
    node: str,
    key: str,
    chain: list[Route],
    build: Callable[[Route, BoundModel], list[BaseMessage]],
    contract: Contract,
    check: Check | None = None,
    settings: CallSettings | None = None,
    variant: int = 0,
) -> ChainResult:
    """Call a chain for one node with progress and the canonical `node.finished` log line.

    When the budget refuses the call, the node pauses (a LangGraph interrupt): the run stops
    scheduling, the pause is checkpointed, and `orchestrator resume` with a larger budget calls
    again from here, without re-running anything that finished."""
    started, wall = time.perf_counter(), time.time()
    while True:
        outcome = await call_chain(
            ctx.pool,
            chain,
            build,
            contract,
            check=check,
            on_attempt=lambda route: ctx.progress.started(node, key, route.ref),
            settings=settings,
            variant=variant,
        )
        if not (outcome.error and outcome.error.get("kind") == "budget") or not ctx.pausable:
            break
        pause_for_budget(ctx, node, key, outcome)
    outcome.started_at = wall
    resumed_wait(ctx, key, wall, outcome)
    secrets = ctx.pool.secrets  # nothing a provider or model said may carry a key into state
    outcome.output, outcome.hops, outcome.error = (
        redact_tree(x, secrets) for x in (outcome.output, outcome.hops, outcome.error)
    )
    node_finished(ctx, node, key, outcome, int((time.perf_counter() - started) * 1000))
    return outcome


def node_settings(ctx: RunContext, retries: int | None, timeout_s: float | None) -> CallSettings | None:
    if retries is None and timeout_s is None:
        return None
    base = ctx.pool.settings
    return replace(
        base,
        retries=base.retries if retries is None else retries,
        timeout_s=base.timeout_s if timeout_s is None else timeout_s,
    )


async def check_patches(ctx: RunContext, outcome: ChainResult) -> list[PatchCheck]:
    """`git apply --check` of every patch an answer proposes (run concurrently, off the loop);
    each check is a span of the call."""
    output = outcome.output
    if not output:
        return []
    patches = list(output.get("patches") or [])
    if isinstance(output.get("fix"), dict):
        patches.append(output["fix"])

    async def timed(patch: dict[str, Any]) -> PatchCheck:
        started = time.time()
        check = await check_patch(ctx.workspace, str(patch.get("file", "")), str(patch.get("diff", "")))
        outcome.spans.append(check_span(ctx.pool.clock, started, check))
        return check

    return list(await asyncio.gather(*(timed(p) for p in patches if isinstance(p, dict))))


# ---------------------------------------------------------------- plan


def planner_files(ctx: RunContext) -> list[str]:
    """The files whose names the planner may see: those its models are allowed to see (a file of a
    higher data class is named to the planner only when the same models may serve that class)."""
    chain = ctx.chain(PLANNER, ctx.base_class)
    classes = {c: ctx.chain(PLANNER, c) == chain for c in set(ctx.file_classes.values())}
    return [f.path for f in review_files(ctx) if classes.get(ctx.file_classes.get(f.path, ctx.base_class), True)]


def _plan_contract(ctx: RunContext, paths: list[str]) -> Contract:
    contract = contract_for("plan")
    schema = json.loads(json.dumps(contract.schema))
    item = schema["properties"]["subtasks"]["items"]
    item["properties"]["role"] = {"type": "string", "enum": sorted(worker_roles(ctx.roles))}
    if paths:
        item["properties"]["files"]["items"] = {"type": "string", "enum": paths}
    schema["properties"]["subtasks"]["minItems"] = 1
    return contract.with_schema(schema)


def fallback_subtasks(ctx: RunContext) -> list[Subtask]:
    """One subtask per role named in the spec's models (every worker role when none is)."""
    roles = ctx.fallback_roles
    return [Subtask(id=f"t{i}", role=r, instruction=ctx.goal, files=[]) for i, r in enumerate(roles, 1)]


def clean_plan(ctx: RunContext, plan: Plan) -> tuple[list[Subtask], list[str]]:
    """Keep planned subtasks whose role and files exist; give them unique ids."""
    notes: list[str] = []
    known_files = set(planner_files(ctx))
    subtasks: list[Subtask] = []
    for item in plan.subtasks:
        if item.role not in worker_roles(ctx.roles):
            notes.append(f"dropped a subtask for unknown role '{item.role}'")
            continue
        files = [f for f in item.files if f in known_files]
        if len(files) != len(item.files):
            notes.append(f"{item.id}: dropped files not in the workspace selection")
        instruction = item.instruction.strip() or ctx.goal
        subtasks.append(Subtask(id=f"t{len(subtasks) + 1}", role=item.role, instruction=instruction, files=files))
    return subtasks, notes


@leaf
async def plan_node(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    if state.get("plan"):  # tasks given in the spec were planned before the graph started
        return {}
    roles_text = "\n".join(f"- {r.name}: {r.description}" for r in worker_roles(ctx.roles).values())
    visible = planner_files(ctx)
    files_text = "\n".join(f"- {path}" for path in visible) or "(no files)"
    hidden = len(review_files(ctx)) - len(visible)
    if hidden:
        files_text += f"\n({hidden} more files of a data class the planner's models may not see)"
    changes = changes_for(ctx, visible)
    planner = ctx.roles[PLANNER].prompt
    user = user_message(planner, "plan", goal=ctx.goal, roles=roles_text, file_list=files_text, changes=changes)
    build = planner_messages(ctx, user, visible)
    chain = ctx.chain(PLANNER, ctx.base_class)
    outcome = await run_node(ctx, "plan", "plan", chain, build, _plan_contract(ctx, visible))
    call = record(Subtask(id="plan", role=PLANNER, instruction="", files=[]), outcome)
    subtasks: list[Subtask] = []
    notes: list[str] = []
    if outcome.ok and outcome.output is not None:
        subtasks, notes = clean_plan(ctx, Plan.model_validate(outcome.output))
    if subtasks:
        return {"plan": PlanRecord(source="planner", notes=notes, subtasks=subtasks, call=call)}
    reason = "the planner's plan was empty or invalid" if outcome.ok else "the planner failed"
    notes.append(f"{reason}; fell back to one subtask per role")
    ctx.progress.note(notes[-1])
    return {"plan": PlanRecord(source="fallback", notes=notes, subtasks=fallback_subtasks(ctx), call=call)}


def dispatch(state: RunState) -> list[Send]:
    """Fan out: one Send per subtask to the node of its role (run in parallel). Subtasks whose
    first model is on a single-model host are grouped by model, so that when the run's
    concurrency admits only some of them, each model still loads once."""
    from langgraph.runtime import get_runtime

    subtasks = list(state["plan"].subtasks)
    ctx = get_runtime(RunContext).context
    keys: list[str] = []
    for subtask in subtasks:
        paths = subtask.files or [f.path for f in review_files(ctx)]
        chain = ctx.chain(subtask.role, ctx.data_class_of(paths))
        head = chain[0] if chain else None
        keys.append(head.ref if head and ctx.pool.gate(head.provider) is not None else "")
    first = {key: keys.index(key) for key in keys}
    order = sorted(range(len(subtasks)), key=lambda i: (first[keys[i]], i) if keys[i] else (i, i))
    return [Send(subtasks[i].role, {"subtask": subtasks[i]}) for i in order]


# ---------------------------------------------------------------- fanned-out roles


def make_role_node(role_name: str) -> Any:
    @leaf
    async def role_node(state: SubtaskInput, runtime: Runtime[RunContext]) -> dict[str, Any]:
        ctx = runtime.context
        subtask = state["subtask"]
        if ctx.executor is not None:  # the work runs elsewhere (a Ray node); this process keeps the graph
            return {"results": [await ctx.executor.role_work(ctx, role_name, subtask)]}
        return {"results": [await role_work(ctx, role_name, subtask)]}

    role_node.__name__ = role_name
    return role_node


def subtask_files(ctx: RunContext, subtask: Subtask) -> list[SourceFile]:
    """The files a subtask is given (all of the workspace's when it names none; a debug task's
    named tests bring the modules they import)."""
    return task_files(ctx, subtask.files, ctx.roles.get(subtask.role))


async def role_work(ctx: RunContext, role_name: str, subtask: Subtask) -> CallRecord:
    """The work of a fanned-out role node: its model calls, its tool loop, the checks of its patches."""
    role = ctx.roles[role_name]
    files = subtask_files(ctx, subtask)
    data_class = ctx.data_class_of([f.path for f in files])
    chain = ctx.chain(role_name, data_class)
    extra: dict[str, Any] = {"node": role_name, "data_class": data_class}
    edit_checks: list[PatchCheck] = []
    if agentic(ctx, role):  # a tool loop, and the patches it proposes verified
        task = agent_task(ctx, role_name, subtask.id, role, files, subtask.instruction, chain, data_class)
        task.named = tuple(subtask.files)
        done = await run_agent(ctx, task)
        outcome, extra = done.outcome, {**extra, **done.extra}
        edit_checks = extra.pop("edit_checks")
    else:
        changes = changes_for(ctx, [f.path for f in files])
        user = user_message(role.prompt, role.output, goal=ctx.goal, instruction=subtask.instruction, changes=changes)
        context: dict[str, Any] = {}
        contract = file_contract(role.output, tuple(f.path for f in files))
        focus = focus_for(ctx, role, subtask.instruction, subtask.files)
        build = packed_messages(ctx, files, user, context, viewer=Viewer(role_name), focus=focus)
        outcome = await run_node(ctx, role_name, subtask.id, chain, build, contract)
        outcome.context = dict(context)
    checks = await check_patches(ctx, outcome) + edit_checks
    return record(subtask, outcome, checks, **extra)


def agent_task(
    ctx: RunContext,
    node: str,
    key: str,
    role: Role,
    files: list[SourceFile],
    instruction: str,
    chain: list[Route],
    data_class: str,
    node_models: str | None = None,
    settings: CallSettings | None = None,
) -> AgentTask:
    """A subtask for the tool loop, with this module's prompts and packing."""

    def user(edit_format: str) -> str:
        changes = changes_for(ctx, [f.path for f in files])
        return user_message(
            role.prompt, role.output, edit_format, goal=ctx.goal, instruction=instruction, changes=changes
        )

    viewer = Viewer(role.name, node_models)
    task = AgentTask(node, key, role, files, user, chain, data_class, node_models, settings)

    def packer(files: list[SourceFile], text: str, context: dict[str, Any], reserve: int) -> Any:
        focus = focus_for(ctx, role, instruction, task.named)
        return packed_messages(ctx, files, text, context, reserve, viewer=viewer, focus=focus)

    task.packer = packer
    task.instruction = instruction
    return task


# ---------------------------------------------------------------- aggregate


def make_aggregate_node(name: str = "aggregate") -> Any:
    @leaf
    async def aggregate_node(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        ctx = runtime.context
        results = [r for r in state.get("results", []) if not r.proposal_of]
        data_class = ctx.data_class_of([], results)  # the report repeats what every subtask saw
        chain = ctx.chain(PLANNER, data_class, node=name)

        def build(route: Route, bound: BoundModel) -> list[BaseMessage]:
            budget_chars = (route.context_window - ctx.max_output_tokens - 600) * 3
            user = user_message(
                ctx.roles[AGGREGATE].prompt, "aggregate", goal=ctx.goal, results=digest(results, budget_chars)
            )
            return [SystemMessage(system_message("")), HumanMessage(user)]

        subtask = Subtask(id=name, role=AGGREGATE, instruction="merge every output into one report", files=[])
        outcome = await run_node(ctx, name, name, chain, build, contract_for("aggregate"))
        return {"aggregate": record(subtask, outcome, node=name, data_class=data_class)}

    aggregate_node.__name__ = name
    return aggregate_node
