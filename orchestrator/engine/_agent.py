"""A role's bounded agent loop, inside its node: the model looks around with its tools, answers,
and the patches it proposes are verified by the spec's checks; a failed fix goes back to it with
the checks' output (`verify.reflections` times), then the next model of the chain gets the
subtask (a `verify_failed` hop).

Each turn is one model call through the chain machinery (retries, cooldowns, the budget reserved
per turn, the cache, record/replay): natively with the endpoint's tool calls where the provider
has them, else one grammar-constrained action per turn (`_actions`). The loop is bounded per
attempt by `max_turns` (its last turn must answer), `max_tool_calls`, and identical calls in a
row; each bound reached is recorded, and the model still answers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from orchestrator.catalog import Route
from orchestrator.checks import EditProblem, PatchVerdict, named_tests
from orchestrator.engine._actions import ANSWER_TOOL, action_contract, answer_only, native_tools
from orchestrator.engine._answers import answer_contract, edit_format, from_edits
from orchestrator.engine._loop import (
    Turns,
    add_usage,
    edits_reason,
    keep_answer,
    reflection_reason,
    reflection_text,
    tools_section,
)
from orchestrator.engine._timing import pause_for_budget, resumed_wait
from orchestrator.engine._tools import Toolbox, args_key
from orchestrator.engine.context import RunContext, node_finished
from orchestrator.engine.state import BoundHit, PatchCheck, ToolCall
from orchestrator.errors import NotRecorded
from orchestrator.models import BoundModel, CallSettings, Contract, ContractError, ToolOffer
from orchestrator.models._structured import parse_json
from orchestrator.models.chain import ChainResult, call_chain
from orchestrator.policy import CLASSES, redact_tree
from orchestrator.spec import Role
from orchestrator.spec.kinds import REPLACE_MODELS
from orchestrator.workspace import SourceFile

Build = Callable[[Route, BoundModel], list[BaseMessage]]
BOUNDS = ("max_turns", "max_tool_calls", "repeated_call")
TRANSCRIPT_MARGIN = 64


@dataclass
class AgentTask:
    """One subtask for the loop: who does it, on what, with which chain."""

    node: str  # the graph node (or role) name, for progress and logs
    key: str  # the subtask's label (t3, fix#2): recordings and patch ids use it
    role: Role
    files: list[SourceFile]  # packed into the prompt
    user: Callable[[str], str]  # the task message, for an edit format
    chain: list[Route]
    data_class: str
    node_models: str | None = None  # the graph node whose own models the chain is
    settings: CallSettings | None = None
    packer: Callable[[list[SourceFile], str, dict[str, Any], int], Build] | None = None
    instruction: str = ""  # the tests it names must go from fail to pass ("find why test_x fails")
    named: tuple[str, ...] = ()  # the files the task names (packed first)


@dataclass
class AgentResult:
    outcome: ChainResult
    extra: dict[str, Any] = field(default_factory=dict)  # CallRecord fields: turns, tool_calls, ...


def agentic(ctx: RunContext, role: Role) -> bool:
    """Whether a role runs through the loop: it has tools, or it writes patches (verified by the
    checks, or written as edits); any other role is one structured call."""
    return bool(usable_tools(ctx, role)) or role.kind in REPLACE_MODELS


def usable_tools(ctx: RunContext, role: Role) -> tuple[str, ...]:
    tools = tuple(t for t in role.tools if t != "run_check" or (ctx.verifier is not None and ctx.checks))
    return tools if (role.max_turns or ctx.agent.max_turns) > 1 else ()


async def run_agent(ctx: RunContext, task: AgentTask) -> AgentResult:
    """The subtask on each model of its chain until one answers (verified, when it has patches)."""
    total = ChainResult(clock=ctx.pool.clock, started_at=time.time())
    resumed_wait(ctx, task.key, total.started_at, total)  # a node resumed from a budget pause
    kept: _Kept | None = None
    started = time.perf_counter()
    all_calls: list[ToolCall] = []
    bounds: list[BoundHit] = []
    verdicts: list[PatchVerdict] = []
    serial = 0
    runs: list[_Attempts] = []
    for index, route in enumerate(task.chain):
        run = _Attempts(ctx, task, route)
        runs.append(run)
        try:
            outcome = await run.go(serial)
        except NotRecorded as exc:  # a replay without this tool or check result: as a call not recorded
            failure = {"model": route.ref, "error_kind": exc.kind, "message": exc.message, "attempts": 1}
            outcome = ChainResult(hops=[failure])
        serial = run.serial
        all_calls += run.calls
        bounds += run.bounds
        verdicts += run.verdicts
        add_usage(total, outcome)
        if not outcome.ok:
            total.hops += outcome.hops
            continue
        kept = _Kept(outcome, run)
        failed = run.failure
        if failed and index + 1 < len(task.chain):  # the next model gets the subtask
            hop = {"model": route.ref, "error_kind": "verify_failed", "message": failed, "attempts": run.attempt + 1}
            total.hops.append(hop)
            continue
        break
    if kept is not None:
        keep_answer(total, kept.outcome)
        total.context = kept.outcome.context
        final = kept.run.final_ids()
        verdicts = [v.model_copy(update=final[v.id]) if v.id in final else v for v in verdicts]
    else:
        last = total.hops[-1] if total.hops else {"error_kind": "config", "message": "no model in the chain"}
        total.error = {"kind": str(last["error_kind"]), "message": f"every model failed; last: {last['message']}"}
    secrets = ctx.pool.secrets
    total.output, total.hops, total.error = (redact_tree(x, secrets) for x in (total.output, total.hops, total.error))
    turns = sum(run.turns_total for run in runs)
    duration_ms = int((time.perf_counter() - started) * 1000)
    node_finished(ctx, task.node, task.key, total, duration_ms, turns=turns, tool_calls=len(all_calls))
    seen = kept.run.seen if kept else task.data_class
    edit_checks = [
        PatchCheck(file=problem.file, valid=False, message=f"edit not applied: {problem}")
        for problem in (kept.run.edit_problems if kept else [])
    ]
    extra = {
        "edit_checks": edit_checks,
        "turns": turns,
        "tool_calls": [ToolCall.model_validate(redact_tree(c.model_dump(), secrets)) for c in all_calls],
        "bounds": bounds,
        "reflections": kept.run.attempt if kept else 0,
        "verification": verdicts,
        "data_class": max(task.data_class, seen, key=CLASSES.index),
    }
    return AgentResult(total, extra)


@dataclass
class _Kept:
    outcome: ChainResult
    run: _Attempts


class _Attempts:
    """One model's conversation: its first answer and its reflections."""

    def __init__(self, ctx: RunContext, task: AgentTask, route: Route) -> None:
        self.ctx, self.task, self.route = ctx, task, route
        self.format = edit_format(task.role, route)
        tools = usable_tools(ctx, task.role)
        self.box = Toolbox(ctx, task.key, task.role.name, task.node_models, route, tools, self.format)
        self.parameters = self.box.parameters()
        self.native = bool(self.parameters) and ctx.pool.providers[route.provider].native_tools
        self.max_turns = task.role.max_turns or ctx.agent.max_turns
        paths = tuple(f.path for f in task.files)
        self.texts = {f.path: f.text for f in task.files}
        self.answer = answer_contract(task.role.output, paths, self.format)
        self.edits = (
            self.format == "replace" and isinstance(task.role.output, str) and task.role.output in REPLACE_MODELS
        )
        self.edit_problems: list[EditProblem] = []
        user = task.user(self.format)
        if self.parameters:
            user += "\n\n" + tools_section(self.box.describe(), self.max_turns, self.native)
        self.context: dict[str, Any] = {}
        assert task.packer is not None
        self.base = task.packer(task.files, user, self.context, reserve(route))
        self.transcript: list[BaseMessage] = []
        self.calls: list[ToolCall] = []
        self.bounds: list[BoundHit] = []
        self.verdicts: list[PatchVerdict] = []
        self.attempt = 0
        self.turns_total = 0
        self.failure = ""  # why the last answer's patches did not pass (the model gave up)
        self.seen = task.data_class
        self.serial = 0
        self._last_ids: list[str] = []

    def build(self, extra: list[BaseMessage]) -> Build:
        def messages(route: Route, bound: BoundModel) -> list[BaseMessage]:
            base = self.base(route, bound)
            used = sum(bound.count_tokens(m.text) for m in base)
            room = route.context_window - self.ctx.max_output_tokens - used - TRANSCRIPT_MARGIN
            return base + Turns.fit(self.transcript + extra, bound, max(room, 0))

        return messages

    async def go(self, serial: int) -> ChainResult:
        self.serial = serial
        total = ChainResult()
        while True:
            outcome = await self._answer()
            add_usage(total, outcome)
            total.hops += outcome.hops
            if not outcome.ok:
                return total
            keep_answer(total, outcome)
            total.context = dict(self.context)
            if self.edits:  # edits become diffs; those that do not apply go back to the model
                total.output, self.edit_problems = from_edits(self.task.role.kind, total.output or {}, self.texts)
            verdicts = await self._verify(total.output or {})
            reason = edits_reason(self.edit_problems) or reflection_reason(verdicts, self.task.role.kind)
            if not reason:
                self.failure = ""
                return total
            self.failure = reason
            if self.attempt >= self.ctx.agent.reflections:
                return total
            self.attempt += 1
            text = reflection_text(
                verdicts, reason, self._may_see_checks(), self.edit_problems, fence_key=self.ctx.fence_key
            )
            self.transcript += [AIMessage(content=json.dumps(outcome.output, ensure_ascii=False)), HumanMessage(text)]

    async def _answer(self) -> ChainResult:
        """Turns until the model answers (the last turn, or after a bound, it must)."""
        total = ChainResult()
        turns = Turns(self.max_turns, self.ctx.agent)
        while True:
            turns.next()
            self.turns_total += 1
            stop = turns.stop_reason()
            if stop is not None or not self.parameters:
                if stop is not None and self.parameters:
                    self._bound(stop, turns)
                told = f"Tools are no longer available ({stop}). Answer now with the JSON described above."
                note: list[BaseMessage] = [HumanMessage(told)] if stop else []
                outcome = await self._call(self.build(note), answer_only(self.answer))
                add_usage(total, outcome)
                total.hops += outcome.hops
                if outcome.ok:
                    keep_answer(total, outcome)
                    total.output = (outcome.output or {}).get("answer")
                return total
            must_call = self.task.role.tool_choice == "required" and turns.turn == 1 and self.attempt == 0
            if self.native:
                tools = native_tools(self.parameters, self.box.texts(), None if must_call else self.answer.schema)
                outcome = await self._call(self.build([]), self.answer, ToolOffer(tools, must_call))
            else:
                contract = action_contract(self.answer, self.parameters, may_answer=not must_call)
                outcome = await self._call(self.build([]), contract)
            add_usage(total, outcome)
            total.hops += outcome.hops
            if not outcome.ok:
                return total
            output = outcome.output or {}
            if "answer" in output:  # a grammar turn that answered
                keep_answer(total, outcome)
                total.output = output["answer"]
                return total
            requested = output.get("tool_calls") or ([output["tool_call"]] if "tool_call" in output else [])
            answered = self._native_answer(requested, str(output.get("content") or "")) if self.native else None
            if answered is not None:
                keep_answer(total, outcome)
                total.output = answered
                return total
            if self.native and not requested:  # text that is not a valid answer: it must answer now
                turns.done("the model stopped calling tools")
                continue
            await self._run_tools(requested, str(output.get("content") or ""), turns)

    def _native_answer(self, requested: list[dict[str, Any]], content: str) -> dict[str, Any] | None:
        """A native turn's answer: its `answer` call with valid arguments, or a valid answer as text
        (an invalid `answer` call stays among the calls: the model is told what is wrong)."""
        for call in requested:
            if call.get("name") == ANSWER_TOOL:
                try:
                    return self.answer.validate(call.get("args") or {})
                except ValueError:
                    continue
        return None if requested else self._parse_answer(content)

    def _parse_answer(self, content: str) -> dict[str, Any] | None:
        try:
            return self.answer.validate(parse_json(content))
        except ValueError:
            return None

    async def _run_tools(self, requested: list[dict[str, Any]], content: str, turns: Turns) -> None:
        replies: list[BaseMessage] = []
        asked: list[dict[str, Any]] = []
        for index, call in enumerate(requested):
            name, args = str(call.get("name")), dict(call.get("args") or {})
            call_id = str(call.get("id") or f"call_{turns.turn}_{index}")
            refusal = turns.admit(args_key(name, args)) if name != ANSWER_TOOL else None
            started_ms, started = self.ctx.offset_ms(), time.perf_counter()
            if name == ANSWER_TOOL:  # an answer whose arguments did not validate
                text, status, detail = self._invalid_answer(args), "error", "invalid answer"
            elif refusal is not None:
                bound, why = refusal
                self._bound(bound, turns, why)
                text, status, detail = f"Not run: {why}.", "refused", why
            else:
                result = await self.box.call(name, args)
                text, status, detail = result.text, result.status, result.detail
                if result.seen:
                    self.seen = max(self.seen, result.seen, key=CLASSES.index)
            self.calls.append(
                ToolCall(
                    turn=turns.turn,
                    attempt=self.attempt,
                    model=self.route.ref,
                    tool=self.box.label(name),
                    args=args,
                    status=status,  # type: ignore[arg-type]
                    detail=detail[:300],
                    started_ms=started_ms,
                    duration_ms=int((time.perf_counter() - started) * 1000),
                )
            )
            shown = f"{name} {json.dumps(args, ensure_ascii=False)[:300]}"
            asked.append({"name": name, "args": args, "id": call_id})
            if self.native:
                replies.append(ToolMessage(content=text, tool_call_id=call_id))
            else:
                replies.append(HumanMessage(f"Turn {turns.turn} of {turns.limit}. Result of {shown}:\n{text}"))
        if self.native:
            self.transcript.append(AIMessage(content=content, tool_calls=asked))
        else:  # the action as the model wrote it
            action = {"tool": asked[0]["name"], **asked[0]["args"]}
            self.transcript.append(AIMessage(content=json.dumps(action, ensure_ascii=False)))
        self.transcript += replies

    def _invalid_answer(self, args: dict[str, Any]) -> str:
        try:
            self.answer.validate(args)
        except ContractError as exc:
            return f"Invalid answer: {'; '.join(exc.problems)}. Call {ANSWER_TOOL} again with corrected arguments."
        except ValueError as exc:
            return f"Invalid answer: {exc}. Call {ANSWER_TOOL} again with corrected arguments."
        return "Answer again."

    def _bound(self, bound: str, turns: Turns, detail: str = "") -> None:
        if bound not in BOUNDS or any(b.bound == bound and b.attempt == self.attempt for b in self.bounds):
            return
        detail = detail or f"turn {turns.turn} of {turns.limit}: the model had to answer"
        hit = {"bound": bound, "model": self.route.ref, "attempt": self.attempt, "turn": turns.turn, "detail": detail}
        self.bounds.append(BoundHit.model_validate(hit))

    async def _call(self, build: Build, contract: Contract, tools: ToolOffer | None = None) -> ChainResult:
        """One turn; a budget refusal pauses the run here (resumable), as every node's call does."""
        ctx, task = self.ctx, self.task
        while True:
            outcome = await call_chain(
                ctx.pool,
                [self.route],
                build,
                contract,
                on_attempt=lambda route: ctx.progress.started(task.node, task.key, route.ref),
                settings=task.settings,
                tools=tools,
            )
            if not (outcome.error and outcome.error.get("kind") == "budget") or not ctx.pausable:
                return outcome
            pause_for_budget(ctx, task.node, task.key, outcome)

    async def _verify(self, output: dict[str, Any]) -> list[PatchVerdict]:
        verifier = self.ctx.verifier
        patches = [*(output.get("patches") or []), *([output["fix"]] if isinstance(output.get("fix"), dict) else [])]
        if verifier is None or not patches or not verifier.judged:
            self._last_ids = []
            return []
        self.serial += 1
        ids = [f"{self.task.key}-{i}@{self.serial}" for i in range(1, len(patches) + 1)]
        named, key, route = named_tests(self.task.instruction), self.task.key, self.route.ref
        diffs = [(pid, str(p.get("diff", ""))) for pid, p in zip(ids, patches, strict=True)]
        found = await asyncio.gather(*(verifier.verify(i, key, route, self.attempt, d, named) for i, d in diffs))
        self._last_ids = ids
        marked = [v.model_copy(update={"final": False}) for v in found]
        self.verdicts += marked
        return marked

    def final_ids(self) -> dict[str, dict[str, Any]]:
        """The kept answer's verdicts: final, with the ids its patches have in the outputs."""
        return {pid: {"final": True, "id": pid.split("@")[0]} for pid in self._last_ids}

    def _may_see_checks(self) -> bool:
        top = self.ctx.workspace_class
        return self.ctx.may_see(self.route, self.task.role.name, top, self.task.node_models)


def reserve(route: Route) -> int:
    """Tokens of a model's window kept for a loop's transcript when its files are packed."""
    return min(max(route.context_window // 4, 1024), 16384)
