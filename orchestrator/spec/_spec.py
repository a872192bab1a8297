"""The spec file: what a user writes to run a workflow (see PRODUCT.md).

`load_spec` reads the YAML, applies `--set` overrides, validates the shape with pydantic and
then the meaning (roles exist, models resolve, providers are trusted with their keys, the
workspace exists). Every problem names the file, the line and the field.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from orchestrator.errors import Problem, SpecError
from orchestrator.formats import OutputFormat
from orchestrator.spec._agentic import CheckSpec, McpServerSpec, VerifySpec, check_agentic
from orchestrator.spec._document import Document, Strict, apply_overrides, load_yaml, validate_document
from orchestrator.spec._serving import CountryCode, RegionName, ServingSpec
from orchestrator.spec.kinds import Severity
from orchestrator.spec.roles import RoleSpec

DataClass = Literal["public", "internal", "confidential"]
DATA_CLASSES: tuple[DataClass, ...] = ("public", "internal", "confidential")  # ordered: a mix takes the highest

ModelRef = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\s\x00-\x1f\x7f]+$")]
ModelChain = Annotated[
    list[ModelRef], BeforeValidator(lambda v: [v] if isinstance(v, str) else v), Field(min_length=1, max_length=16)
]
# names that reach file names, terminals and CI logs: a bounded, plain alphabet
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")]
# a git revision (a branch, a tag, a commit): never an option, nothing a shell or a log would misread
GitRef = Annotated[
    str,
    BeforeValidator(lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else v),
    Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./@{}~^-]{0,255}$"),
]
# paths and globs: no NUL, bounded (the file system and the glob matcher are not for strangers)
PathText = Annotated[str, Field(max_length=1024, pattern=r"^[^\x00]*$")]
Globs = Annotated[list[PathText], BeforeValidator(lambda v: [v] if isinstance(v, str) else v), Field(max_length=200)]


def _bounded_globs(patterns: list[str]) -> list[str]:
    """Globs whose `**` cannot make matching exponential: runs of `**/` collapse into one."""
    out = []
    for pattern in patterns:
        collapsed = re.sub(r"(\*\*/)+", "**/", pattern)
        if collapsed.count("**") > 4:
            raise ValueError(f"'{pattern}' has more than 4 '**'")
        out.append(collapsed)
    return out


class TaskSpec(Strict):
    role: str = Field(max_length=64, description="the role that does this task")
    instruction: str = Field(min_length=1, max_length=20_000, description="what the role is asked to do")
    files: Annotated[list[PathText], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)] = Field(
        default_factory=list,
        max_length=200,
        description="workspace paths the task concerns (default: every included file)",
    )
    id: Identifier | None = Field(default=None, description="the subtask's id in outputs (default: t1, t2, ...)")


# an endpoint of a pool: http(s), bounded, nothing a terminal or a log would misread
EndpointUrl = Annotated[str, Field(min_length=8, max_length=2048, pattern=r"^https?://[^\s\x00-\x1f\x7f]+$")]


def _distinct(urls: list[str]) -> list[str]:
    seen: set[str] = set()
    for url in urls:
        key = url.rstrip("/").lower()
        if key in seen:
            raise ValueError(f"'{url}' is listed twice")
        seen.add(key)
    return urls


class ProviderSpec(Strict):
    kind: str | None = Field(default=None, description="local | ollama | openai, or a plugin's kind")
    base_url: str | None = Field(default=None, description="the service's address (default: the catalog's)")
    base_urls: Annotated[list[EndpointUrl], AfterValidator(_distinct)] | None = Field(
        default=None,
        min_length=2,
        max_length=32,
        description="instead of base_url: several hosts of the same service (a pool); each call goes to the "
        "least busy healthy one, and a host that keeps failing cools down",
    )
    api_key_env: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="the environment variable holding the API key"
    )
    max_concurrency: int | None = Field(
        default=None, ge=1, description="calls in flight on this provider; with base_urls, on each of its hosts"
    )
    max_concurrency_per_model: int | None = Field(
        default=None, ge=1, description="calls in flight per model; with base_urls, per model on each host"
    )
    host_cooldown_s: float | None = Field(
        default=None, gt=0, le=86_400, description="base_urls: how long a failing host rests before it is tried again"
    )
    structured_output: Literal["json_schema", "grammar", "json_object"] | None = Field(
        default=None, description="openai kind: force one mode instead of negotiating"
    )
    compact_output: bool | None = Field(
        default=None, description="bound output strings and lists tightly (for very small models)"
    )
    usd_per_hour: float | None = Field(
        default=None, ge=0, description="self-hosted models: USD per hour of model time (default 0)"
    )
    max_loaded_models: int | None = Field(
        default=None, ge=1, description="a host that keeps one model loaded: group calls per model"
    )
    tool_calling: Literal["native", "grammar"] | None = Field(
        default=None, description="tools as the endpoint's own tool calls, or one JSON action per turn"
    )
    serving: ServingSpec | None = Field(
        default=None, description="where this provider serves inference (the operator's own declaration wins)"
    )

    @model_validator(mode="after")
    def _one_endpoint_field(self) -> ProviderSpec:
        if self.base_url is not None and self.base_urls is not None:
            raise ValueError("give either base_url (one host) or base_urls (a pool of hosts), not both")
        return self


class RulesSpec(Strict):
    """Policy rules; every field left out keeps the value of the level above."""

    data_class: DataClass | None = Field(
        default=None, description="how sensitive the data is; confidential: only this machine and allow_hosts"
    )
    allow_countries: list[str] | None = Field(default=None, description="ISO 3166 codes of the labs allowed")
    deny_countries: list[str] | None = Field(default=None, description="ISO 3166 codes of the labs refused")
    open_weights_only: bool | None = Field(default=None, description="only models whose weights are open")
    allow_licenses: list[str] | None = Field(default=None, description="licenses allowed, as the catalog names them")
    local_only: bool | None = Field(default=None, description="only the embedded model and loopback hosts")
    allow_hosts: list[str] | None = Field(
        default=None, description="hosts besides this machine that may receive data (your own servers)"
    )
    # where inference runs (the route's serving facts), not where the lab is (allow_countries)
    serving_countries: list[CountryCode] | None = Field(
        default=None, description="ISO 3166 codes of the countries where inference may run"
    )
    serving_regions: list[RegionName] | None = Field(
        default=None, description="regions where inference may run (eu: EU/EEA; europe: with GB and CH; us)"
    )
    retention: Literal["none"] | Annotated[int, Field(ge=0, le=36_500)] | None = Field(
        default=None, description="the longest a server may keep prompts: none (zero retention) or days"
    )
    trains_on_data: bool | None = Field(
        default=None, description="false: only routes documented not to train on prompts"
    )


class PolicySpec(RulesSpec):
    """The run's policy, with per-role rules and data classes for files (by glob)."""

    data_class: DataClass | None = Field(
        default="internal", description="how sensitive the data is; confidential: only this machine and allow_hosts"
    )
    roles: dict[str, RulesSpec] = Field(default_factory=dict, description="role -> rules overriding the run's")
    classes: dict[DataClass, RulesSpec] = Field(
        default_factory=dict, description="data class -> rules for the calls that see data of that class"
    )
    files: dict[str, DataClass] = Field(
        default_factory=dict, description="glob -> data class; a subtask that sees the file is held to it"
    )


