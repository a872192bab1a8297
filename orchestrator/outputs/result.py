"""result.json: everything a run did, as one typed model that every writer reads and whose JSON
Schema is `orchestrator schema --result`. A result is self-describing (it carries the roles that
ran, with their output kinds and text direction), so every output can be rebuilt from it alone."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from orchestrator.checks import VerificationReport
from orchestrator.diff import DiffReport
from orchestrator.engine.state import CallRecord, PlanRecord, Record, Served
from orchestrator.errors import RunStatus

RESULT_SCHEMA_VERSION = 1


class SpecRef(Record):
    name: str
    path: str
    graph: str


class RoleInfo(Record):
    """A role as the reports need it: how to show its answers."""

    output: str = Field(description="the output kind (findings, patches, diagnosis, docs, text) or 'schema'")
    description: str
    lang: str | None = None
    dir: Literal["ltr", "rtl"] = "ltr"


class UsageTotals(Record):
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: int = 0
    cost_usd: float | None = 0.0
    queued_s: float = Field(default=0.0, description="seconds its calls waited for the model (its queue, a slot)")
    served_s: float = Field(default=0.0, description="seconds the model spent on them")


class Totals(Record):
    tokens_in: int
    tokens_out: int
    cost_usd: float | None = Field(description="null when an API model has no known price")
    cost_note: str
    cached_calls: int
    queued_s: float = Field(default=0.0, description="seconds calls waited for their models (queues, slots)")
    served_s: float = Field(default=0.0, description="seconds the models spent on them: prompt evaluation, generation")
    by_model: dict[str, UsageTotals]
    by_role: dict[str, UsageTotals]
    by_node: dict[str, UsageTotals]


class BudgetReport(Record):
    max_cost_usd: float | None = None
    max_tokens: int | None = None
    spent_cost_usd: float = 0.0
    spent_tokens: int = 0
    exhausted: str | None = None


class ExcludedModel(Record):
    model: str
    reason: str


class PolicyRule(Record):
    field: str
    value: Any
    source: str = Field(description="where the rule came from: the spec (file:line), --set, the operator's policy")


class PolicyReport(Record):
    excluded: dict[str, list[ExcludedModel]] = Field(
        default_factory=dict, description="role (or 'role [class]', or node) -> the models the policy removed"
    )
    rules: list[PolicyRule] = Field(default_factory=list, description="the effective run-level rules")
    untrusted: bool = Field(default=False, description="pull-request mode: the spec was treated as hostile")
    why_untrusted: str = ""


class SkippedFile(Record):
    path: str
    reason: str


class FilesReport(Record):
    included: list[str]
    skipped: list[SkippedFile]


class HostReport(Record):
    host: str
    models: list[str]
    requests: int
    bytes_sent: int
    bytes_received: int
    rules: list[str] = Field(description="the policy rules that allowed sending to it")
    note: str = Field(default="", description="what the counts do not cover")
    nodes: list[str] = Field(default_factory=list, description="the executor's nodes that contacted it (none: here)")


class ServedCall(Served):
    """One answer in the egress report: who served it, where, and whether the policy let it be used."""

    model: str
    verdict: Literal["used", "refused"] = Field(description="refused: served outside the serving rules, discarded")
    reason: str = ""
    node: str | None = Field(default=None, description="the executor's node that made the call (none: here)")


class EgressReport(Record):
    hosts: list[HostReport] = Field(default_factory=list)
    in_process: list[str] = Field(
        default_factory=list,
        description="models the run itself runs (in its process or its model worker): nothing sent",
    )
    calls: list[ServedCall] = Field(default_factory=list, description="every answer: served by, region, verdict")


class CheckpointReport(Record):
    backend: str = Field(description="sqlite | postgres | memory | off")
    location: str | None = Field(default=None, description="where, without any password")
    durability: str
    writes: int
    ms: float


class GraphNode(Record):
    name: str
    kind: str = Field(description="start | end | plan | fanout | role | ensemble | merge | aggregate | node")
    role: str | None = None
    status: str = Field(description="ok | failed | partial (some runs failed) | not_run | start | end")
    runs: int = Field(default=0, description="calls recorded for the node (iterations, proposals, subtasks)")
    fallbacks: int = Field(default=0, description="models that failed and were fallen back from")


class GraphEdge(Record):
    source: str
    target: str
    conditional: bool = False
    label: str | None = Field(default=None, description="the condition, when the edge has one")
    loop: bool = Field(default=False, description="goes back to an earlier node")


class GraphReport(Record):
    """The graph that ran: every node (with what became of it) and every edge."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]


