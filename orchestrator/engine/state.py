"""Graph state (what flows between nodes and is checkpointed), and the one typed record of a model
call: `CallRecord` is what a node returns, what the checkpoint holds, what every writer reads and
what result.json's schema documents (`orchestrator schema --result`).

State holds results only; file contents stay out of it, in the run context. Checkpoints store
these records through LangGraph's strict msgpack allowlist (`CHECKPOINT_TYPES`).
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.checks import CheckOutcome, PatchVerdict, PerTestChanges
from orchestrator.spec.kinds import SEVERITY_RANK, Finding, Patch

M = TypeVar("M", bound=BaseModel)


class Record(BaseModel):
    """The base of every record the run writes down: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


class Served(Record):
    """Who served a call and where (policy/serving.py): what the answer reported, else the
    route's serving facts, else its host; and what the request carried to pin it."""

    served_by: str
    region: str = Field(description="countries or region where inference ran, as reported or documented")
    host: str | None = None
    pinned: dict[str, Any] | None = Field(default=None, description="the request's pinning: hook, rule, fields")
    reported: dict[str, Any] = Field(default_factory=dict, description="what the answer said of who served it")


class Hop(Record):
    """A model that was tried and left: why, after how many attempts and how long a wait."""

    model: str
    error_kind: str = Field(
        description="unavailable | timeout | config | invalid_output | cooldown | budget | policy | provider | ..."
    )
    message: str
    status: int | None = Field(default=None, description="the HTTP status, when there was one")
    attempts: int = 1
    waited_s: float = Field(default=0.0, description="backoff slept between its attempts")
    latency_ms: int = 0
    served: Served | None = Field(default=None, description="policy: what the discarded answer reported")
    queued_s: float = Field(default=0.0, description="its calls' time in the model's own queue (the embedded model)")
    served_s: float = Field(default=0.0, description="its calls' time being served: prompt evaluation and generation")
    tokens: int = Field(default=0, description="tokens the model produced, those of calls that timed out included")


class CallError(Record):
    kind: str
    message: str


class PatchCheck(Record):
    file: str
    valid: bool = Field(description="git apply --check accepts the diff in the workspace")
    message: str


class Span(Record):
    """Something that took time during a call, on the run's clock (ms after the run started): a
    model attempt, a wait (for a slot, a rate limit, the budget), a check; the agentic roles add
    tool calls. The HTML timeline and OpenTelemetry show every span of a call, whatever its kind."""

    kind: str = Field(description="model | wait | check | tool | ...")
    name: str = Field(description="the model, the wait's cause (slot, rate_limit, backoff, budget), the check or tool")
    started_ms: int = Field(ge=0)
    duration_ms: int = Field(ge=0)
    status: str = Field(default="ok", description="ok, or what went wrong (an error kind, failed)")
    detail: str = ""
    tokens_in: int | None = None
    tokens_out: int | None = None
    retried: bool = Field(default=False, description="a model attempt that failed and was tried again")


class CallTiming(Record):
    """When a call ran on the run's clock (offsets from `RunResult.clock_origin`), and its spans."""

    started_ms: int = Field(ge=0)
    duration_ms: int = Field(ge=0)
    spans: list[Span] = Field(default_factory=list)


class ToolCall(Record):
    """One tool call of a role's loop: what was asked, what came of it, and when."""

    turn: int = Field(description="the loop's turn that made it (1-based)")
    attempt: int = Field(default=0, description="0 for the first answer, then one per reflection")
    model: str
    tool: str = Field(description="list_files | read_file | grep | run_check")
    args: dict[str, Any] = Field(default_factory=dict)
    status: Literal["ok", "error", "refused"] = Field(description="refused: by the policy or a bound")
    detail: str = Field(default="", description="what came back, in a few words, or why it was refused")
    started_ms: int = Field(default=0, description="start, in ms since the run started")
    duration_ms: int = 0


class BoundHit(Record):
    """A bound of a role's loop that ended its tool use (the model then had to answer)."""

    bound: Literal["max_turns", "max_tool_calls", "repeated_call"]
    model: str
    attempt: int = 0
    turn: int
    detail: str


class Subtask(Record):
    id: str
    role: str
    instruction: str
    files: list[str] = Field(default_factory=list)


class Worker(Record):
    """The node of the executor's cluster that did a subtask's work."""

    node_id: str
    labels: dict[str, str] = Field(default_factory=dict)