class LimitsSpec(Strict):
    concurrency: int = Field(default=4, ge=1, le=1024, description="subtasks in flight across the run")
    timeout_s: float = Field(
        default=120,
        gt=0,
        description="per model call; for a model on this machine, counted from when it starts serving the call",
    )
    stall_s: float = Field(
        default=120, gt=0, description="the embedded model: a call with no new token for this long is stopped"
    )
    queue_wait_s: float = Field(
        default=1800, gt=0, description="the embedded model: the most a call waits in its queue behind others"
    )
    map_tokens: int = Field(
        default=1024, ge=0, le=65536, description="the repository map's share of a prompt (0: no map)"
    )
    max_cost_usd: float | None = Field(default=None, ge=0, description="stop (exit 4) before a call could overrun")
    max_tokens: int | None = Field(default=None, ge=1, description="tokens in + out for the whole run")
    max_output_tokens: int = Field(default=1024, ge=16, le=65536, description="the most tokens one answer may have")
    retries: int = Field(default=2, ge=0, le=10, description="retries of a transient failure per model")
    backoff_s: float = Field(default=1.0, ge=0, description="first backoff; doubles each retry")
    max_wait_s: float = Field(default=30.0, ge=0, description="longest Retry-After honoured before falling back")
    cooldown_after: int = Field(default=3, ge=1, description="consecutive failures that cool a provider down")
    # agentic roles (spec/_agentic.py)
    max_turns: int = Field(default=8, ge=1, le=100, description="model turns of a role's tool loop, per attempt")
    max_tool_calls: int = Field(default=24, ge=0, le=1000, description="tool calls of a role's loop, per attempt")
    max_tools: int = Field(
        default=16, ge=1, le=64, description="tools one model is offered (a compact_output provider's: at most 6)"
    )
    check_concurrency: int = Field(default=2, ge=1, le=64, description="check processes running at once")
    max_response_bytes: int = Field(
        default=8_000_000, ge=1024, le=64_000_000, description="a larger answer is cut off and the next model tried"
    )
    max_diff_bytes: int = Field(
        default=1_000_000, ge=1024, le=64_000_000, description="diff_base: files past this much diff are not reviewed"
    )


