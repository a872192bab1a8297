"""Running a prepared workflow: build the run's context, compile and invoke the graph, decide
the exit code, write the outputs. Library code: it returns a RunOutcome, it never exits."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from orchestrator.output import SEVERITY_RANK, max_severity
from orchestrator.pool import ModelPool
from orchestrator.registry import CallSettings
from orchestrator.report import RESULT_SCHEMA_VERSION, write_outputs
from orchestrator.role import AGGREGATE, PLANNER, worker_roles
from orchestrator.state import Progress, RunContext, RunState, SilentProgress, Subtask
from orchestrator.workflow import DEFAULT_KEY, Workflow

log = structlog.get_logger(__name__)

EXIT_OK, EXIT_GATE, EXIT_PROVIDER = 0, 1, 3


@dataclass
class RunOptions:
    output_dir: Path | None = None  # None: the spec's output.dir, relative to the spec
    formats: list[str] | None = None
    write: bool = True
    progress: Progress = field(default_factory=SilentProgress)
    run_id: str | None = None


@dataclass
class RunOutcome:
    result: dict[str, Any]
    exit_code: int
    written: list[Path]


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def build_context(workflow: Workflow, run_id: str, progress: Progress) -> RunContext:
    spec = workflow.loaded.spec
    usable = set(workflow.worker_roles)
    roles = {name: role for name, role in workflow.roles.items() if name in usable or name in (PLANNER, AGGREGATE)}
    named = [r for r in spec.models if r in usable and r != DEFAULT_KEY]
    limits = spec.limits
    settings = CallSettings(
        max_output_tokens=limits.max_output_tokens,
        timeout_s=limits.timeout_s,
        retries=limits.retries,
        backoff_s=limits.backoff_s,
        max_wait_s=limits.max_wait_s,
        cooldown_after=limits.cooldown_after,
    )
    return RunContext(
        run_id=run_id,
        goal=spec.goal.strip(),
        workspace=workflow.loaded.workspace,
        roles=roles,
        chains=workflow.chains,
        files=workflow.files,
        pool=ModelPool(workflow.providers, settings),
        max_output_tokens=spec.limits.max_output_tokens,
        fallback_roles=named or sorted(worker_roles(roles)),
        node_chains=workflow.node_chains,
        progress=progress,
    )


def initial_state(workflow: Workflow) -> RunState:
    spec = workflow.loaded.spec
    state = RunState(goal=spec.goal.strip(), results=[])
    if spec.tasks:
        subtasks = [
            Subtask(id=task.id or f"t{i}", role=task.role, instruction=task.instruction.strip(), files=task.files)
            for i, task in enumerate(spec.tasks, 1)
        ]
        state["plan"] = {"source": "spec", "notes": [], "subtasks": subtasks, "call": None}
    return state


async def run_workflow_async(workflow: Workflow, options: RunOptions) -> RunOutcome:
    from orchestrator.compile import compile_graph
    from orchestrator.graph import recursion_limit

    run_id = options.run_id or new_run_id()
    structlog.contextvars.bind_contextvars(run_id=run_id)
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    context = build_context(workflow, run_id, options.progress)
    if workflow.graph is not None:
        graph = compile_graph(workflow.graph, sorted(worker_roles(context.roles))).compile()
        steps = recursion_limit(workflow.graph)
    else:  # a Python graph, built at validation with the same node factories
        built = workflow.python_graph
        graph = built.compile() if hasattr(built, "add_node") else built
        steps = 200
    log.info("run.started", spec=workflow.loaded.spec.name, graph=workflow.graph_name)
    config: Any = {"max_concurrency": workflow.loaded.spec.limits.concurrency, "recursion_limit": steps}
    final = await graph.ainvoke(initial_state(workflow), config=config, context=context)
    result = build_result(workflow, run_id, final, started_at, int((time.perf_counter() - started) * 1000))
    written: list[Path] = []
    if options.write:
        spec = workflow.loaded.spec
        out_dir = options.output_dir or (workflow.loaded.base_dir / spec.output.dir)
        written = write_outputs(result, workflow.roles, out_dir, options.formats or list(spec.output.formats))
    log.info("run.finished", status=result["status"], exit_code=result["exit_code"], **result["totals"])
    return RunOutcome(result=result, exit_code=result["exit_code"], written=written)


def run_workflow(workflow: Workflow, options: RunOptions | None = None) -> RunOutcome:
    return asyncio.run(run_workflow_async(workflow, options or RunOptions()))


def build_result(
    workflow: Workflow, run_id: str, final: dict[str, Any], started_at: datetime, duration_ms: int
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
    if failed:
        status, code = "provider_failure", EXIT_PROVIDER
    elif gate:
        status, code = "quality_gate", EXIT_GATE
    else:
        status, code = "ok", EXIT_OK
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
        "policy": {"excluded": workflow.excluded},
        "files": {
            "included": [f.path for f in workflow.files.files],
            "skipped": [{"path": p, "reason": r} for p, r in workflow.files.skipped],
        },
        "warnings": workflow.warnings,
    }


def totals(calls: list[Any]) -> dict[str, Any]:
    tokens_in = sum(c.get("tokens_in", 0) for c in calls)
    tokens_out = sum(c.get("tokens_out", 0) for c in calls)
    costs = [c.get("cost_usd") for c in calls if c.get("model")]
    known = all(cost is not None for cost in costs)
    by_model: dict[str, dict[str, Any]] = {}
    for call in calls:
        if not call.get("model"):
            continue
        entry = by_model.setdefault(call["model"], {"calls": 0, "tokens_in": 0, "tokens_out": 0, "latency_ms": 0})
        entry["calls"] += 1
        entry["tokens_in"] += call.get("tokens_in", 0)
        entry["tokens_out"] += call.get("tokens_out", 0)
        entry["latency_ms"] += call.get("latency_ms", 0)
    note = ""
    if any(c.get("cost_usd") == 0 for c in calls if c.get("model")):
        note = "Self-hosted models (embedded, Ollama, loopback) are costed at 0 USD: machine time is not priced."
    if not known:
        note += " Some API models have no price in the catalog: the total cost is unknown."
    return {
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "cost_usd": round(sum(c for c in costs if c is not None), 6) if known else None,
        "cost_note": note,
        "by_model": by_model,
    }
