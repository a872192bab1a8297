"""The operator's floor and pull-request mode: what a spec may not do whoever wrote it.

- The operator's floor: their policy file, and `policy.*` values set with `--set` (the command
  line is the operator's, so a spec's own `policy.roles` entries cannot undo them), with budget
  ceilings, the least sandbox for checks and `python_graphs: false`.
- Pull-request mode: no host the spec introduces, no Python graph, no check the operator's
  `allow_checks` does not admit, and checks only in the sandbox.
- The effective rules, each with where it came from (what `validate` prints).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from orchestrator.catalog import Catalog, ProviderConfig
from orchestrator.policy.commands import command_refusal
from orchestrator.policy.mcp import mcp_refusals
from orchestrator.policy.trust import endpoint_field, introduced_hosts, introduced_refusal
from orchestrator.spec import LoadedSpec
from orchestrator.spec._document import OVERRIDE
from orchestrator.spec.graphfile import is_python_graph
from orchestrator.spec.operator import Operator, OperatorPolicy

RULE_FIELDS = (
    "data_class",
    "allow_countries",
    "deny_countries",
    "open_weights_only",
    "allow_licenses",
    "local_only",
    "allow_hosts",
    "serving_countries",
    "serving_regions",
    "retention",
    "trains_on_data",
)
SANDBOX_ORDER = ("off", "preferred", "required")


def refusals(
    loaded: LoadedSpec, operator: Operator, providers: dict[str, ProviderConfig], catalog: Catalog
) -> list[str]:
    """Policy violations (exit 5) of pull-request mode and the operator's policy, each naming the
    rule and where it comes from."""
    found = []
    if is_python_graph(loaded.spec.graph):
        if not operator.policy.python_graphs:
            source = operator.rule_source("python_graphs")
            found.append(f"graph: Python graphs are refused by python_graphs: false ({source}): they run code")
        elif operator.untrusted:
            found.append(
                f"graph: {operator.pull_request_mode} refuses the Python graph '{loaded.spec.graph}': "
                "it would run the spec's code"
            )
    if operator.untrusted:
        for name in loaded.spec.providers:
            found += _introduced(loaded, name, providers[name], catalog, operator)
    return found + _check_refusals(loaded, operator) + mcp_refusals(loaded, operator)


def _introduced(
    loaded: LoadedSpec, name: str, config: ProviderConfig, catalog: Catalog, operator: Operator
) -> list[str]:
    """Pull-request mode: a refusal for each host of the provider (each of a pool) the spec
    introduces, at the entry of base_urls that names it first."""
    found = []
    refused = set(introduced_hosts(config, catalog, operator.trusted_hosts))
    for index, url in enumerate(config.endpoints):
        host = (urlsplit(url).hostname or "").lower()
        if host not in refused:
            continue
        refused.discard(host)
        loc: tuple[str | int, ...] = ("providers", name, endpoint_field(config))
        where = loaded.problem(loc + ((index,) if config.is_pool else ()), "").render().rstrip(": ")
        found.append(introduced_refusal(where, operator.pull_request_mode, host))
    return found


def _check_refusals(loaded: LoadedSpec, operator: Operator) -> list[str]:
    """Checks are commands from the spec: in pull-request mode, or whenever the operator lists
    `allow_checks`, each must match one of the operator's patterns."""
    found = []
    for name, check in loaded.spec.checks.items():
        why = command_refusal(loaded, operator, ("checks", name, "run"), check.run, "allow_checks")
        found += [why] if why else []
    return found


def sandbox_floor(operator: Operator) -> tuple[str | None, str]:
    """The least sandbox the operator requires of checks, and why (PR mode requires one)."""
    mode = operator.policy.sandbox
    if operator.untrusted and mode != "required":
        return "required", operator.pull_request_mode
    return mode, operator.rule_source("sandbox")


def operator_floor(loaded: LoadedSpec, operator: Operator) -> OperatorPolicy | None:
    """The rules the spec cannot relax: the operator's policy file and the `policy.*` values set on
    the command line (tightened together: both are the operator's)."""
    assigned = _assigned_on_command_line(loaded)
    if not assigned:
        return None if operator.policy == OperatorPolicy() else operator.policy
    cli = OperatorPolicy.model_validate(assigned)
    return _stricter(operator.policy, cli)


def _assigned_on_command_line(loaded: LoadedSpec) -> dict[str, Any]:
    """The `policy` values `--set` gave, as a nested mapping (as the spec holds them)."""
    policy = loaded.spec.policy.model_dump()
    found: dict[str, Any] = {}
    for loc, origin in loaded.document.origins.items():
        if origin != OVERRIDE or len(loc) < 2 or loc[0] != "policy":
            continue
        source: Any = policy
        target = found
        for part in loc[1:-1]:
            source = source[part]
            target = target.setdefault(str(part), {})
        target[str(loc[-1])] = source[loc[-1]]
    return found


