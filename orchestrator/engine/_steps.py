"""Graph node kinds beyond the coding workflow: a role on one instruction (`role`), one role
on several models in parallel (`ensemble`) and the aggregator that merges their proposals
(`merge`, Mixture-of-Agents: proposers + aggregator). All use the chains, limits, accounting
and records of node.py, so a custom graph gets them for free."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from langgraph.types import Send

from orchestrator.catalog import Route
from orchestrator.engine._agent import agentic, run_agent
from orchestrator.engine._answers import file_contract
from orchestrator.engine._changes import changes_for, review_files
from orchestrator.engine._nodes import (
    agent_task,
    check_patches,
    leaf,
    node_settings,
    record,
    run_node,
)
from orchestrator.engine._packer import Viewer, focus_for, packed_messages
from orchestrator.engine._packing import digest
from orchestrator.engine._prompt import render, system_message, user_message
from orchestrator.engine.context import RunContext
from orchestrator.engine.state import CallRecord, PatchCheck, ProposalInput, RunState, Subtask
from orchestrator.models import BoundModel, contract_for, merged_contract
from orchestrator.models.chain import ChainResult
from orchestrator.spec import PLANNER
from orchestrator.spec.graphfile import NodeSpec
from orchestrator.workspace import SourceFile, glob_match

MERGE_PROMPT = """Overall goal: $goal

Several models answered the same task independently ("$instruction"). Their answers, as JSON:

$results

Merge them into one answer of the same form: keep what several answers support or what the
files confirm, drop what the files contradict, and list in `disagreements` every point where the
answers contradict each other (an empty list if they agree)."""


def _files(ctx: RunContext, spec: NodeSpec) -> list[SourceFile]:
    if not spec.files:
        return list(review_files(ctx))
    return [f for f in ctx.files.files if any(glob_match(f.path, pattern) for pattern in spec.files)]


def _named(spec: NodeSpec, files: list[SourceFile]) -> tuple[str, ...]:
    """The files a node's spec names (none: it was given the whole workspace)."""
    return tuple(f.path for f in files) if spec.files else ()


def _task_text(ctx: RunContext, spec: NodeSpec, inputs: dict[str, CallRecord]) -> str:
    instruction = render(spec.instruction or "$goal", goal=ctx.goal)
    if not inputs:
        return instruction
    earlier = digest(list(inputs.values()), 6000)
    return f"{instruction}\n\nResults of earlier steps (JSON, data only):\n{earlier}"


def _label(name: str, iteration: int) -> str:
    return name if iteration <= 1 else f"{name}#{iteration}"


def _chain(ctx: RunContext, name: str, role: str) -> list[Route]:
    return ctx.chain(role, ctx.base_class, node=name)


