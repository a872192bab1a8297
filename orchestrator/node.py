"""Node factories. Node names equal role names, so logs, Mermaid and specs agree.

- `plan_node`: tasks from the spec, or the planner's plan, or a fallback plan (said so).
- `make_role_node(role)`: one subtask on the role's fallback chain; the same factory serves
  built-in roles and the roles a spec adds.
- `aggregate_node`: the planner's models merge every output into one report.
"""

from __future__ import annotations

import json
import time
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from langgraph.types import Send
from pydantic import BaseModel
from structlog import get_logger

from orchestrator.catalog import Route
from orchestrator.chain import ChainResult, call_chain
from orchestrator.output import OUTPUT_MODELS, Plan, output_schema, restrict_files
from orchestrator.patch import check_patch
from orchestrator.pool import BoundModel
from orchestrator.prompt import system_message, user_message
from orchestrator.role import AGGREGATE, PLANNER, worker_roles
from orchestrator.state import RunContext, RunState, Subtask, SubtaskInput, SubtaskResult
from orchestrator.workspace import pack_files

log = get_logger(__name__)
PROMPT_MARGIN = 64  # tokens kept free beyond the estimate of the prompt


def _record(subtask: Subtask, outcome: ChainResult, checks: list[dict[str, Any]] | None = None) -> SubtaskResult:
    route = outcome.route
    return SubtaskResult(
        id=subtask["id"],
        role=subtask["role"],
        instruction=subtask["instruction"],
        files=subtask["files"],
        status="ok" if outcome.ok else "failed",
        model=route.ref if route else None,
        catalog_id=route.catalog_id if route else None,
        fallbacks=outcome.hops,
        tokens_in=outcome.usage.tokens_in,
        tokens_out=outcome.usage.tokens_out,
        latency_ms=outcome.latency_ms,
        attempts=outcome.attempts,
        waited_s=outcome.waited_s,
        structured_mode=outcome.mode,
        cost_usd=outcome.cost_usd,
        output=outcome.output,
        error=outcome.error,
        context=outcome.context,
        checks=checks or [],
    )


async def _run(
    ctx: RunContext,
    node: str,
    key: str,
    kind: str,
    chain: list[Route],
    build: Any,
    check: Any = None,
    output_model: type[BaseModel] | None = None,
    schema: dict[str, Any] | None = None,
) -> ChainResult:
    """Call a chain for one node with progress and the canonical `node.finished` log line."""
    started = time.perf_counter()
    outcome = await call_chain(
        ctx.pool,
        chain,
        build,
        schema or output_schema(kind),
        output_model or OUTPUT_MODELS[kind],
        check=check,
        on_attempt=lambda route: ctx.progress.started(node, key, route.ref),
    )
    duration_ms = int((time.perf_counter() - started) * 1000)
    model = outcome.route.ref if outcome.route else None
    tokens = outcome.usage.tokens_in + outcome.usage.tokens_out
    ctx.progress.finished(node, key, "ok" if outcome.ok else "failed", model, duration_ms, tokens)
    log.info(
        "node.finished",
        node=node,
        subtask=key,
        status="ok" if outcome.ok else "failed",
        model=model,
        fallbacks=len(outcome.hops),
        duration_ms=duration_ms,
        tokens_in=outcome.usage.tokens_in,
        tokens_out=outcome.usage.tokens_out,
    )
    return outcome


# ---------------------------------------------------------------- plan


def _plan_schema(ctx: RunContext) -> dict[str, Any]:
    schema = output_schema("plan")
    item = schema["properties"]["subtasks"]["items"]
    item["properties"]["role"] = {"type": "string", "enum": sorted(worker_roles(ctx.roles))}
    paths = [f.path for f in ctx.files.files]
    if paths:
        item["properties"]["files"]["items"] = {"type": "string", "enum": paths}
    schema["properties"]["subtasks"]["minItems"] = 1
    return schema


def fallback_subtasks(ctx: RunContext) -> list[Subtask]:
    """One subtask per role named in the spec's models (every worker role when none is)."""
    roles = ctx.fallback_roles
    return [Subtask(id=f"t{i}", role=r, instruction=ctx.goal, files=[]) for i, r in enumerate(roles, 1)]


def clean_plan(ctx: RunContext, plan: Plan) -> tuple[list[Subtask], list[str]]:
    """Keep planned subtasks whose role and files exist; give them unique ids."""
    notes: list[str] = []
    known_files = {f.path for f in ctx.files.files}
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


