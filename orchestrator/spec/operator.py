"""The operator's side: the policy floor a spec can only tighten, and whether the spec is trusted.

A spec may come from a pull request; the operator (whoever runs the tool: a developer, a CI
workflow) is trusted, the spec is not. The operator's policy comes from outside the repository:
`--policy FILE`, else `ORCHESTRATOR_POLICY=FILE`, else the user's config file
`$XDG_CONFIG_HOME/sovereign-orchestrator/policy.yaml`. It has every field of a spec's `policy` plus
operator-only ones. `ORCHESTRATOR_TRUSTED_HOSTS=a,b` adds trusted hosts, `ORCHESTRATOR_TRUSTED_KEYS=A,B`
variables a spec may name as keys.

Pull-request mode (the spec is untrusted) is automatic in CI whenever the event may run code a
pull or merge request controls, on GitHub Actions, GitLab CI, Bitbucket Pipelines or Azure
Pipelines (the tables below; docs/security.md explains each event). An event a table does not know
is treated as one that does: only the events known to run the repository's own code are trusted.
`--untrusted` forces it and `--trusted` turns it off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from orchestrator.spec._agentic import SandboxMode
from orchestrator.spec._document import Document, Strict, load_yaml, validate_document
from orchestrator.spec._serving import ServingSpec
from orchestrator.spec._spec import DataClass, RulesSpec

POLICY_ENV = "ORCHESTRATOR_POLICY"
TRUSTED_HOSTS_ENV = "ORCHESTRATOR_TRUSTED_HOSTS"
TRUSTED_KEYS_ENV = "ORCHESTRATOR_TRUSTED_KEYS"


LabelMap = dict[
    Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$")],
    Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{0,63}$")],
]


class ExecutorSpec(Strict):
    """Where role nodes' work runs: here (local), or on a Ray cluster."""

    kind: Literal["local", "ray"] = Field(default="local", description="local: this process; ray: a Ray cluster")
    address: str | None = Field(default=None, max_length=512, description="ray: the cluster (default $RAY_ADDRESS)")


class PlacementSpec(Strict):
    """Policy facts -> the node labels a subtask's work needs (Ray label selectors)."""

    public: LabelMap | None = Field(default=None, description="labels a node needs for public data")
    internal: LabelMap | None = Field(default=None, description="labels a node needs for internal data")
    confidential: LabelMap | None = Field(default=None, description="e.g. {zone: onprem}")
    countries: dict[Annotated[str, Field(pattern=r"^[A-Z]{2}$")], LabelMap] = Field(
        default_factory=dict, description="a model's country -> labels, e.g. {FR: {region: eu-west}}"
    )


class OperatorProvider(Strict):
    """What the operator declares about a provider: where it serves (wins over the spec's and the catalog's)."""

    serving: ServingSpec = Field(description="where the provider serves inference")


# a variable name a check may receive (`PYTEST_ADDOPTS`), or a prefix of names (`PYTEST_*`)
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}\*?$")]


class ChecksLimits(Strict):
    """The resources of one check process (operator policy `checks_limits`): a check that hits one
    is stopped and reported with status `limit`. Defaults fit a test suite on a small machine."""

    memory_mb: int = Field(default=4096, ge=16, le=1_048_576, description="per process: allocated memory (RLIMIT_DATA)")
    processes: int = Field(default=1024, ge=8, le=1_000_000, description="processes and threads of the check in all")
    open_files: int = Field(default=4096, ge=16, le=1_048_576, description="per process: open files (RLIMIT_NOFILE)")
    file_size_mb: int = Field(default=1024, ge=1, le=1_048_576, description="the largest file a check may write")
    tmp_mb: int = Field(default=512, ge=1, le=1_048_576, description="the size of the private /tmp, and of the home")
    cpu_s: int = Field(default=1800, ge=1, le=1_000_000, description="per process: CPU seconds (RLIMIT_CPU)")


