"""result.json: everything a run did, machine-readable, with a versioned JSON Schema
(`orchestrator schema --result`). Statuses and exit codes are decided here, in one place:

    status            exit  meaning
    ok                0     finished; no finding at or above fail_on
    quality_gate      1     finished; a finding at or above fail_on
    provider_failure  3     a subtask or the aggregation failed on every model of its chain
    budget_exceeded   4     limits.max_cost_usd or limits.max_tokens stopped the run
    interrupted       130   Ctrl-C (SIGINT) or SIGTERM stopped the run; what finished is kept
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.output import SEVERITY_RANK, max_severity
from orchestrator.report import RESULT_SCHEMA_VERSION

if TYPE_CHECKING:
    from orchestrator.budget import Budget
    from orchestrator.workflow import Workflow

EXIT_CODES = {"ok": 0, "quality_gate": 1, "provider_failure": 3, "budget_exceeded": 4, "interrupted": 130}


def build_result(
    workflow: Workflow,
    run_id: str,
    final: dict[str, Any],
    started_at: datetime,
    duration_ms: int,
    budget: Budget | None = None,
    interrupted: bool = False,
    pending: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec = workflow.loaded.spec
    plan = final.get("plan") or {"source": "graph", "notes": [], "subtasks": [], "call": None}
    order = {s["id"]: i for i, s in enumerate(plan["subtasks"])}
    subtasks = sorted(final.get("results", []), key=lambda r: order.get(r["id"], len(order)))  # stable
    aggregate = final.get("aggregate")
    verdicts = [s for s in subtasks if not s.get("proposal_of")]  # an ensemble's merge speaks for it
    findings = [f for s in verdicts for f in (s.get("output") or {}).get("findings") or []]
    worst = max_severity(findings)
    failed = [s for s in [*subtasks, aggregate] if s and s["status"] != "ok"]
    gate = spec.fail_on != "none" and worst is not None and SEVERITY_RANK[worst] >= SEVERITY_RANK[spec.fail_on]
    if interrupted:
        status = "interrupted"
    elif budget is not None and budget.exhausted:
        status = "budget_exceeded"
    elif failed:
        status = "provider_failure"
    elif gate:
        status = "quality_gate"
    else:
        status = "ok"
    code = EXIT_CODES[status]
    calls = [s for s in subtasks] + ([aggregate] if aggregate else []) + ([plan["call"]] if plan.get("call") else [])
    return {
        "schema_version": RESULT_SCHEMA_VERSION,
        "run_id": run_id,
        "spec": {"name": spec.name, "path": str(workflow.loaded.path), "graph": workflow.graph_name},
        "goal": spec.goal,
        "workspace": str(workflow.loaded.workspace),
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_ms": duration_ms,
        "status": status,
        "exit_code": code,
        "fail_on": spec.fail_on,
        "max_severity": worst,
        "plan": plan,
        "subtasks": subtasks,
        "aggregate": aggregate,
        "totals": totals(calls),
        "budget": _budget(budget),
        "pending": pending or [],
        "policy": {"excluded": workflow.excluded},
        "files": {
            "included": [f.path for f in workflow.files.files],
            "skipped": [{"path": p, "reason": r} for p, r in workflow.files.skipped],
        },
        "warnings": workflow.warnings,
    }


def _budget(budget: Budget | None) -> dict[str, Any]:
    if budget is None:
        return {"max_cost_usd": None, "max_tokens": None, "spent_cost_usd": 0.0, "spent_tokens": 0, "exhausted": None}
    return {
        "max_cost_usd": budget.max_cost_usd,
        "max_tokens": budget.max_tokens,
        "spent_cost_usd": round(budget.spent_cost, 6),
        "spent_tokens": budget.spent_tokens,
        "exhausted": budget.exhausted,
    }


def totals(calls: list[Any]) -> dict[str, Any]:
    """Tokens, latency, cost and calls for the run, and per model, per role and per node."""
    made = [c for c in calls if c.get("model") or c.get("fallbacks")]
    costs = [c.get("cost_usd") for c in made if c.get("model")]
    known = all(cost is not None for cost in costs)
    note = ""
    if any(c.get("cost_basis") == "time" for c in made):
        note = (
            "Self-hosted models (embedded, Ollama, loopback) are costed at their provider's usd_per_hour "
            "of model time (default 0: machine time is not priced unless you set it)."
        )
    if not known:
        note += " Some API models have no price in the catalog or the spec: the total cost is unknown."
    return {
        "tokens_in": sum(c.get("tokens_in", 0) for c in made),
        "tokens_out": sum(c.get("tokens_out", 0) for c in made),
        "cost_usd": round(sum(c for c in costs if c is not None), 6) if known else None,
        "cost_note": note.strip(),
        "cached_calls": sum(1 for c in made if c.get("cached")),
        "by_model": _group(made, lambda c: c.get("model")),
        "by_role": _group(made, lambda c: c.get("role")),
        "by_node": _group(made, lambda c: c.get("node") or c.get("role")),
    }


def _group(calls: list[Any], key: Any) -> dict[str, dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for call in calls:
        name = key(call)
        if not name:
            continue
        entry = groups.setdefault(name, {"calls": 0, "tokens_in": 0, "tokens_out": 0, "latency_ms": 0, "cost_usd": 0.0})
        entry["calls"] += 1
        entry["tokens_in"] += call.get("tokens_in", 0)
        entry["tokens_out"] += call.get("tokens_out", 0)
        entry["latency_ms"] += call.get("latency_ms", 0)
        cost = call.get("cost_usd")
        entry["cost_usd"] = None if cost is None or entry["cost_usd"] is None else round(entry["cost_usd"] + cost, 6)
    return groups


# ---------------------------------------------------------------- the documented schema


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HopDoc(_Doc):
    """A model that was tried and left: why, after how many attempts and how long a wait."""

    model: str
    error_kind: str = Field(description="unavailable | config | invalid_output | cooldown | budget | provider")
    message: str
    status: int | None = Field(default=None, description="the HTTP status, when there was one")
    attempts: int = 1
    waited_s: float = 0.0
    latency_ms: int = 0


class PatchCheckDoc(_Doc):
    file: str
    valid: bool = Field(description="git apply --check accepts the diff in the workspace")
    message: str


class CallDoc(_Doc):
    """One model call of the run: a subtask, a graph node, a proposal, the plan or the aggregation."""

    id: str
    role: str
    instruction: str
    files: list[str]
    status: Literal["ok", "failed"]
    model: str | None = Field(description="provider/model that answered")
    catalog_id: str | None = None
    fallbacks: list[HopDoc]
    tokens_in: int
    tokens_out: int
    latency_ms: int
    attempts: int = 0
    waited_s: float = 0.0
    structured_mode: str | None = None
    cached: bool = Field(default=False, description="answered from the result cache, no model call")
    cost_basis: str | None = Field(default=None, description="tokens (priced) | time (self-hosted, per hour) | null")
    cost_usd: float | None
    output: dict[str, Any] | None = Field(description="the validated answer, in the role's output kind")
    error: dict[str, str] | None
    context: dict[str, Any] = Field(description="files given, truncated or omitted; the token budget")
    checks: list[PatchCheckDoc]
    node: str | None = None
    iteration: int | None = None
    proposal_of: str | None = None
    proposals: list[str] | None = None
    data_class: str | None = Field(default=None, description="public | internal | confidential: what the call saw")


class PlanDoc(_Doc):
    source: Literal["spec", "planner", "fallback", "graph"]
    notes: list[str]
    subtasks: list[dict[str, Any]]
    call: CallDoc | None


class ResultDoc(_Doc):
    """result.json, schema version 1."""

    schema_version: Literal[1]
    run_id: str
    spec: dict[str, str]
    goal: str
    workspace: str
    started_at: str
    duration_ms: int
    status: Literal["ok", "quality_gate", "provider_failure", "budget_exceeded", "interrupted"]
    exit_code: int
    fail_on: str
    max_severity: str | None
    plan: PlanDoc
    subtasks: list[CallDoc]
    aggregate: CallDoc | None
    totals: dict[str, Any]
    budget: dict[str, Any]
    pending: list[dict[str, Any]] = Field(description="calls stopped by the budget; `resume` runs them")
    egress: dict[str, Any] = Field(description="hosts contacted: models, requests, bytes, the policy rule")
    checkpoint: dict[str, Any] = Field(description="where the run is checkpointed and what it cost")
    policy: dict[str, Any]
    files: dict[str, list[Any]]
    warnings: list[str]


def result_json_schema() -> dict[str, Any]:
    schema = ResultDoc.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Sovereign Orchestrator result.json"
    return schema
