"""An eval's records (eval.json) and its tables (eval.md, eval.html): which arm (a model assignment)
resolves the instances (tasks with a known answer) best, and at what cost."""

from orchestrator.outputs.evaluation._records import (
    INTERVAL,
    ArmSummary,
    EvalResult,
    EvalRun,
    InstanceSummary,
    Objective,
    Outcome,
    Refusal,
    RoleSummary,
    RoleUsage,
    Winner,
)
from orchestrator.outputs.evaluation._render import money, per_resolved, percent, render_html, render_markdown, seconds

__all__ = [
    "INTERVAL",
    "ArmSummary",
    "EvalResult",
    "EvalRun",
    "InstanceSummary",
    "Objective",
    "Outcome",
    "Refusal",
    "RoleSummary",
    "RoleUsage",
    "Winner",
    "money",
    "per_resolved",
    "percent",
    "render_html",
    "render_markdown",
    "seconds",
]