class CallRecord(Record):
    """One model call of the run: a subtask, a graph node, a proposal, the plan or the aggregation."""

    id: str
    role: str
    instruction: str
    files: list[str]
    status: Literal["ok", "failed"]
    model: str | None = Field(default=None, description="provider/model that answered")
    catalog_id: str | None = None
    fallbacks: list[Hop] = Field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: int = 0
    attempts: int = 0
    waited_s: float = 0.0
    queued_s: float = Field(
        default=0.0, description="seconds its calls waited in the model's own queue (the embedded model's worker)"
    )
    served_s: float = Field(default=0.0, description="seconds the model spent on them: prompt evaluation, generation")
    structured_mode: str | None = None
    cached: bool = Field(default=False, description="answered from the result cache, no model call")
    cost_basis: str | None = Field(default=None, description="tokens (priced) | time (self-hosted, per hour) | null")
    cost_usd: float | None = None
    output: dict[str, Any] | None = Field(default=None, description="the validated answer, in the role's output kind")
    error: CallError | None = None
    context: dict[str, Any] = Field(default_factory=dict, description="files given, truncated or omitted; the budget")
    checks: list[PatchCheck] = Field(default_factory=list)
    node: str | None = Field(default=None, description="the graph node that made the call")
    iteration: int | None = Field(default=None, description="1 on the node's first run")
    proposal_of: str | None = Field(default=None, description="an ensemble proposal: the ensemble node")
    proposals: list[str] | None = Field(default=None, description="a merge: the proposals it merged")
    data_class: str | None = Field(default=None, description="public | internal | confidential: what the call saw")
    timing: CallTiming | None = Field(default=None, description="when it ran, its model attempts, waits and checks")
    host: str | None = Field(default=None, description="the host of the provider's base_urls that answered")
    served: Served | None = Field(default=None, description="who served the answer, where, and the request's pinning")
    worker: Worker | None = Field(default=None, description="the executor's node that did it (null: here)")
    # agentic roles: the tool loop and the verification of the patches it proposed
    turns: int = Field(default=0, description="model turns of the tool loop (0: one structured call)")
    tool_calls: list[ToolCall] = Field(default_factory=list)
    bounds: list[BoundHit] = Field(default_factory=list, description="loop bounds reached")
    reflections: int = Field(default=0, description="times a failed fix went back to its model")
    verification: list[PatchVerdict] = Field(
        default_factory=list, description="every proposed patch's verdict (the kept answer's have final: true)"
    )

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def made_call(self) -> bool:
        """A model answered, or at least one was tried (spec-given plans make no call)."""
        return self.model is not None or bool(self.fallbacks)

    def findings(self) -> list[Finding]:
        """The answer's findings (a role with a schema of its own may use the word otherwise:
        items that are not findings are left out)."""
        return _valid(Finding, (self.output or {}).get("findings"))

    def patches(self) -> list[Patch]:
        """Every patch of the answer: a refactor's patches, and a diagnosis' fix."""
        output = self.output or {}
        fix = output.get("fix")
        return _valid(Patch, [*(output.get("patches") or []), *([fix] if isinstance(fix, dict) else [])])


def _valid(model: type[M], items: Any) -> list[M]:
    found = []
    for item in items if isinstance(items, list) else []:
        try:
            found.append(model.model_validate(item))
        except ValidationError:
            continue
    return found


class PlanRecord(Record):
    source: Literal["spec", "planner", "fallback", "graph"]
    notes: list[str] = Field(default_factory=list)
    subtasks: list[Subtask] = Field(default_factory=list)
    call: CallRecord | None = Field(default=None, description="the planner's call; none for the spec's tasks")


# the records a checkpoint may hold (LangGraph's strict msgpack loads these and its own safe types)
CHECKPOINT_TYPES = [(__name__, cls.__name__) for cls in (CallRecord, PlanRecord, Subtask, ToolCall, BoundHit)]
CHECKPOINT_TYPES += [(cls.__module__, cls.__name__) for cls in (PatchVerdict, CheckOutcome, PerTestChanges)]


def facts_of(record: CallRecord | None, iteration: int) -> dict[str, Any]:
    """The facts an edge condition can read about a node's latest result (spec.condition)."""
    if record is None:
        return {"status": "failed", "iteration": iteration}
    output = record.output or {}
    findings = record.findings()
    facts: dict[str, Any] = {
        "status": record.status,
        "iteration": iteration,
        "findings.count": len(findings),
        "findings.max_severity": max((f.severity for f in findings), key=SEVERITY_RANK.__getitem__, default="none"),
        "patches.count": len(record.checks),
        "patches.valid": sum(1 for c in record.checks if c.valid),
        "patches.invalid": sum(1 for c in record.checks if not c.valid),
        "diagnosis.has_fix": bool(output.get("fix")),
        "patches.verified": sum(1 for v in record.verification if v.final and v.verdict == "verified"),
        "checks.failing": len({c.name for v in record.verification if v.final for c in v.failing_checks}),
    }
    for key, value in output.items():
        if isinstance(value, str | int | float | bool):
            facts[f"output.{key}"] = value
    return facts


def merge_dicts(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    return {**(left or {}), **(right or {})}


def add_counts(left: dict[str, int] | None, right: dict[str, int] | None) -> dict[str, int]:
    out = dict(left or {})
    for key, value in (right or {}).items():
        out[key] = out.get(key, 0) + value
    return out


class RunState(TypedDict, total=False):
    goal: str
    plan: PlanRecord
    results: Annotated[list[CallRecord], operator.add]  # every call's result, in arrival order
    outputs: Annotated[dict[str, CallRecord], merge_dicts]  # graph node -> its latest result
    visits: Annotated[dict[str, int], add_counts]  # graph node -> how many times it ran
    aggregate: CallRecord


class SubtaskInput(TypedDict):
    subtask: Subtask


class ProposalInput(TypedDict):
    """What an ensemble sends each proposer (a Send carries no other state)."""

    proposer: int
    iteration: int
    inputs: dict[str, CallRecord]
