"""A node's timing on the run's clock (models/timing.py): the `CallTiming` of its record, with
its model attempts and waits, the budget pause it resumed from, and its patch checks as spans."""

from __future__ import annotations

import time
from typing import Any

from orchestrator.engine.state import CallTiming, PatchCheck, Span
from orchestrator.models.chain import ChainResult
from orchestrator.models.timing import RunClock


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
