"""Deciding a finished run's status and exit code, and assembling its typed result. Statuses map
to exit codes in one table (orchestrator.errors.ExitStatus):

    status            exit  meaning
    ok                0     finished; no finding at or above fail_on, every kept patch verified
    quality_gate      1     finished; a finding at or above fail_on, or (verify.require) a proposed
                            patch that is not verified
    provider_failure  3     a subtask or the aggregation failed on every model of its chain
    policy_refused    5     ... and one of its answers was discarded for the serving rules
    budget_exceeded   4     limits.max_cost_usd or limits.max_tokens stopped the run
    interrupted       130   Ctrl-C (SIGINT), 143 for SIGTERM; what finished is kept
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from orchestrator.engine.state import CallRecord, PlanRecord
from orchestrator.errors import ExitStatus, RunStatus
from orchestrator.outputs.result import (
    BudgetReport,
    CheckpointReport,
    EgressReport,
    FilesReport,
    PolicyReport,
    RoleInfo,
    RunResult,
    SkippedFile,
    SpecRef,
    Totals,
    UsageTotals,
)
from orchestrator.runtime._placed import diff_report
from orchestrator.runtime._shape import graph_report, model_infos, source_excerpts
from orchestrator.runtime.verify import gated, required
from orchestrator.spec.kinds import at_or_above, max_severity

if TYPE_CHECKING:
    from orchestrator.checks import VerificationReport
    from orchestrator.models import Budget
    from orchestrator.workflow import Workflow


def run_status(
    subtasks: list[CallRecord],
    aggregate: CallRecord | None,
    fail_on: str,
    budget: Budget | None,
    interrupted: bool,
    gate: str = "",
) -> RunStatus:
    """The one decision of how a run ended (precedence: interrupted, budget, failure, gate);
    `gate` is verify.require's reason to fail the run, when it has one."""
    worst = max_severity(f.severity for s in subtasks if not s.proposal_of for f in s.findings())
    if interrupted:
        return "interrupted"
    failed = [s for s in [*subtasks, *([aggregate] if aggregate else [])] if not s.ok]
    if any(hop.error_kind == "policy" for s in failed for hop in s.fallbacks):
        return "policy_refused"  # no conforming model answered where an answer was refused for residency
    if budget is not None and budget.exhausted:
        return "budget_exceeded"
    if failed:
        return "provider_failure"
    if (worst is not None and at_or_above(worst, fail_on)) or gate:
        return "quality_gate"
    return "ok"


