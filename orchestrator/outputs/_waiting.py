"""Where the run's model time went, for report.md: waiting for a model (its own queue behind other
calls, or room on its provider) against the model serving calls. On a busy machine most of a
run may be waiting; the report says so instead of calling slow failures."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.engine.context import NOTE_QUEUED_S, waiting_text
from orchestrator.outputs._escape import cell
from orchestrator.outputs.result import RunResult

Add = Callable[[str], None]
LISTED_S = 1.0  # a call that waited this long is listed


def markdown_waiting(result: RunResult, add: Add) -> None:
    totals = result.totals
    if totals.queued_s < NOTE_QUEUED_S:
        return
    share = totals.queued_s / max(totals.queued_s + totals.served_s, 1e-9)
    add("## Waiting\n")
    add(
        f"Calls waited {totals.queued_s:.0f} s for their models and were served for {totals.served_s:.0f} s: "
        f"{share:.0%} of the model time was waiting (a busy machine, or calls queued behind others). "
        "Time waiting does not count against `limits.timeout_s`.\n"
    )
    calls = [c for c in [result.plan.call, *result.subtasks, result.aggregate] if c]
    for call in calls:
        if call.queued_s >= LISTED_S:
            model = call.model or (call.fallbacks[-1].model if call.fallbacks else "its model")
            add(f"- {cell(call.id)}: {cell(waiting_text(call.queued_s, call.served_s, model))}")
    add("")