class ModelInfo(Record):
    """A model the run could call, as the catalog and the providers describe it."""

    provider: str
    kind: str
    host: str | None = Field(default=None, description="where it is served from; null when the run itself runs it")
    port: int | None = None
    local: bool
    catalog_id: str | None = None
    lab: str | None = None
    country: str | None = Field(default=None, description="the lab's country (ISO 3166)")
    license: str | None = None
    open_weights: bool | None = None


class SourceExcerpt(Record):
    """Lines of a workspace file around a finding, as the models saw them (secrets masked)."""

    file: str
    start: int = Field(ge=1, description="the number of the first line")
    lines: list[str]


class RunResult(Record):
    """result.json, schema version 1."""

    schema_version: Literal[1] = 1
    run_id: str
    spec: SpecRef
    goal: str
    workspace: str
    started_at: str
    duration_ms: int
    status: RunStatus
    exit_code: int
    fail_on: str
    max_severity: str | None
    plan: PlanRecord
    subtasks: list[CallRecord]
    aggregate: CallRecord | None
    totals: Totals
    budget: BudgetReport
    pending: list[dict[str, Any]] = Field(description="calls stopped by the budget; `resume` runs them")
    egress: EgressReport = Field(description="hosts contacted: models, requests, bytes, the policy rule")
    checkpoint: CheckpointReport = Field(description="where the run is checkpointed and what it cost")
    policy: PolicyReport
    files: FilesReport
    warnings: list[str]
    roles: dict[str, RoleInfo] = Field(default_factory=dict, description="the roles of the run")
    # what the HTML report and OpenTelemetry show besides: the graph, the models, the source lines
    # of the findings, and the instant every `timing` offset counts from
    graph: GraphReport | None = Field(default=None, description="the graph that ran, with each node's status")
    models: dict[str, ModelInfo] = Field(default_factory=dict, description="provider/model -> where it runs")
    sources: list[SourceExcerpt] = Field(default_factory=list, description="source lines around the findings")
    clock_origin: str | None = Field(default=None, description="when the run first started (timing offsets)")
    verification: VerificationReport | None = Field(
        default=None, description="patches judged by the spec's checks: baselines, verdicts, all verified together"
    )
    diff: DiffReport | None = Field(
        default=None, description="diff_base: the changes reviewed, and where each finding and patch falls in them"
    )
    signature: str | None = Field(
        default=None,
        description="HMAC-SHA256 of the patches and their verdicts with the machine key of the run's user: "
        "`orchestrator apply` refuses a result it cannot authenticate",
    )

    def calls(self) -> list[CallRecord]:
        """Every model call: the subtasks, the aggregation and the planner's call."""
        found = [*self.subtasks, *([self.aggregate] if self.aggregate else [])]
        return found + ([self.plan.call] if self.plan.call else [])

    def verdicts(self) -> list[CallRecord]:
        """The subtasks that speak for the run (an ensemble's merge speaks for its proposals)."""
        return [s for s in self.subtasks if not s.proposal_of]

    def role(self, name: str) -> RoleInfo | None:
        return self.roles.get(name)

    def in_workspace(self, path: str) -> bool:
        """Whether a path a model named is one of the run's files (only those get annotations)."""
        return path in self.files.included

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


def result_json_schema() -> dict[str, Any]:
    schema = RunResult.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Sovereign Orchestrator result.json"
    return schema