def build_result(
    workflow: Workflow,
    run_id: str,
    final: dict[str, Any],
    started_at: datetime,
    duration_ms: int,
    budget: Budget | None = None,
    signal_name: str | None = None,
    pending: list[dict[str, Any]] | None = None,
    checkpoint: CheckpointReport | None = None,
    egress: EgressReport | None = None,
    shape: Any = None,
    files: list[Any] | None = None,
    clock_origin: float | None = None,
    verification: VerificationReport | None = None,
) -> RunResult:
    """The typed result of a run from its final state; `signal_name` is set when a signal stopped it.
    `shape` is the compiled graph's (runtime._shape), `files` the files as the models saw them."""
    spec = workflow.loaded.spec
    plan: PlanRecord = final.get("plan") or PlanRecord(source="graph")
    order = {s.id: i for i, s in enumerate(plan.subtasks)}
    subtasks: list[CallRecord] = sorted(final.get("results", []), key=lambda r: order.get(r.id, len(order)))
    aggregate: CallRecord | None = final.get("aggregate")
    if verification is not None:
        verification = gated(verification, required(workflow.loaded))
    gate = verification.gate if verification is not None else ""
    status = run_status(subtasks, aggregate, spec.fail_on, budget, signal_name is not None, gate)
    result = RunResult(
        run_id=run_id,
        spec=SpecRef(name=spec.name, path=str(workflow.loaded.path), graph=workflow.graph_name),
        goal=spec.goal,
        workspace=str(workflow.loaded.workspace),
        started_at=started_at.isoformat(timespec="seconds"),
        duration_ms=duration_ms,
        status=status,
        exit_code=int(ExitStatus.of_run(status, signal_name)),
        fail_on=spec.fail_on,
        max_severity=max_severity(f.severity for s in subtasks if not s.proposal_of for f in s.findings()),
        plan=plan,
        subtasks=subtasks,
        aggregate=aggregate,
        totals=totals([*subtasks, *([aggregate] if aggregate else []), *([plan.call] if plan.call else [])]),
        budget=_budget(budget),
        pending=pending or [],
        egress=egress or EgressReport(),
        checkpoint=checkpoint or CheckpointReport(backend="off", durability="sync", writes=0, ms=0.0),
        policy=PolicyReport.model_validate(
            {
                "excluded": workflow.chains.excluded_report(),
                "rules": [line.as_dict() for line in workflow.policy_lines],
                "untrusted": workflow.operator.untrusted,
                "why_untrusted": workflow.operator.why_untrusted,
            }
        ),
        files=FilesReport(
            included=[f.path for f in workflow.files.files],
            skipped=[SkippedFile(path=p, reason=r) for p, r in workflow.files.skipped],
        ),
        warnings=list(workflow.warnings),
        roles={
            name: RoleInfo(output=role.kind, description=role.description, lang=role.lang, dir=role.dir)
            for name, role in workflow.roles.items()
        },
        graph=graph_report(workflow, shape, plan, [*subtasks, *([aggregate] if aggregate else [])]) if shape else None,
        models=model_infos(workflow),
        sources=source_excerpts(files or [], subtasks),
        clock_origin=datetime.fromtimestamp(clock_origin, UTC).isoformat(timespec="milliseconds")
        if clock_origin
        else None,
        verification=verification,
        diff=diff_report(workflow, subtasks, files),
    )
    return result


def _budget(budget: Budget | None) -> BudgetReport:
    if budget is None:
        return BudgetReport()
    return BudgetReport(
        max_cost_usd=budget.max_cost_usd,
        max_tokens=budget.max_tokens,
        spent_cost_usd=round(budget.spent_cost, 6),
        spent_tokens=budget.spent_tokens,
        exhausted=budget.exhausted,
    )


def totals(calls: list[CallRecord]) -> Totals:
    """Tokens, latency, cost and calls for the run, and per model, per role and per node."""
    made = [c for c in calls if c.made_call]
    costs = [c.cost_usd for c in made if c.model]
    known = all(cost is not None for cost in costs)
    note = ""
    if any(c.cost_basis == "time" for c in made):
        note = (
            "Self-hosted models (embedded, Ollama, loopback) are costed at their provider's usd_per_hour "
            "of model time (default 0: machine time is not priced unless you set it)."
        )
    if not known:
        note += " Some API models have no price in the catalog or the spec: the total cost is unknown."
    return Totals(
        tokens_in=sum(c.tokens_in for c in made),
        tokens_out=sum(c.tokens_out for c in made),
        cost_usd=round(sum(c for c in costs if c is not None), 6) if known else None,
        cost_note=note.strip(),
        cached_calls=sum(1 for c in made if c.cached),
        queued_s=round(sum(c.queued_s for c in made), 1),
        served_s=round(sum(c.served_s for c in made), 1),
        by_model=_group(made, lambda c: c.model),
        by_role=_group(made, lambda c: c.role),
        by_node=_group(made, lambda c: c.node or c.role),
    )


def _group(calls: list[CallRecord], key: Callable[[CallRecord], str | None]) -> dict[str, UsageTotals]:
    groups: dict[str, UsageTotals] = {}
    for call in calls:
        name = key(call)
        if not name:
            continue
        entry = groups.setdefault(name, UsageTotals())
        entry.calls += 1
        entry.tokens_in += call.tokens_in
        entry.tokens_out += call.tokens_out
        entry.latency_ms += call.latency_ms
        entry.queued_s = round(entry.queued_s + call.queued_s, 1)
        entry.served_s = round(entry.served_s + call.served_s, 1)
        cost = call.cost_usd
        entry.cost_usd = None if cost is None or entry.cost_usd is None else round(entry.cost_usd + cost, 6)
    return groups