def make_step_node(name: str, spec: NodeSpec, inputs: list[str]) -> Any:
    """A `role` node: the node's role on its instruction, reading the outputs of `inputs`."""
    role_name = spec.role or ""

    @leaf
    async def step_node(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        ctx = runtime.context
        role = ctx.roles[role_name]
        iteration = state.get("visits", {}).get(name, 0) + 1
        earlier = {n: r for n, r in state.get("outputs", {}).items() if n in inputs}
        files = _files(ctx, spec)
        instruction = _task_text(ctx, spec, earlier)
        label = _label(name, iteration)
        settings = node_settings(ctx, spec.retries, spec.timeout_s)
        data_class = ctx.data_class_of([f.path for f in files], list(earlier.values()))
        chain = ctx.chain(role_name, data_class, node=name)
        extra: dict[str, Any] = {"node": name, "iteration": iteration, "data_class": data_class}
        own = name if name in ctx.chains.nodes else None
        edit_checks: list[PatchCheck] = []
        if agentic(ctx, role):  # a tool loop, and the patches it proposes verified
            task = agent_task(ctx, name, label, role, files, instruction, chain, data_class, own, settings)
            task.named = _named(spec, files)
            done = await run_agent(ctx, task)
            outcome, extra = done.outcome, {**extra, **done.extra}
            edit_checks = extra.pop("edit_checks")
        else:
            changes = changes_for(ctx, [f.path for f in files])
            user = user_message(role.prompt, role.output, goal=ctx.goal, instruction=instruction, changes=changes)
            contract = file_contract(role.output, tuple(f.path for f in files))
            context: dict[str, Any] = {}
            focus = focus_for(ctx, role, instruction, _named(spec, files))
            build = packed_messages(ctx, files, user, context, viewer=Viewer(role_name, name), focus=focus)
            outcome = await run_node(ctx, name, label, chain, build, contract, settings=settings)
            outcome.context = dict(context)
        subtask = Subtask(id=label, role=role_name, instruction=instruction, files=[f.path for f in files])
        checks = await check_patches(ctx, outcome) + edit_checks
        result = record(subtask, outcome, checks, **extra)
        return {"results": [result], "outputs": {name: result}, "visits": {name: 1}}

    step_node.__name__ = name
    return step_node


# ---------------------------------------------------------------- ensembles


def proposer_count(ctx: RunContext, name: str, spec: NodeSpec) -> int:
    return spec.proposers or max(2, len(_chain(ctx, name, spec.role or "")))


def ensemble_sends(name: str, spec: NodeSpec, inputs: list[str], state: RunState, ctx: RunContext) -> list[Send]:
    """The Sends that start an ensemble: one per proposer, all in parallel."""
    iteration = state.get("visits", {}).get(name, 0) + 1
    earlier = {n: r for n, r in state.get("outputs", {}).items() if n in inputs}
    payload = [
        ProposalInput(proposer=i, iteration=iteration, inputs=earlier) for i in range(proposer_count(ctx, name, spec))
    ]
    return [Send(name, item) for item in payload]


def make_proposer_node(name: str, spec: NodeSpec) -> Any:
    """One proposer of an ensemble: proposer i starts at the i-th model of the chain (the rest
    remain its fallbacks) and, when models repeat, samples with a different seed."""
    role_name = spec.role or ""

    @leaf
    async def proposer_node(state: ProposalInput, runtime: Runtime[RunContext]) -> dict[str, Any]:
        ctx = runtime.context
        role = ctx.roles[role_name]
        index = state["proposer"]
        files = _files(ctx, spec)
        data_class = ctx.data_class_of([f.path for f in files], list(state["inputs"].values()))
        chain = ctx.chain(role_name, data_class, node=name)
        rotated = chain[index % len(chain) :] + chain[: index % len(chain)] if chain else []
        instruction = _task_text(ctx, spec, state["inputs"])
        changes = changes_for(ctx, [f.path for f in files])
        user = user_message(role.prompt, role.output, goal=ctx.goal, instruction=instruction, changes=changes)
        contract = file_contract(role.output, tuple(f.path for f in files))
        context: dict[str, Any] = {}
        label = f"{_label(name, state['iteration'])}.{index + 1}"
        focus = focus_for(ctx, role, instruction, _named(spec, files))
        build = packed_messages(ctx, files, user, context, viewer=Viewer(role_name, name), focus=focus)
        settings = node_settings(ctx, spec.retries, spec.timeout_s)
        variant = index // max(1, len(chain))  # the same model again: another seed
        outcome = await run_node(ctx, name, label, rotated, build, contract, settings=settings, variant=variant)
        outcome.context = dict(context)
        subtask = Subtask(id=label, role=role_name, instruction=instruction, files=[f.path for f in files])
        result = record(
            subtask,
            outcome,
            await check_patches(ctx, outcome),
            node=name,
            iteration=state["iteration"],
            proposal_of=name,
            data_class=data_class,
        )
        return {"results": [result]}

    proposer_node.__name__ = name
    return proposer_node


def make_merge_node(name: str, spec: NodeSpec, ensemble: NodeSpec) -> Any:
    """The aggregator of an ensemble: one answer of the same kind, plus the disagreements."""
    of = spec.of or ""
    role_name = ensemble.role or ""

    @leaf
    async def merge_node(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        ctx = runtime.context
        role = ctx.roles[role_name]
        iteration = state.get("visits", {}).get(of, 0) + 1
        proposals = [r for r in state.get("results", []) if r.proposal_of == of and r.iteration == iteration]
        answered = [r for r in proposals if r.ok]
        instruction = render(ensemble.instruction or "$goal", goal=ctx.goal)
        contract = merged_contract(contract_for(role.output))
        data_class = ctx.data_class_of([], proposals)
        chain = ctx.chain(PLANNER, data_class, node=name)

        def build(route: Route, bound: BoundModel) -> list[BaseMessage]:
            budget_chars = (route.context_window - ctx.max_output_tokens - 600) * 3
            text = render(MERGE_PROMPT, goal=ctx.goal, instruction=instruction, results=digest(answered, budget_chars))
            shape = user_message("", role.output).strip()
            return [SystemMessage(system_message("")), HumanMessage(f"{text}\n\n{shape}")]

        label = _label(name, iteration)
        subtask = Subtask(id=label, role=role_name, instruction=f"merge {len(answered)} proposals", files=[])
        if answered:
            outcome = await run_node(
                ctx, name, label, chain, build, contract, settings=node_settings(ctx, spec.retries, spec.timeout_s)
            )
        else:
            outcome = ChainResult(error={"kind": "no_proposals", "message": "every proposer failed"})
        result = record(
            subtask,
            outcome,
            await check_patches(ctx, outcome),
            node=name,
            iteration=iteration,
            proposals=[r.id for r in proposals],
            data_class=data_class,
        )
        return {"results": [result], "outputs": {name: result, of: result}, "visits": {name: 1, of: 1}}

    merge_node.__name__ = name
    return merge_node
