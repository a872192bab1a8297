"""Every timed event of a call, for the HTML timeline and OpenTelemetry alike: the spans of its
`timing` (model attempts, waits, patch checks), and any other record the call carries that says
when it started and how long it took (`started_ms` and `duration_ms`: a tool call, a check run),
so new kinds of work show up on the timeline and in the traces without either knowing them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from orchestrator.engine.state import CallRecord, Span

# a list field named like this holds events of this kind (anything else: the field's name)
KINDS = {"tool_calls": "tool", "tools": "tool", "check_runs": "check", "checks": "check", "verification": "check"}
NAME_FIELDS = ("name", "tool", "check", "command", "file")
STATUS_FIELDS = ("status", "verdict", "outcome")


def timed_events(call: CallRecord) -> list[Span]:
    """The call's events in start order."""
    events = list(call.timing.spans) if call.timing else []
    for field in type(call).model_fields:
        if field == "timing":
            continue
        value = getattr(call, field)
        if isinstance(value, list):
            events += [_event(field, item) for item in value if _timed(item)]
    return sorted(events, key=lambda e: (e.started_ms, -e.duration_ms))


def _timed(item: Any) -> bool:
    return isinstance(item, BaseModel) and all(
        isinstance(getattr(item, name, None), int | float) for name in ("started_ms", "duration_ms")
    )


def _event(field: str, item: BaseModel) -> Span:
    name = next((str(v) for f in NAME_FIELDS if (v := getattr(item, f, None)) not in (None, "")), field)
    status = next((str(v) for f in STATUS_FIELDS if (v := getattr(item, f, None)) not in (None, "")), "ok")
    valid = getattr(item, "valid", None)
    if isinstance(valid, bool) and status == "ok" and not valid:
        status = "failed"
    tokens = [getattr(item, name, None) for name in ("tokens_in", "tokens_out")]
    return Span(
        kind=KINDS.get(field, field),
        name=name,
        started_ms=max(0, int(getattr(item, "started_ms", 0))),
        duration_ms=max(0, int(getattr(item, "duration_ms", 0))),
        status=status,
        tokens_in=tokens[0] if isinstance(tokens[0], int) else None,
        tokens_out=tokens[1] if isinstance(tokens[1], int) else None,
    )


def run_end_ms(calls: list[CallRecord], duration_ms: int) -> int:
    """Where the run's time axis ends: its last event, or its duration when that is later."""
    ends = [duration_ms]
    for call in calls:
        if call.timing:
            ends.append(call.timing.started_ms + call.timing.duration_ms)
        ends += [e.started_ms + e.duration_ms for e in timed_events(call)]
    return max(ends)