class OperatorPolicy(RulesSpec):
    """What an operator's policy file holds: the rules of a spec's `policy` (a floor: the stricter
    of the two applies, field by field) and what only an operator may decide."""

    roles: dict[str, RulesSpec] = Field(default_factory=dict, description="role -> rules (a floor for that role)")
    files: dict[str, DataClass] = Field(default_factory=dict, description="glob -> data class (added to the spec's)")
    classes: dict[DataClass, RulesSpec] = Field(
        default_factory=dict, description="data class -> rules (a floor for the calls that see data of that class)"
    )
    providers: dict[str, OperatorProvider] = Field(
        default_factory=dict, description="provider -> where it serves inference (your own hosts, your contracts)"
    )
    trusted_hosts: list[str] = Field(
        default_factory=list, description="hosts a spec may point providers (and their keys) at, even in PR mode"
    )
    trusted_keys: list[str] = Field(
        default_factory=list, description="environment variables a spec may name as a provider's api_key_env"
    )
    allow_checks: list[str] | None = Field(
        default=None, description="command patterns (globs) a spec's checks may run; PR mode runs no other"
    )
    allow_mcp_servers: list[str] | None = Field(
        default=None, description="command patterns (globs) of the stdio MCP servers a spec may start; PR mode no other"
    )
    trusted_mcp_servers: list[str] = Field(
        default_factory=list,
        description="command patterns of stdio MCP servers that are the operator's own: in PR mode they run outside "
        "the sandbox (a spec's other servers run in it)",
    )
    sandbox: SandboxMode | None = Field(default=None, description="a floor: `required` runs checks only sandboxed")
    checks_env: list[EnvName] = Field(
        default_factory=list,
        description="variables checks receive besides PATH, HOME, LANG, LC_*, TERM, TMPDIR, TZ (`NAME` or `PREFIX_*`)",
    )
    checks_limits: ChecksLimits = Field(default_factory=ChecksLimits, description="the resources of a check process")
    max_cost_usd: float | None = Field(default=None, ge=0, description="a ceiling on any spec's limits.max_cost_usd")
    max_tokens: int | None = Field(default=None, ge=1, description="a ceiling on any spec's limits.max_tokens")
    python_graphs: bool = Field(default=True, description="false: no spec may name a Python graph (it is code)")
    workspaces: list[str] = Field(
        default_factory=list, description="folders a spec's workspace may be in besides the spec's own repository"
    )
    executor: ExecutorSpec | None = Field(default=None, description="where role nodes' work runs (default: here)")
    placement: PlacementSpec | None = Field(default=None, description="the nodes a subtask may run on, by policy")


@dataclass(frozen=True)
class Operator:
    """The operator's decisions for one run: their policy, and whether the spec is trusted."""

    policy: OperatorPolicy = field(default_factory=OperatorPolicy)
    source: str = ""  # where the policy came from ("" when there is none)
    document: Document | None = None
    untrusted: bool = False
    why_untrusted: str = ""  # "GitHub Actions pull_request event", "--untrusted", ...
    workspace: Path | None = None  # --workspace DIR: the operator widens the spec's confinement
    trusted_hosts: frozenset[str] = frozenset()  # the policy's and ORCHESTRATOR_TRUSTED_HOSTS'
    trusted_keys: frozenset[str] = frozenset()  # the policy's and ORCHESTRATOR_TRUSTED_KEYS'

    @property
    def pull_request_mode(self) -> str:
        """How a refusal names pull-request mode and why it holds: `pull-request mode (--untrusted)`."""
        return f"pull-request mode ({self.why_untrusted})"

    def rule_source(self, *loc: str | int) -> str:
        """`operator policy FILE:LINE` for a field of the operator's policy."""
        if self.document is None:
            return self.source or "the operator"
        line = self.document.line_of(loc)
        return f"operator policy {self.source}" + (f":{line}" if line else "")


def policy_file(explicit: Path | None, env: Mapping[str, str]) -> Path | None:
    if explicit is not None:
        return explicit
    if env.get(POLICY_ENV):
        return Path(env[POLICY_ENV])
    config = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "sovereign-orchestrator" / "policy.yaml"
    return config if config.is_file() else None


