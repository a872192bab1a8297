"""What an eval keeps of each run: its result.json read back (the model's patch, its tokens, cost,
time and tool turns, per role), a row for a run that never ran, and the recorded times a replay
reports (a replay measures nothing: its clock, and the cost of models priced by the hour, are the
recorded run's)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.outputs import RunResult
from orchestrator.outputs.evaluation import EvalRun, RoleUsage

FINISHED = ("ok", "quality_gate")
TIMES = "eval-times.json"  # in a recording: each run's clock


def read_result(path: Path) -> RunResult | None:
    try:
        return RunResult.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, ValidationError):
        return None


def model_patch(result: RunResult) -> str:
    """The patches of the answers the run kept, one after the other (git applies them in turn)."""
    diffs = [patch.diff for call in result.verdicts() for patch in call.patches()]
    return "".join(diff if diff.endswith("\n") else diff + "\n" for diff in diffs if diff.strip())


def usage_of(result: RunResult) -> dict[str, Any]:
    """EvalRun's fields of what the run used: tokens, cost, time, tool turns, per role."""
    calls = result.calls()
    roles = []
    for role, usage in sorted(result.totals.by_role.items()):
        mine = [call for call in calls if call.role == role]
        roles.append(
            RoleUsage(
                role=role,
                models=sorted({call.model for call in mine if call.model}),
                calls=usage.calls,
                tokens_in=usage.tokens_in,
                tokens_out=usage.tokens_out,
                cost_usd=usage.cost_usd,
                latency_ms=usage.latency_ms,
                turns=sum(call.turns for call in mine),
                tool_calls=sum(len(call.tool_calls) for call in mine),
                clocked=any(call.cost_basis == "time" for call in mine),
            )
        )
    return {
        "run_id": result.run_id,
        "status": result.status,
        "exit_code": result.exit_code,
        "tokens_in": result.totals.tokens_in,
        "tokens_out": result.totals.tokens_out,
        "cost_usd": result.totals.cost_usd,
        "duration_ms": result.duration_ms,
        "tool_turns": sum(call.turns for call in calls),
        "tool_calls": sum(len(call.tool_calls) for call in calls),
        "roles": roles,
    }


def why_failed(result: RunResult) -> str:
    errors = [f"{call.id}: {call.error.message}" for call in result.calls() if call.error is not None]
    return f"the run ended {result.status}" + (f" ({errors[0][:300]})" if errors else "")


def clock_of(run: EvalRun) -> dict[str, Any]:
    """What a replay cannot measure: the run's time, its roles' model time, and the cost of the
    roles priced by time."""
    return {
        "duration_ms": run.duration_ms,
        "cost_usd": run.cost_usd,
        "roles": {
            u.role: {"latency_ms": u.latency_ms, "cost_usd": u.cost_usd, "clocked": u.clocked} for u in run.roles
        },
    }


def with_clock(run: EvalRun, recorded: Mapping[str, Any] | None) -> EvalRun:
    """A replayed run with the recorded run's clock (unchanged when none was recorded)."""
    if not isinstance(recorded, Mapping):
        return run
    roles_then = recorded.get("roles") if isinstance(recorded.get("roles"), Mapping) else {}
    roles = []
    clocked = False
    for usage in run.roles:
        then = roles_then.get(usage.role) if isinstance(roles_then, Mapping) else None
        if not isinstance(then, Mapping):
            roles.append(usage)
            continue
        update: dict[str, Any] = {"latency_ms": int(then.get("latency_ms") or 0)}
        if then.get("clocked"):
            clocked = True
            update["cost_usd"] = then.get("cost_usd")
        roles.append(usage.model_copy(update=update))
    update = {"duration_ms": int(recorded.get("duration_ms") or 0), "roles": roles}
    if clocked:
        update["cost_usd"] = recorded.get("cost_usd")
    return run.model_copy(update=update)


def write_clocks(directory: Path, runs: list[EvalRun]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    clocks = {run.label: clock_of(run) for run in runs if run.run_id is not None}
    (directory / TIMES).write_text(json.dumps(clocks, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def read_clocks(directory: Path) -> dict[str, Any]:
    try:
        found = json.loads((directory / TIMES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}
