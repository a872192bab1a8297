"""From judged runs to the eval's tables: per arm (the resolved rate with its Wilson interval,
tests broken, tokens, cost, time, cost per resolved run, tool turns), per arm and role, per
instance; the rankings under each objective and, per role, the arm that wins.

An instance that does not hold at its base is left out of every rate (its runs never ran). A run
the policy refused counts as not resolved: the arm cannot do that instance under the policy."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence

from orchestrator.outputs.evaluation import (
    ArmSummary,
    EvalRun,
    InstanceSummary,
    Objective,
    RoleSummary,
    Winner,
)
from orchestrator.spec.evalfile import ArmSpec

Z95 = 1.959963984540054
OBJECTIVES: tuple[Objective, ...] = ("resolved", "cost_per_resolved")


def wilson(resolved: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); (0, 1) without trials."""
    if trials <= 0:
        return 0.0, 1.0
    p = resolved / trials
    scale = 1 + z * z / trials
    center = (p + z * z / (2 * trials)) / scale
    half = z / scale * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return round(max(0.0, center - half), 4), round(min(1.0, center + half), 4)


def _cost(values: Sequence[float | None]) -> float | None:
    return None if any(v is None for v in values) else round(sum(v or 0.0 for v in values), 12)


def arm_summaries(runs: Sequence[EvalRun], arms: Mapping[str, ArmSpec]) -> list[ArmSummary]:
    """One summary per arm, in the eval file's order."""
    found = []
    for name, arm in arms.items():
        mine = [run for run in runs if run.arm == name]
        judged = [run for run in mine if run.outcome not in ("invalid", "not_run")]
        resolved = sum(1 for run in judged if run.resolved)
        low, high = wilson(resolved, len(judged))
        cost = _cost([run.cost_usd for run in mine])
        found.append(
            ArmSummary(
                arm=name,
                models=dict(arm.models),
                runs=len(mine),
                judged=len(judged),
                resolved=resolved,
                rate=round(resolved / len(judged), 4) if judged else 0.0,
                ci_low=low,
                ci_high=high,
                tests_broken=sum(run.tests_broken for run in mine),
                tokens_in=sum(run.tokens_in for run in mine),
                tokens_out=sum(run.tokens_out for run in mine),
                cost_usd=cost,
                duration_ms=sum(run.duration_ms for run in mine),
                cost_per_resolved=cost / resolved if cost is not None and resolved else None,
                tool_turns=sum(run.tool_turns for run in mine),
                tool_calls=sum(run.tool_calls for run in mine),
                refused=sum(1 for run in mine if run.outcome == "refused"),
                failed=sum(1 for run in mine if run.outcome == "run_failed"),
            )
        )
    return found


def ranked(summaries: Sequence[ArmSummary], objective: Objective) -> list[ArmSummary]:
    """Best first: by resolved rate (then cost per resolved run), or by cost per resolved run
    (then resolved rate); an arm that resolved nothing, or whose cost is unknown, comes last."""
    unknown = math.inf

    def by_rate(arm: ArmSummary) -> tuple[float, float, str]:
        return (-arm.rate, arm.cost_per_resolved if arm.cost_per_resolved is not None else unknown, arm.arm)

    def by_cost(arm: ArmSummary) -> tuple[float, float, str]:
        return (arm.cost_per_resolved if arm.cost_per_resolved is not None else unknown, -arm.rate, arm.arm)

    return sorted(summaries, key=by_rate if objective == "resolved" else by_cost)


def role_summaries(runs: Sequence[EvalRun], arms: Mapping[str, ArmSpec]) -> list[RoleSummary]:
    """Per arm and role: what the role used over the arm's runs."""
    found = []
    for name, arm in arms.items():
        mine = [run for run in runs if run.arm == name]
        judged = [run for run in mine if run.outcome not in ("invalid", "not_run")]
        usages = defaultdict(list)
        for run in mine:
            for usage in run.roles:
                usages[usage.role].append(usage)
        for role in sorted(usages):
            used = usages[role]
            found.append(
                RoleSummary(
                    arm=name,
                    role=role,
                    assigned=arm.models.get(role),
                    models=sorted({m for usage in used for m in usage.models}),
                    calls=sum(u.calls for u in used),
                    tokens_in=sum(u.tokens_in for u in used),
                    tokens_out=sum(u.tokens_out for u in used),
                    cost_usd=_cost([u.cost_usd for u in used]),
                    latency_ms=sum(u.latency_ms for u in used),
                    turns=sum(u.turns for u in used),
                    tool_calls=sum(u.tool_calls for u in used),
                    resolved=sum(1 for run in judged if run.resolved),
                    judged=len(judged),
                )
            )
    return found


def instance_summaries(
    runs: Sequence[EvalRun], instances: Sequence[tuple[str, int, int]], problems: Mapping[str, str], arms: Sequence[str]
) -> list[InstanceSummary]:
    """Per instance (id, FAIL_TO_PASS count, PASS_TO_PASS count): which arms resolved it."""
    found = []
    for instance, f2p, p2p in instances:
        mine = [run for run in runs if run.instance == instance]
        judged = [run for run in mine if run.outcome not in ("invalid", "not_run", "refused")]
        found.append(
            InstanceSummary(
                instance=instance,
                valid=not problems.get(instance),
                problem=problems.get(instance, ""),
                fail_to_pass=f2p,
                pass_to_pass=p2p,
                resolved_by={arm: sum(1 for r in judged if r.arm == arm and r.resolved) for arm in arms},
                runs={arm: sum(1 for r in judged if r.arm == arm) for arm in arms},
                refused=sorted({r.arm for r in mine if r.outcome == "refused"}),
            )
        )
    return found


def winners(summaries: Sequence[ArmSummary], arms: Mapping[str, ArmSpec], objective: Objective) -> list[Winner]:
    """Per role any arm assigns, the arm that ranks first under the objective among the arms
    that assign it (the whole arm's result is the role's: compare arms that differ in one role)."""
    found = []
    order = ranked(summaries, objective)
    for role in sorted({role for arm in arms.values() for role in arm.models}):
        best = next((s for s in order if role in arms[s.arm].models and s.judged > s.refused), None)
        if best is not None:
            found.append(Winner(role=role, arm=best.arm, models=arms[best.arm].models[role]))
    return found


def models_block(chosen: Sequence[Winner], name: str, objective: Objective) -> str:
    """The `models:` block of the winners, as YAML a spec can take (values in JSON flow style)."""
    lines = [f"# orchestrator eval {name}: the arm that wins each role by {objective}", "models:"]
    for winner in chosen:
        lines.append(f"  {winner.role}: {json.dumps(winner.models, ensure_ascii=False)}  # arm {winner.arm}")
    return "\n".join(lines) + "\n"