def load_operator(
    policy: Path | None = None,
    untrusted: bool | None = None,
    workspace: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Operator:
    """The operator for this process: `policy` (else the environment's or the user's policy
    file), `untrusted` (None: detect pull-request mode from the CI environment), `workspace`."""
    env = os.environ if env is None else env
    path = policy_file(policy, env)
    document = load_yaml(path, kind="operator policy") if path is not None else None
    rules = validate_document(document, OperatorPolicy) if document is not None else OperatorPolicy()
    hosts = {h.strip().lower() for h in env.get(TRUSTED_HOSTS_ENV, "").split(",") if h.strip()}
    hosts |= {h.strip().lower() for h in rules.trusted_hosts if h.strip()}
    keys = {k.strip() for k in env.get(TRUSTED_KEYS_ENV, "").split(",") if k.strip()} | set(rules.trusted_keys)
    why = ("--untrusted" if untrusted else "") if untrusted is not None else pull_request_event(env)
    return Operator(
        policy=rules,
        source=str(path) if path is not None else "",
        document=document,
        untrusted=bool(why),
        why_untrusted=why,
        workspace=workspace.resolve() if workspace is not None else None,
        trusted_hosts=frozenset(hosts),
        trusted_keys=frozenset(keys),
    )


# GitHub Actions (GITHUB_EVENT_NAME): the events whose workflow runs only the repository's own code
# (the default branch's, or a ref someone with write access chose); any other event may run a pull
# request's code or act on its behalf, and one this table does not know is treated so too
GITHUB_TRUSTED_EVENTS = frozenset(
    {
        "push",
        "schedule",
        "workflow_dispatch",
        "release",
        "create",
        "delete",
        "registry_package",
        "page_build",
        "label",
        "milestone",
        "issues",
        "discussion",
        "discussion_comment",
        "watch",
        "fork",
        "gollum",
        "public",
        "project",
        "project_card",
        "project_column",
        "branch_protection_rule",
    }
)
# GitLab CI (CI_PIPELINE_SOURCE): the sources of pipelines on the project's own refs
GITLAB_TRUSTED_SOURCES = frozenset(
    {
        "push",
        "web",
        "schedule",
        "api",
        "trigger",
        "chat",
        "webide",
        "ondemand_dast_scan",
        "ondemand_dast_validation",
        "security_orchestration_policy",
    }
)
# variables set only when a pipeline belongs to a merge request (or an external pull request)
GITLAB_REQUEST_VARIABLES = (
    "CI_MERGE_REQUEST_IID",
    "CI_MERGE_REQUEST_ID",
    "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
    "CI_EXTERNAL_PULL_REQUEST_IID",
    "CI_OPEN_MERGE_REQUESTS",
)
BITBUCKET_REQUEST_VARIABLES = ("BITBUCKET_PR_ID", "BITBUCKET_PR_DESTINATION_BRANCH")
# Azure Pipelines (BUILD_REASON): the reasons of builds of the project's own branches
AZURE_TRUSTED_REASONS = frozenset({"Manual", "IndividualCI", "BatchedCI", "Schedule"})
AZURE_REQUEST_VARIABLES = (
    "SYSTEM_PULLREQUEST_PULLREQUESTID",
    "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER",
    "SYSTEM_PULLREQUEST_SOURCEBRANCH",
)


def pull_request_event(env: Mapping[str, str]) -> str:
    """Why this CI run may run code a pull or merge request controls ("" when it runs only the
    repository's own), from each CI system's documented variables; outside CI, ""."""
    if not env.get("CI") and not env.get("TF_BUILD"):
        return ""
    if env.get("GITHUB_ACTIONS") == "true":
        return _github(env)
    if env.get("GITLAB_CI") == "true":
        return _gitlab(env)
    if env.get("BITBUCKET_BUILD_NUMBER") or env.get("BITBUCKET_PIPELINE_UUID"):
        named = [name for name in BITBUCKET_REQUEST_VARIABLES if env.get(name)]
        return f"Bitbucket Pipelines pull request ({named[0]})" if named else ""
    if env.get("TF_BUILD", "").lower() == "true":
        return _azure(env)
    return ""


def _github(env: Mapping[str, str]) -> str:
    event = env.get("GITHUB_EVENT_NAME", "")
    if env.get("GITHUB_HEAD_REF"):
        return f"GitHub Actions {event or 'run'} event with a pull request's head (GITHUB_HEAD_REF)"
    # GitHub always names the event: without one this is no workflow run of an event
    if not event or event in GITHUB_TRUSTED_EVENTS:
        return ""
    return f"GitHub Actions {event} event"


def _gitlab(env: Mapping[str, str]) -> str:
    source = env.get("CI_PIPELINE_SOURCE", "")
    named = [name for name in GITLAB_REQUEST_VARIABLES if env.get(name)]
    if source == "merge_request_event" or (named and named[0].startswith("CI_MERGE_REQUEST")):
        return "GitLab CI merge request pipeline"
    if named:
        return f"GitLab CI pipeline of a merge or pull request ({named[0]})"
    if not source or source in GITLAB_TRUSTED_SOURCES:
        return ""
    return f"GitLab CI {source} pipeline"


def _azure(env: Mapping[str, str]) -> str:
    reason = env.get("BUILD_REASON", "")
    named = [name for name in AZURE_REQUEST_VARIABLES if env.get(name)]
    if reason == "PullRequest" or named:
        return "Azure Pipelines pull request build"
    if not reason or reason in AZURE_TRUSTED_REASONS:
        return ""
    return f"Azure Pipelines {reason} build"