async def plan_node(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    if state.get("plan"):  # tasks given in the spec were planned before the graph started
        return {}
    roles_text = "\n".join(f"- {r.name}: {r.description}" for r in worker_roles(ctx.roles).values())
    files_text = "\n".join(f"- {f.path}" for f in ctx.files.files) or "(no files)"

    def build(route: Route, bound: BoundModel) -> list[BaseMessage]:
        user = user_message(ctx.roles[PLANNER].prompt, "plan", goal=ctx.goal, roles=roles_text, file_list=files_text)
        return [SystemMessage(system_message("")), HumanMessage(user)]

    outcome = await _run(ctx, "plan", "plan", "plan", ctx.chains[PLANNER], build, schema=_plan_schema(ctx))
    call = {k: v for k, v in _record(Subtask(id="plan", role=PLANNER, instruction="", files=[]), outcome).items()}
    subtasks: list[Subtask] = []
    notes: list[str] = []
    if outcome.ok and outcome.output is not None:
        subtasks, notes = clean_plan(ctx, Plan.model_validate(outcome.output))
    if subtasks:
        return {"plan": {"source": "planner", "notes": notes, "subtasks": subtasks, "call": call}}
    reason = "the planner's plan was empty or invalid" if outcome.ok else "the planner failed"
    notes.append(f"{reason}; fell back to one subtask per role")
    ctx.progress.note(notes[-1])
    return {"plan": {"source": "fallback", "notes": notes, "subtasks": fallback_subtasks(ctx), "call": call}}


def dispatch(state: RunState) -> list[Send]:
    """Fan out: one Send per subtask to the node of its role (run in parallel)."""
    return [Send(subtask["role"], {"subtask": subtask}) for subtask in state["plan"]["subtasks"]]


# ---------------------------------------------------------------- roles


def make_role_node(role_name: str) -> Any:
    async def role_node(state: SubtaskInput, runtime: Runtime[RunContext]) -> dict[str, Any]:
        ctx = runtime.context
        subtask = state["subtask"]
        role = ctx.roles[role_name]
        by_path = ctx.files.by_path()
        wanted = [by_path[p] for p in subtask["files"] if p in by_path]
        ordered = wanted or ctx.files.files
        context: dict[str, Any] = {}

        def build(route: Route, bound: BoundModel) -> list[BaseMessage]:
            user = user_message(role.prompt, role.output, goal=ctx.goal, instruction=subtask["instruction"])
            fixed = bound.count_tokens(system_message("") + user) + PROMPT_MARGIN
            budget = route.context_window - ctx.max_output_tokens - fixed
            packed = pack_files(ordered, max(budget, 0), bound.count_tokens)
            context.clear()
            context.update(packed.as_dict(), budget=max(budget, 0), model=route.ref)
            return [SystemMessage(system_message(packed.text)), HumanMessage(user)]

        schema = restrict_files(output_schema(role.output), [f.path for f in ordered])
        outcome = await _run(ctx, role_name, subtask["id"], role.output, ctx.chains[role_name], build, schema=schema)
        outcome.context = dict(context)
        return {"results": [_record(subtask, outcome, _check_patches(ctx, outcome.output))]}

    role_node.__name__ = role_name
    return role_node


def _check_patches(ctx: RunContext, output: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not output:
        return []
    patches = list(output.get("patches") or [])
    if output.get("fix"):
        patches.append(output["fix"])
    return [check_patch(ctx.workspace, p["file"], p["diff"]).as_dict() for p in patches]


# ---------------------------------------------------------------- aggregate


def digest(results: list[SubtaskResult], budget_chars: int) -> str:
    """Subtask outputs as compact JSON, each shortened evenly to fit the aggregator's window."""
    items = [
        {"id": r["id"], "role": r["role"], "model": r.get("model"), "status": r["status"], "output": r.get("output")}
        for r in sorted(results, key=lambda r: r["id"])
    ]
    share = max(200, budget_chars // max(1, len(items)))
    lines = []
    for item in items:
        text = json.dumps(item, ensure_ascii=False)
        lines.append(text if len(text) <= share else text[: share - 20] + " ...(shortened)")
    return "\n".join(lines)


async def aggregate_node(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    results = state.get("results", [])

    def build(route: Route, bound: BoundModel) -> list[BaseMessage]:
        budget_tokens = route.context_window - ctx.max_output_tokens - 600
        user = user_message(
            ctx.roles[AGGREGATE].prompt, "aggregate", goal=ctx.goal, results=digest(results, budget_tokens * 3)
        )
        return [SystemMessage(system_message("")), HumanMessage(user)]

    subtask = Subtask(id="aggregate", role=AGGREGATE, instruction="merge every output into one report", files=[])
    outcome = await _run(ctx, AGGREGATE, "aggregate", "aggregate", ctx.chains[PLANNER], build)
    return {"aggregate": _record(subtask, outcome)}