class PriceSpec(Strict):
    """USD per million tokens."""

    input: float = Field(ge=0, description="USD per million input (prompt) tokens")
    output: float = Field(ge=0, description="USD per million output tokens")


class OutputSpec(Strict):
    dir: PathText = Field(default="out", description="where outputs are written, relative to the spec file")
    formats: list[OutputFormat] = Field(
        default_factory=lambda: list[OutputFormat](["markdown", "html", "json"]), description="the outputs written"
    )


class Spec(Strict):
    """A workflow: a goal, the files it concerns, the graph and the models that serve it."""

    version: Literal[1] = Field(default=1, description="the spec format's version")
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", description="the workflow's name")
    goal: str = Field(min_length=1, max_length=20_000, description="what the run is for; the planner plans from it")
    workspace: PathText = Field(default=".", description="the folder the roles may read, relative to the spec file")
    include: Annotated[Globs, AfterValidator(_bounded_globs)] = Field(
        default_factory=lambda: ["**/*"], description="globs of the workspace files the run concerns"
    )
    exclude: Annotated[Globs, AfterValidator(_bounded_globs)] = Field(
        default_factory=list, description="globs of files left out of include"
    )
    diff_base: GitRef | None = Field(
        default=None,
        description="review what changed: the files changed between the merge base of this revision and HEAD "
        "(default in a pull-request job: the CI's base branch; 'none' reviews the whole include set)",
    )
    graph: PathText = Field(
        default="coding-workflow",
        description="a built-in graph's name, a graph file (relative to the spec) or a Python graph (module:function)",
    )
    tasks: list[TaskSpec] = Field(
        default_factory=list, max_length=5000, description="subtasks given instead of the planner's plan"
    )
    models: dict[str, ModelChain] = Field(
        default_factory=dict,
        description="role -> one model or a fallback chain (the first that works); `default`: every role not named",
    )
    providers: dict[str, ProviderSpec] = Field(
        default_factory=dict, description="provider -> its settings, over the catalog's defaults"
    )
    roles: dict[str, RoleSpec] = Field(
        default_factory=dict, description="role -> a new role, or changes to a built-in one"
    )
    policy: PolicySpec = Field(default_factory=PolicySpec, description="which models may see the data (sovereignty)")
    limits: LimitsSpec = Field(default_factory=LimitsSpec, description="concurrency, timeouts, retries and budgets")
    prices: dict[str, PriceSpec] = Field(
        default_factory=dict, description="provider/model -> USD per million tokens, overriding the catalog"
    )
    output: OutputSpec = Field(default_factory=OutputSpec, description="where outputs go and which formats")
    fail_on: Severity | Literal["none"] = Field(
        default="high", description="exit 1 when a finding is at or above this severity (none: never)"
    )
    checks: dict[str, CheckSpec] = Field(
        default_factory=dict, description="name -> a command that judges the code (exit 0: pass)"
    )
    verify: VerifySpec = Field(
        default_factory=VerifySpec, description="how proposed patches are verified by the checks"
    )
    mcp_servers: dict[str, McpServerSpec] = Field(
        default_factory=dict, max_length=16, description="name -> an MCP server whose tools roles may be granted"
    )


class LoadedSpec:
    """A validated spec plus where it came from (for relative paths and error lines)."""

    def __init__(self, spec: Spec, document: Document, overrides: Sequence[str] = ()) -> None:
        self.spec = spec
        self.document = document
        self.overrides = list(overrides)  # the `--set` assignments applied (a resume applies them again)
        self.path = document.path
        self.base_dir = document.path.resolve().parent
        self.workspace = (self.base_dir / spec.workspace).resolve()

    def problem(self, loc: tuple[str | int, ...], message: str) -> Problem:
        return self.document.problem(loc, message)


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> LoadedSpec:
    """Read, override and validate the shape of a spec. Meaning is checked by `check_spec`."""
    document = load_yaml(Path(path), kind="spec")
    apply_overrides(document, overrides)
    spec = validate_document(document, Spec)
    loaded = LoadedSpec(spec, document, overrides)
    problems = check_agentic(loaded)
    if not loaded.workspace.is_dir():
        problems.append(loaded.problem(("workspace",), f"folder not found: {loaded.workspace}"))
    if problems:
        raise SpecError(problems)
    return loaded


def spec_json_schema() -> dict[str, Any]:
    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Sovereign Orchestrator spec"
    return schema
