"""Calling models: one structured call, and a role's fallback chain of models.

`call_chain` tries each route of a chain in order. A route that fails (classified by
`failure.classify`) is recorded as a hop and the next route takes the subtask; the caller gets
either a validated output or every hop that failed. Invalid JSON gets one repair attempt on
the same model first.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel, ValidationError
from structlog import get_logger

from orchestrator.errors import ProviderError, StructuredOutputError
from orchestrator.failure import classify
from orchestrator.registry import CallSettings, ProviderConfig, ProviderKind, registry

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from orchestrator.catalog import Route

log = get_logger(__name__)
MessagesFor = Callable[["Route", "BoundModel"], list[BaseMessage]]


@dataclass
class BoundModel:
    """A chat model ready for one route, with the provider that built it."""

    route: Route
    model: BaseChatModel
    kind: ProviderKind
    config: ProviderConfig

    def count_tokens(self, text: str) -> int:
        return self.kind.count_tokens(self.model, text)


class ModelPool:
    """Builds chat models on first use (importing their SDK only then) and limits how many
    calls each provider serves at once."""

    def __init__(self, providers: dict[str, ProviderConfig], settings: CallSettings) -> None:
        self.providers = providers
        self.settings = settings
        self._models: dict[str, BoundModel] = {}
        self._limits: dict[str, asyncio.Semaphore] = {}

    def get(self, route: Route) -> BoundModel:
        if route.ref not in self._models:
            config = self.providers[route.provider]
            kind = registry.get(config.kind)
            model = kind.chat_model(route, config, self.settings)
            self._models[route.ref] = BoundModel(route=route, model=model, kind=kind, config=config)
        return self._models[route.ref]

    def limit(self, provider: str) -> asyncio.Semaphore:
        if provider not in self._limits:
            size = self.providers[provider].max_concurrency or 1_000_000
            self._limits[provider] = asyncio.Semaphore(size)
        return self._limits[provider]


@dataclass
class Usage:
    tokens_in: int = 0
    tokens_out: int = 0

    def add(self, message: AIMessage) -> None:
        meta: dict[str, Any] = dict(message.usage_metadata or {})
        self.tokens_in += int(meta.get("input_tokens", 0) or 0)
        self.tokens_out += int(meta.get("output_tokens", 0) or 0)


@dataclass
class ChainResult:
    output: dict[str, Any] | None = None
    route: Route | None = None
    hops: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    latency_ms: int = 0
    cost_usd: float | None = None
    context: dict[str, Any] = field(default_factory=dict)
    error: dict[str, str] | None = None

    @property
    def ok(self) -> bool:
        return self.output is not None


_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def parse_json(text: str) -> Any:
    """The JSON object in a model's answer, tolerating reasoning blocks and code fences."""
    text = _THINK.sub("", text).strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        text = text[start : end + 1]
    return json.loads(text)


def cost_of(route: Route, usage: Usage) -> float | None:
    if route.price is None:
        return 0.0 if route.provider == "local" else None
    return (usage.tokens_in * route.price.input + usage.tokens_out * route.price.output) / 1_000_000


async def call_structured(
    bound: BoundModel,
    messages: list[BaseMessage],
    schema: dict[str, Any],
    output_model: type[BaseModel],
    usage: Usage,
    timeout_s: float,
    check: Callable[[BaseModel], list[str]] | None = None,
) -> BaseModel:
    """Ask one model for JSON following `schema`; validate it; repair once if it is invalid."""
    kwargs = bound.kind.structured_kwargs(schema, output_model.__name__, bound.config)
    runnable = bound.model.bind(**kwargs)
    conversation = list(messages)
    problems: list[str] = []
    for attempt in (1, 2):
        answer = await asyncio.wait_for(runnable.ainvoke(conversation), timeout_s)
        if not isinstance(answer, AIMessage):
            raise StructuredOutputError(f"{bound.route.ref}: unexpected answer type", model=bound.route.ref)
        usage.add(answer)
        text = answer.text
        try:
            parsed = output_model.model_validate(parse_json(text))
            problems = check(parsed) if check else []
            if not problems:
                return parsed
        except json.JSONDecodeError as exc:
            problems = [f"not valid JSON: {exc.msg} at position {exc.pos}"]
        except ValidationError as exc:
            problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()][:8]
        log.info("model.invalid_output", model=bound.route.ref, attempt=attempt, problems=problems)
        if attempt == 1:
            conversation += [
                AIMessage(content=text),
                HumanMessage(
                    content="That answer is invalid: "
                    + "; ".join(problems)
                    + ". Answer again with only the corrected JSON object."
                ),
            ]
    raise StructuredOutputError(
        f"{bound.route.ref}: invalid output after one repair: {'; '.join(problems)}", model=bound.route.ref
    )


async def call_chain(
    pool: ModelPool,
    chain: list[Route],
    messages_for: MessagesFor,
    schema: dict[str, Any],
    output_model: type[BaseModel],
    check: Callable[[BaseModel], list[str]] | None = None,
    on_attempt: Callable[[Route], None] | None = None,
) -> ChainResult:
    """Try each route in order until one returns a valid output. Never raises ProviderError."""
    result = ChainResult()
    for route in chain:
        started = time.perf_counter()
        usage = Usage()
        try:
            bound = pool.get(route)
            messages = messages_for(route, bound)
            async with pool.limit(route.provider):
                if on_attempt:
                    on_attempt(route)
                started = time.perf_counter()  # model time, not time queued for the provider
                output = await call_structured(
                    bound, messages, schema, output_model, usage, pool.settings.timeout_s, check
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if _is_graph_signal(exc):
                raise
            error = classify(exc, route.ref)
            result.usage.tokens_in += usage.tokens_in
            result.usage.tokens_out += usage.tokens_out
            result.hops.append(
                {
                    "model": route.ref,
                    "error_kind": error.kind,
                    "message": error.message,
                    "latency_ms": int((time.perf_counter() - started) * 1000),
                }
            )
            log.warning("model.failed", model=route.ref, error_kind=error.kind, error=error.message)
            continue
        result.output = output.model_dump(mode="json")
        result.route = route
        result.usage.tokens_in += usage.tokens_in
        result.usage.tokens_out += usage.tokens_out
        result.latency_ms = int((time.perf_counter() - started) * 1000)
        result.cost_usd = cost_of(route, result.usage)
        return result
    last = result.hops[-1] if result.hops else {"error_kind": "config", "message": "no model in the chain"}
    result.error = {
        "kind": str(last["error_kind"]),
        "message": f"every model failed; last: {last['message']}",
    }
    return result


def _is_graph_signal(exc: BaseException) -> bool:
    """LangGraph interrupts are ordinary exceptions; they must pass through untouched."""
    from langgraph.errors import GraphBubbleUp

    return isinstance(exc, GraphBubbleUp) and not isinstance(exc, ProviderError)
