"""One model call: inside the budget (its worst case reserved, then settled), bounded by its
timeout, with the tokens it used counted. A native tool turn is such a call with the tools
offered; its answer is the model's text and the tool calls it made, not yet a structured answer."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from orchestrator.errors import ResidencyRefused, StructuredOutputError
from orchestrator.models.budget import Budget
from orchestrator.models.cost import price_call
from orchestrator.models.pool import BoundModel
from orchestrator.models.registry import ToolOffer
from orchestrator.policy.serving import verify


@dataclass
class Usage:
    tokens_in: int = 0
    tokens_out: int = 0
    calls: int = 0
    cached: int = 0  # calls answered from the result cache
    served: dict[str, Any] | None = None  # who the last answer says served it (a gateway's report)

    def add(self, message: AIMessage) -> None:
        meta: dict[str, Any] = dict(message.usage_metadata or {})
        self.tokens_in += int(meta.get("input_tokens", 0) or 0)
        self.tokens_out += int(meta.get("output_tokens", 0) or 0)
        self.calls += 1
        self.cached += 1 if message.response_metadata.get("cached") else 0
        served = message.response_metadata.get("served")
        self.served = dict(served) if isinstance(served, dict) else self.served


@dataclass
class ModelCall:
    """Call options passed straight to ainvoke: a RunnableBinding per call costs more than the call."""

    model: Any
    kwargs: dict[str, Any]

    async def ainvoke(self, messages: list[BaseMessage]) -> Any:
        return await self.model.ainvoke(messages, **self.kwargs)


async def budgeted_call(
    bound: BoundModel,
    runnable: Any,
    conversation: list[BaseMessage],
    timeout_s: float,
    budget: Budget | None,
    max_output_tokens: int,
) -> AIMessage:
    """One model call inside the budget: reserve its worst case, then settle what it used."""
    reservation = None
    if budget is not None and budget.active:
        prompt = sum(bound.count_tokens(m.text) for m in conversation)
        worst = price_call(bound, prompt, max_output_tokens, timeout_s) or 0.0
        reservation = budget.reserve(bound.route.ref, prompt + max_output_tokens, worst)
    answer: Any = None
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):  # no extra task per call, unlike wait_for
            answer = await runnable.ainvoke(conversation)
    finally:
        if reservation is not None and budget is not None:
            used = Usage()
            if isinstance(answer, AIMessage):
                used.add(answer)
            cost = price_call(bound, used.tokens_in, used.tokens_out, time.perf_counter() - started) or 0.0
            budget.settle(reservation, used.tokens_in + used.tokens_out, cost)
    if not isinstance(answer, AIMessage):
        raise StructuredOutputError(f"{bound.route.ref}: unexpected answer type", model=bound.route.ref)
    check_served(bound, answer)
    return answer


def check_served(bound: BoundModel, answer: AIMessage) -> None:
    """A pinned route's answer must report that it was served where it was pinned: otherwise it
    is discarded (ResidencyRefused, error kind `policy`), before anything reads it."""
    pin = bound.route.pin
    if pin is None:
        return
    served = answer.response_metadata.get("served")
    why = verify(pin, served if isinstance(served, dict) else None)
    if why:
        error = ResidencyRefused(f"{bound.route.ref}: answer discarded: {why}", model=bound.route.ref)
        error.served = dict(served) if isinstance(served, dict) else {}
        raise error


async def tool_turn(
    bound: BoundModel,
    messages: list[BaseMessage],
    offer: ToolOffer,
    usage: Usage,
    timeout_s: float,
    budget: Budget | None,
    max_output_tokens: int,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One turn of a native tool loop: `{"content": text, "tool_calls": [{name, args, id}]}`."""
    kwargs = {**bound.kind.tool_kwargs(offer.tools, bound.config, offer.required), **(extra or {})}
    answer = await budgeted_call(bound, ModelCall(bound.model, kwargs), messages, timeout_s, budget, max_output_tokens)
    usage.add(answer)
    calls = [
        {"name": c["name"], "args": dict(c["args"]), "id": c.get("id") or f"call_{i}"}
        for i, c in enumerate(answer.tool_calls)
    ]
    return {"content": answer.text, "tool_calls": calls}
