"""The typed records of an eval (eval.json): each run judged, and the summaries per arm, per arm and
role, and per instance. The renderers (eval.md, eval.html) read only these."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# resolved: every FAIL_TO_PASS test passes and every PASS_TO_PASS test still does
Outcome = Literal[
    "resolved",
    "unresolved",  # the tests say no
    "no_patch",  # the run proposed no patch
    "judge_only",  # the patch changed only the judge's files (dropped before judging)
    "not_applied",  # the patch does not apply at the instance's base
    "run_failed",  # the run did not finish (a provider failure, the budget, a crash)
    "refused",  # the policy refused the arm on this instance, before any call
    "invalid",  # the instance's tests do not hold at its base (or its setup failed): not run
    "not_run",  # stopped before it ran
]
Objective = Literal["resolved", "cost_per_resolved"]
INTERVAL = "Wilson score interval, 95%, over the arm's runs (instances x repeats, each run a trial)"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoleUsage(_Record):
    """What one role of one run used: its calls, tokens, cost, model time and tool turns."""

    role: str
    models: list[str] = Field(description="the models that answered")
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = 0.0
    latency_ms: int = 0
    turns: int = Field(default=0, description="model turns of its tool loops")
    tool_calls: int = 0
    clocked: bool = Field(default=False, description="costed by time (a model on the user's own machine)")


class EvalRun(_Record):
    """One arm on one instance, one repeat: an ordinary run, judged by the instance's tests."""

    label: str = Field(description="ARM/INSTANCE/rN: its folder under runs/")
    arm: str
    instance: str
    repeat: int
    key: str = Field(description="digest of what decides it (eval, spec, instance, arm): reused only when equal")
    run_id: str | None = None
    status: str = Field(description="the run's status (ok, quality_gate, ...), or error, refused, invalid, not_run")
    exit_code: int = 0
    outcome: Outcome
    resolved: bool = False
    reason: str = ""
    patch_files: list[str] = Field(default_factory=list, description="the files the model's patch changes")
    dropped: list[str] = Field(
        default_factory=list, description="the judge's files the patch changed: dropped before judging"
    )
    fail_to_pass_failing: list[str] = Field(default_factory=list, description="FAIL_TO_PASS tests not passing")
    pass_to_pass_failing: list[str] = Field(default_factory=list, description="PASS_TO_PASS tests not passing")
    tests_broken: int = Field(default=0, description="tests that passed at the base and fail (or vanish) with it")
    broken: list[str] = Field(default_factory=list, description="some of them")
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = 0.0
    duration_ms: int = 0
    tool_turns: int = 0
    tool_calls: int = 0
    roles: list[RoleUsage] = Field(default_factory=list)
    outputs: str | None = Field(default=None, description="the run's output folder")


class ArmSummary(_Record):
    arm: str
    models: dict[str, str | list[str]] = Field(description="the arm's assignment (role -> model or chain)")
    runs: int = Field(description="every run of the arm (refused ones included)")
    judged: int = Field(description="runs of valid instances: the rate's denominator")
    resolved: int
    rate: float
    ci_low: float
    ci_high: float
    tests_broken: int
    tokens_in: int
    tokens_out: int
    cost_usd: float | None = Field(description="null when a run's cost is unknown")
    duration_ms: int
    cost_per_resolved: float | None = Field(description="cost / resolved runs; null when none resolved or unknown")
    tool_turns: int
    tool_calls: int
    refused: int
    failed: int = Field(description="runs that did not finish")


class RoleSummary(_Record):
    arm: str
    role: str
    assigned: str | list[str] | None = Field(description="the arm's model for the role (null: the spec's)")
    models: list[str] = Field(description="the models that answered")
    calls: int
    tokens_in: int
    tokens_out: int
    cost_usd: float | None
    latency_ms: int
    turns: int
    tool_calls: int
    resolved: int = Field(description="the arm's resolved runs")
    judged: int


class InstanceSummary(_Record):
    instance: str
    valid: bool
    problem: str = Field(default="", description="why it is not valid (its tests at the base, its setup)")
    fail_to_pass: int
    pass_to_pass: int
    resolved_by: dict[str, int] = Field(description="arm -> runs that resolved it")
    runs: dict[str, int] = Field(description="arm -> runs judged")
    refused: list[str] = Field(default_factory=list, description="arms the policy refused on it")


class Refusal(_Record):
    arm: str
    instance: str
    reason: str


class Winner(_Record):
    role: str
    arm: str
    models: str | list[str]


class EvalResult(_Record):
    """eval.json."""

    schema_version: Literal[1] = 1
    name: str
    eval_file: str
    spec: str
    objective: Objective
    interval: str = INTERVAL
    repeats: int
    instances_total: int
    started_at: str
    duration_ms: int
    exit_code: int
    stopped_by: str | None = None
    replayed: bool = Field(default=False, description="every answer and check came from a recording")
    arms: list[ArmSummary] = Field(description="ranked by the objective")
    ranking: dict[str, list[str]] = Field(description="objective -> the arms in order, best first")
    roles: list[RoleSummary]
    instances: list[InstanceSummary]
    refusals: list[Refusal]
    winners: list[Winner] = Field(description="per role, the arm that wins under the objective")
    runs: list[EvalRun]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"