def _stricter(a: OperatorPolicy, b: OperatorPolicy) -> OperatorPolicy:
    """Two floors as one (the stricter rule of each field; role and file rules of both)."""
    merged = a.model_copy(deep=True)
    for key in RULE_FIELDS:
        setattr(merged, key, _pick(key, getattr(a, key), getattr(b, key)))
    for role, rules in b.roles.items():
        mine = merged.roles.setdefault(role, type(rules)())
        for key in RULE_FIELDS:
            setattr(mine, key, _pick(key, getattr(mine, key), getattr(rules, key)))
    for data_class, rules in b.classes.items():
        mine = merged.classes.setdefault(data_class, type(rules)())
        for key in RULE_FIELDS:
            setattr(mine, key, _pick(key, getattr(mine, key), getattr(rules, key)))
    merged.files = {**a.files, **b.files}
    merged.providers = {**b.providers, **a.providers}  # the policy file's declarations win
    return merged


def _pick(key: str, a: Any, b: Any) -> Any:
    from orchestrator.policy import CLASSES

    if a is None or b is None:
        return a if b is None else b
    if key == "data_class":
        return max(a, b, key=CLASSES.index)
    if key in ("open_weights_only", "local_only"):
        return a or b
    if key == "deny_countries":
        return sorted({*a, *b})
    if key == "retention":  # the shorter: none (zero retention) is the shortest
        return min(a, b, key=lambda days: 0 if days == "none" else int(days))
    if key == "trains_on_data":  # false (no training) wins
        return a and b
    return [v for v in a if v in set(b)]  # allow-lists: what both allow


def apply_ceilings(loaded: LoadedSpec, operator: Operator) -> list[str]:
    """The operator's budget ceilings lower the spec's limits; what was lowered, in words."""
    notes = []
    limits = loaded.spec.limits
    for key in ("max_cost_usd", "max_tokens"):
        ceiling = getattr(operator.policy, key)
        if ceiling is not None and (getattr(limits, key) is None or getattr(limits, key) > ceiling):
            setattr(limits, key, ceiling)
            notes.append(f"limits.{key} = {ceiling} ({operator.rule_source(key)})")
    floor, why = sandbox_floor(operator)
    verify = loaded.spec.verify
    if floor is not None and loaded.spec.checks:
        current = verify.sandbox  # None: the default (required in CI, else preferred)
        if (current is None and floor == "required") or (
            current is not None and SANDBOX_ORDER.index(current) < SANDBOX_ORDER.index(floor)
        ):
            verify.sandbox = floor  # type: ignore[assignment]
            notes.append(f"verify.sandbox = {floor} ({why})")
    return notes


@dataclass(frozen=True)
class PolicyLine:
    """One rule of the effective policy: its value and where it came from."""

    field: str
    value: Any
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "value": self.value, "source": self.source}


def describe_policy(loaded: LoadedSpec, floor: OperatorPolicy | None, operator: Operator) -> list[PolicyLine]:
    """The run-level rules that hold, each with its source (spec file:line, --set, the operator)."""
    spec = loaded.spec.policy
    lines = []
    for key in RULE_FIELDS:
        mine = getattr(spec, key)
        theirs = getattr(floor, key) if floor is not None else None
        value = _pick(key, mine, theirs)
        if value is None or (value is False and key != "trains_on_data" and not mine and not theirs):
            continue
        lines.append(PolicyLine(key, value, _source(loaded, operator, key, mine, theirs, value)))
    for key in ("max_cost_usd", "max_tokens"):
        value = getattr(loaded.spec.limits, key)
        if value is not None:
            ceiling = getattr(operator.policy, key)
            source = operator.rule_source(key) if ceiling == value else _spec_source(loaded, ("limits", key))
            lines.append(PolicyLine(f"limits.{key}", value, source))
    if operator.trusted_hosts:
        lines.append(PolicyLine("trusted_hosts", sorted(operator.trusted_hosts), operator.rule_source("trusted_hosts")))
    if operator.policy.allow_checks is not None:
        lines.append(PolicyLine("allow_checks", operator.policy.allow_checks, operator.rule_source("allow_checks")))
    if loaded.spec.checks and loaded.spec.verify.sandbox is not None:
        least, why = sandbox_floor(operator)
        mode = loaded.spec.verify.sandbox
        source = why if mode == least else _spec_source(loaded, ("verify", "sandbox"))
        lines.append(PolicyLine("verify.sandbox", mode, source))
    if not operator.policy.python_graphs:
        lines.append(PolicyLine("python_graphs", False, operator.rule_source("python_graphs")))
    if operator.untrusted:
        lines.append(PolicyLine("pull_request_mode", True, operator.why_untrusted))
    return lines


def _spec_source(loaded: LoadedSpec, loc: tuple[str, ...]) -> str:
    origin = loaded.document.origin_of(loc)
    if origin == OVERRIDE:
        return "--set (the operator)"
    line = loaded.document.line_of(loc) if loc[0] in loaded.document.data else None
    return f"spec {loaded.path}:{line}" if line and loc in loaded.document.lines else "default"


def _source(loaded: LoadedSpec, operator: Operator, key: str, mine: Any, theirs: Any, value: Any) -> str:
    spec_side = _spec_source(loaded, ("policy", key))
    operator_side = "--set (the operator)" if spec_side.startswith("--set") else operator.rule_source(key)
    if theirs is None:
        return spec_side
    if mine is None or spec_side == "default" or (value == theirs and value != mine):
        return operator_side
    return spec_side if value == mine and value != theirs else f"{spec_side} and {operator_side}"
