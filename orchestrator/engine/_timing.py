"""A node's timing on the run's clock (models/timing.py): the `CallTiming` of its record, with
its model attempts and waits, the budget pause it resumed from, and its patch checks as spans."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from langgraph.types import interrupt

from orchestrator.engine.state import CallTiming, PatchCheck, Span
from orchestrator.models.chain import ChainResult
from orchestrator.models.timing import RunClock
from orchestrator.policy import redact_tree

if TYPE_CHECKING:
    from orchestrator.engine.context import RunContext


def call_timing(outcome: ChainResult) -> CallTiming | None:
    """When the node ran (up to now, its checks included), and its spans."""
    if outcome.clock is None:
        return None
    started = outcome.clock.ms(outcome.started_at)
    spans = [Span.model_validate(span) for span in outcome.spans]
    return CallTiming(started_ms=started, duration_ms=max(0, outcome.clock.ms() - started), spans=spans)


def budget_wait(clock: RunClock, paused_at_ms: int, resumed: float, key: str) -> dict[str, Any]:
    """The wait of a node the budget paused (at `paused_at_ms`) until a resume started it again."""
    duration = max(0, clock.ms(resumed) - paused_at_ms)
    return {"kind": "wait", "name": "budget", "started_ms": paused_at_ms, "duration_ms": duration, "detail": key}


def check_span(clock: RunClock, started: float, check: PatchCheck) -> dict[str, Any]:
    return {
        "kind": "check",
        "name": "git apply --check",
        "started_ms": clock.ms(started),
        "duration_ms": max(0, int((time.time() - started) * 1000)),
        "status": "ok" if check.valid else "failed",
        "detail": check.file,
    }


def pause_for_budget(ctx: RunContext, node: str, key: str, outcome: ChainResult) -> None:
    """The budget refused a call: pause the run here (a LangGraph interrupt: the pause is
    checkpointed with when it happened, and a resume with a larger budget returns from here)."""
    outcome.hops = redact_tree(outcome.hops, ctx.pool.secrets)
    ctx.progress.note(f"{key}: budget reached; the run stops here and can be resumed")
    message = (outcome.error or {}).get("message", "")
    interrupt({"reason": "budget", "node": node, "subtask": key, "message": message, "at_ms": ctx.pool.clock.ms()})


def resumed_wait(ctx: RunContext, key: str, started: float, outcome: ChainResult) -> None:
    """A node resumed from a budget pause waited from the pause to `started`: that wait is its
    first span."""
    paused_at = ctx.paused.pop(key, None)
    if paused_at is not None:
        outcome.spans.insert(0, budget_wait(ctx.pool.clock, paused_at, started, key))
