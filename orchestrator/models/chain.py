"""Calling models: one structured call, retries on one route, and a role's fallback chain.

There is exactly one retry layer, here: SDK clients are built with their own retries off.
Transient failures (refused, timeouts, 429, 5xx, malformed responses) are retried with
exponential backoff (Retry-After honoured) up to `limits.retries` times, then the next model of
the chain takes the subtask. Configuration failures (401/403, unknown model) fall back at once.
Invalid structured output gets one repair attempt on the same model, then falls back. A
provider that keeps failing is cooled down for the rest of the run (see breaker.py).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.messages import BaseMessage
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from orchestrator.errors import (
    BudgetExceeded,
    ProviderCooledDown,
    ProviderError,
    ProviderTimeout,
    ResidencyRefused,
    StructuredOutputError,
    storage_failure,
)
from orchestrator.log import get_logger
from orchestrator.models._call import Usage, tool_turn
from orchestrator.models._serving import patience
from orchestrator.models._structured import Check, call_structured
from orchestrator.models.contract import Contract
from orchestrator.models.cost import cost_basis, price_call
from orchestrator.models.failure import classify
from orchestrator.models.pool import BoundModel, ModelPool
from orchestrator.models.registry import CallSettings, ToolOffer
from orchestrator.models.timing import Attempts, RunClock, SpanLog
from orchestrator.policy.serving import served_record

if TYPE_CHECKING:
    from orchestrator.catalog import Route

log = get_logger(__name__)
MessagesFor = Callable[["Route", BoundModel], list[BaseMessage]]


@dataclass
class ChainResult:
    output: dict[str, Any] | None = None
    route: Route | None = None
    hops: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    latency_ms: int = 0
    attempts: int = 0  # on the model that answered (more than 1 when retries were needed)
    waited_s: float = 0.0  # backoff slept on that model
    mode: str | None = None  # the structured-output mode that model answered in
    host: str | None = None  # the host of the provider's pool (base_urls) that answered
    cached: bool = False  # every call of the answer came from the result cache
    cost_basis: str | None = None  # tokens (a price) | time (self-hosted, by the hour) | None
    cost_usd: float | None = None
    context: dict[str, Any] = field(default_factory=dict)
    error: dict[str, str] | None = None
    spans: list[dict[str, Any]] = field(default_factory=list)  # model attempts and waits (timing.py)
    clock: RunClock | None = None  # the run's clock, and when (epoch s) the node started calling
    started_at: float = 0.0
    served: dict[str, Any] | None = None  # who served the answer and where, and the request's pinning

    @property
    def ok(self) -> bool:
        return self.output is not None


async def call_route(
    pool: ModelPool,
    bound: BoundModel,
    messages: list[BaseMessage],
    contract: Contract,
    usage: Usage,
    attempts: Attempts,
    settings: CallSettings,
    check: Check | None = None,
    extra: dict[str, Any] | None = None,
    tools: ToolOffer | None = None,
) -> dict[str, Any]:
    """One route with retries for transient failures; raises a classified ProviderError.
    `extra` are call options for the provider (e.g. Ollama's keep_alive); with `tools`, one turn
    of a native tool loop (its text and tool calls, see `_call.tool_turn`) instead of an answer."""
    route = bound.route

    def retryable(exc: BaseException) -> bool:
        if not isinstance(exc, ProviderError) or not exc.retryable:
            return False
        return exc.retry_after is None or exc.retry_after <= settings.max_wait_s

    def pause(attempt_number: int, error: BaseException | None) -> float:
        backoff: float = settings.backoff_s * 2.0 ** (attempt_number - 1) * (0.5 + random.random() / 2)
        after = float(getattr(error, "retry_after", None) or 0.0)
        return min(settings.max_wait_s, max(backoff, after))

    # a model on this machine that timed out was slow, not stuck (stall_s stops a stuck one): its
    # retry gets twice the time, which its cached prompt and the machine's load may need
    limit = [settings.timeout_s]

    def longer(error: BaseException | None) -> None:
        if isinstance(error, ProviderTimeout) and error.local:
            limit[0] *= 2

    def cooled() -> None:
        why = pool.breaker.why_open(route.provider, route.ref)
        if why:
            raise ProviderCooledDown(f"{route.ref}: skipped, cooled down for this run ({why})", model=route.ref)

    async def once() -> dict[str, Any]:
        attempts.count += 1
        cooled()
        wall = time.time()
        async with pool.lease(route) as host:  # a pool: this attempt's host (a retry may take another)
            if host is not None:
                attempts.hosts.append(host.name)
                if attempts.log is not None:
                    attempts.log.wait("slot", wall, time.time() - wall, f"{route.ref} on {host.name}")
                cooled()  # every host may have cooled down while this call waited
            at = pool.on(bound, host)
            try:
                if tools is not None:
                    budget, most = pool.budget, pool.settings.max_output_tokens
                    output = await tool_turn(at, messages, tools, usage, limit[0], budget, most, extra)
                else:
                    output = await _negotiated(pool, at, messages, contract, usage, limit[0], check, extra)
            except (StructuredOutputError, BudgetExceeded):
                raise
            except ProviderError as known:
                pool.failed(route, host, known)
                raise
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # classified in one table (failure.py)
                if _is_graph_signal(exc) or storage_failure(exc):
                    raise
                classified = classify(exc, route.ref)
                pool.failed(route, host, classified)
                raise classified from exc
            pool.succeeded(route, host)
            return output

    try:  # the first attempt needs no retry machinery
        return await once()
    except ProviderError as error:
        if settings.retries == 0 or not retryable(error):
            raise
        first_pause, first_error = pause(1, error), error
    longer(first_error)
    attempts.waited(first_pause, first_error, route.ref)
    log.info("model.retry", model=route.ref, attempt=1, wait_s=round(first_pause, 2))
    await asyncio.sleep(first_pause)

    def wait(state: RetryCallState) -> float:
        return pause(state.attempt_number + 1, state.outcome.exception() if state.outcome else None)

    def slept(state: RetryCallState) -> None:
        longer(state.outcome.exception() if state.outcome else None)
        seconds = state.next_action.sleep if state.next_action else 0.0
        attempts.waited(seconds, state.outcome.exception() if state.outcome else None, route.ref)
        log.info("model.retry", model=route.ref, attempt=state.attempt_number + 1, wait_s=round(seconds, 2))

    retrying = AsyncRetrying(
        stop=stop_after_attempt(settings.retries),
        wait=wait,
        retry=retry_if_exception(retryable),
        before_sleep=slept,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await once()
    raise AssertionError("unreachable: tenacity reraises the last error")


async def _negotiated(
    pool: ModelPool,
    bound: BoundModel,
    messages: list[BaseMessage],
    contract: Contract,
    usage: Usage,
    timeout_s: float,
    check: Check | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Call in the endpoint's best structured-output mode, stepping down when it rejects one."""
    rejects = bound.kind.rejects_format
    while True:
        mode = pool.mode(bound)
        try:
            return await call_structured(
                bound,
                mode,
                messages,
                contract,
                usage,
                timeout_s,
                check,
                pool.budget,
                pool.settings.max_output_tokens,
                extra,
            )
        except Exception as exc:
            if not rejects(exc):
                raise
            following = pool.downgrade(bound, mode)
            if following is None:
                raise
            log.info("model.structured_mode", model=bound.route.ref, rejected=mode, now=following)


async def call_chain(
    pool: ModelPool,
    chain: list[Route],
    messages_for: MessagesFor,
    contract: Contract,
    check: Check | None = None,
    on_attempt: Callable[[Route], None] | None = None,
    settings: CallSettings | None = None,
    variant: int = 0,
    tools: ToolOffer | None = None,
) -> ChainResult:
    """Try each route in order until one returns a valid output. Never raises ProviderError.

    `settings` overrides the run's (a graph node's own retries or timeout); `variant` > 0 asks
    for a differently seeded model (the proposers of an ensemble); `tools` makes the call one turn
    of a native tool loop (the output is the model's text and tool calls)."""
    settings = settings or pool.settings
    result = ChainResult(clock=pool.clock, started_at=time.time())
    spans = SpanLog(pool.clock, result.spans)
    for route in chain:
        usage = Usage()
        attempts = Attempts(log=spans)
        started, wall = time.perf_counter(), time.time()
        try:
            why = pool.breaker.why_open(route.provider, route.ref)
            if why:
                raise ProviderCooledDown(f"{route.ref}: skipped, cooled down for this run ({why})", model=route.ref)
            bound = pool.get(route, variant)
            messages, wall = messages_for(route, bound), time.time()  # queued for a slot from here
            async with pool.slot(route) as unloads:
                if on_attempt:
                    on_attempt(route)
                spans.wait("slot", wall, time.time() - wall, route.ref)
                usage.queued_s += time.time() - wall  # waiting for the provider's room counts as waiting
                started, wall = time.perf_counter(), time.time()  # model time, not time queued for the provider
                unload = bound.kind.unload_kwargs() if unloads else {}
                with patience(settings.stall_s, settings.queue_wait_s):
                    output = await call_route(
                        pool, bound, messages, contract, usage, attempts, settings, check, unload, tools
                    )
        except asyncio.CancelledError:
            raise
        except BudgetExceeded as exc:  # no further call: not this model, not the next one
            spans.queued(route.ref, usage.queue_waits)
            spans.model(route.ref, wall, "budget", attempts.count, (usage.tokens_in, usage.tokens_out), attempts.hosts)
            result.hops.append({"model": route.ref, "error_kind": "budget", "message": exc.message, "attempts": 0})
            break
        except Exception as exc:  # classified in one table (failure.py), then recorded as a hop
            # our own storage failing (a recording on a full disk) is not the model's failure
            if _is_graph_signal(exc) or storage_failure(exc):
                raise
            error = classify(exc, route.ref)
            result.usage.merge(usage)
            result.hops.append(
                {
                    "model": route.ref,
                    "error_kind": error.kind,
                    "message": error.message,
                    "status": error.status,
                    "attempts": attempts.count,
                    "waited_s": round(attempts.waited_s, 3),
                    "latency_ms": int((time.perf_counter() - started) * 1000),
                    **usage.split(),
                }
            )
            if isinstance(error, ResidencyRefused):  # what the discarded answer reported, and the pinning
                host = attempts.hosts[-1] if attempts.hosts else None
                record = served_record(route, pool.providers[route.provider], host, error.served)
                result.hops[-1]["served"] = record
                _account(pool, route.ref, record, "refused", error.message)
            log.warning("model.failed", model=route.ref, error_kind=error.kind, error=error.message)
            spans.queued(route.ref, usage.queue_waits)
            spans.model(
                route.ref, wall, error.kind, attempts.count, (usage.tokens_in, usage.tokens_out), attempts.hosts
            )
            continue
        spans.queued(route.ref, usage.queue_waits)
        spans.model(route.ref, wall, "ok", attempts.count, (usage.tokens_in, usage.tokens_out), attempts.hosts)
        result.output = output
        result.route = route
        result.usage.merge(usage)
        result.latency_ms = int((time.perf_counter() - started) * 1000)
        result.attempts = attempts.count
        result.waited_s = round(attempts.waited_s, 3)
        result.mode = "tools" if tools is not None else pool.mode(bound)
        result.host = attempts.hosts[-1] if attempts.hosts else None
        result.cached = usage.calls > 0 and usage.cached == usage.calls
        result.cost_basis = cost_basis(bound)
        result.cost_usd = price_call(bound, result.usage.tokens_in, result.usage.tokens_out, result.latency_ms / 1000)
        served = served_record(route, pool.providers[route.provider], result.host, usage.served)
        _account(pool, route.ref, served, "used", "")
        # the call's record says where it ran when that is known or was asked for (this machine's
        # calls and routes of unknown place are in the egress report's calls only)
        known = served["pinned"] or served["reported"] or served["region"] not in ("this machine", "unknown")
        result.served = served if known else None
        return result
    last = result.hops[-1] if result.hops else {"error_kind": "config", "message": "no model in the chain"}
    result.error = {
        "kind": str(last["error_kind"]),
        "message": f"every model failed; last: {last['message']}",
    }
    return result


def _account(pool: ModelPool, model: str, record: dict[str, Any], verdict: str, reason: str) -> None:
    """One answer in the egress report's calls: who served it, where, and whether it was used."""
    if pool.egress is not None:
        pool.egress.served({"model": model, **record, "verdict": verdict, "reason": reason})


def _is_graph_signal(exc: BaseException) -> bool:
    """LangGraph interrupts are ordinary exceptions; they must pass through untouched."""
    from langgraph.errors import GraphBubbleUp

    return isinstance(exc, GraphBubbleUp) and not isinstance(exc, ProviderError)
