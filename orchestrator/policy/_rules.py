"""Data-sovereignty policy, applied when model chains are resolved, before any call.

A model the policy does not allow is removed from the chain with the reason, so a fallback can
never route around the policy. Rules come from the run (`policy:`), may be tightened or changed per
role (`policy.roles.ROLE`), and files can be classed by glob (`policy.files`): a subtask that sees
a confidential file is held to the confidential rules, whatever the run's class. Confidential data
goes only to models served from this machine (the embedded model, a loopback host) or from
`allow_hosts`, the hosts the user lists as their own. A provider with a pool of hosts
(`base_urls`) is allowed only when every host of it is: a call may go to any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.catalog.provider import hosts_of, is_loopback
from orchestrator.spec import DATA_CLASSES
from orchestrator.workspace import glob_match

if TYPE_CHECKING:
    from orchestrator.catalog import ModelEntry, ProviderConfig, Route
    from orchestrator.spec import PolicySpec, RulesSpec
    from orchestrator.spec.operator import OperatorPolicy

CLASSES = DATA_CLASSES  # ordered: a mix of files takes the highest


@dataclass(frozen=True)
class Rules:
    """The rules that hold for one role and one data class."""

    data_class: str
    allow_countries: frozenset[str] | None
    deny_countries: frozenset[str]
    open_weights_only: bool
    allow_licenses: frozenset[str] | None
    local_only: bool
    allow_hosts: frozenset[str] | None
    # where inference runs (policy/serving.py), not where the lab is
    serving_countries: frozenset[str] | None = None
    serving_regions: frozenset[str] | None = None
    retention_days: int | None = None  # the longest a server may keep prompts (0: zero retention)
    no_training: bool = False  # trains_on_data: false


def rules_for(
    policy: PolicySpec, role: str, data_class: str | None = None, floor: OperatorPolicy | None = None
) -> Rules:
    """The run's rules, overridden by the role's, at the given data class (or the role's own),
    held to the rules of that data class (`classes`); tightened by the operator's `floor`, which
    the spec's own role and class entries cannot undo."""
    layers: list[RulesSpec] = [policy, *([policy.roles[role]] if role in policy.roles else [])]
    found = _with_class(policy.classes, _layered(layers, data_class, "internal"))
    if floor is None:
        return found
    layers = [floor, *([floor.roles[role]] if role in floor.roles else [])]
    return tighter(found, _with_class(floor.classes, _layered(layers, data_class, CLASSES[0])))


def _with_class(classes: Mapping[Any, RulesSpec], rules: Rules) -> Rules:
    """The rules tightened by those of their data class, when there are any."""
    extra = classes.get(rules.data_class)
    return rules if extra is None else tighter(rules, _layered([extra], rules.data_class, rules.data_class))


def _layered(layers: list[RulesSpec], data_class: str | None, default: str) -> Rules:
    def pick(name: str) -> Any:
        value = None
        for layer in layers:
            if getattr(layer, name) is not None:
                value = getattr(layer, name)
        return value

    def codes(values: Any) -> frozenset[str] | None:
        return None if values is None else frozenset(str(v).upper() for v in values)

    base = str(pick("data_class") or default)
    effective = max(base, data_class or base, key=CLASSES.index)
    licenses, hosts = pick("allow_licenses"), pick("allow_hosts")
    return Rules(
        data_class=effective,
        allow_countries=codes(pick("allow_countries")),
        deny_countries=codes(pick("deny_countries")) or frozenset(),
        open_weights_only=bool(pick("open_weights_only")),
        allow_licenses=None if licenses is None else frozenset(str(v) for v in licenses),
        local_only=bool(pick("local_only")),
        allow_hosts=None if hosts is None else frozenset(str(h).lower() for h in hosts),
        serving_countries=codes(pick("serving_countries")),
        serving_regions=None if pick("serving_regions") is None else frozenset(pick("serving_regions")),
        retention_days=_days(pick("retention")),
        no_training=pick("trains_on_data") is False,
    )


def _days(retention: Any) -> int | None:
    """A retention rule in days (none: 0; no rule: None)."""
    return None if retention is None else (0 if retention == "none" else int(retention))


def _least(a: int | None, b: int | None) -> int | None:
    return a if b is None else (b if a is None else min(a, b))


def _both(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    """An allow-list held by both: what both allow (None: no list)."""
    if a is None or b is None:
        return a if b is None else b
    return a & b


def tighter(a: Rules, b: Rules) -> Rules:
    """The stricter of two sets of rules, field by field: the higher data class, what both
    allow-lists allow, everything either deny-list denies, either's local-only and open-weights."""
    return Rules(
        data_class=max(a.data_class, b.data_class, key=CLASSES.index),
        allow_countries=_both(a.allow_countries, b.allow_countries),
        deny_countries=a.deny_countries | b.deny_countries,
        open_weights_only=a.open_weights_only or b.open_weights_only,
        allow_licenses=_both(a.allow_licenses, b.allow_licenses),
        local_only=a.local_only or b.local_only,
        allow_hosts=_both(a.allow_hosts, b.allow_hosts),
        serving_countries=_both(a.serving_countries, b.serving_countries),
        serving_regions=_both(a.serving_regions, b.serving_regions),
        retention_days=_least(a.retention_days, b.retention_days),
        no_training=a.no_training or b.no_training,
    )


def file_class(policy: PolicySpec, path: str, floor: OperatorPolicy | None = None) -> str:
    """The data class of one workspace file: the highest of the run's class and its globs' (the
    spec's and the operator's)."""
    found = str(policy.data_class or "internal")
    if floor is not None and floor.data_class is not None:
        found = max(found, floor.data_class, key=CLASSES.index)
    globs = [*policy.files.items(), *(floor.files.items() if floor is not None else [])]
    for pattern, data_class in globs:
        if glob_match(path, pattern):
            found = max(found, data_class, key=CLASSES.index)
    return found


def host_refusal(name: str, host: str, local: bool, rules: Rules) -> str | None:
    """Why the rules refuse to send data to `host` (a model's, a tracing collector's), or None."""
    own = local or (rules.allow_hosts is not None and host in rules.allow_hosts)
    if rules.local_only and not local:
        return f"local_only: {name} is served from {host}"
    if rules.data_class == "confidential" and not own:
        return f"confidential data stays on this machine and allow_hosts; {name} is served from {host}"
    if rules.allow_hosts is not None and not own:
        return f"host {host} is not in allow_hosts"
    return None


def host_rule(host: str, rules: Rules) -> str:
    """The rule a host that serves no model (a collector) passes, in words (for the egress report)."""
    local = is_loopback(host.lower())
    parts = [f"data_class {rules.data_class}", "this machine" if local else f"host {host}"]
    if rules.allow_hosts is not None and not local:
        parts.append("in allow_hosts")
    return "; ".join(parts)


def refusal(route: Route, entry: ModelEntry | None, provider: ProviderConfig, rules: Rules) -> str | None:
    """Why the rules refuse this route, or None when it is allowed."""
    for host in hosts_of(provider) or ("",):  # every host of a pool must be allowed
        local = (provider.in_process or is_loopback(host)) if host else provider.is_local
        why = host_refusal(provider.name, host, local, rules)
        if why:
            return why
    if rules.allow_countries is not None:
        if entry is None:
            return "country unknown (model not in the catalog) and allow_countries is set"
        if entry.country not in rules.allow_countries:
            return f"country {entry.country} not in allow_countries"
    if entry is not None and entry.country in rules.deny_countries:
        return f"country {entry.country} is in deny_countries"
    if rules.open_weights_only:
        if entry is None:
            return "open weights unknown (model not in the catalog) and open_weights_only is set"
        if not entry.open_weights:
            return "weights are not open and open_weights_only is set"
    if rules.allow_licenses is not None:
        if entry is None:
            return "license unknown (model not in the catalog) and allow_licenses is set"
        if entry.license not in rules.allow_licenses:
            return f"license {entry.license} not in allow_licenses"
    return None


def allowed_by(route: Route, entry: ModelEntry | None, provider: ProviderConfig, rules: Rules) -> str:
    """The rule a route passes, in words (for the egress report)."""
    hosts = hosts_of(provider)
    where = "this machine" if provider.is_local else f"host{'s' if len(hosts) > 1 else ''} {', '.join(hosts)}"
    parts = [f"data_class {rules.data_class}", where]
    if rules.allow_countries is not None and entry is not None:
        parts.append(f"country {entry.country} in allow_countries")
    if rules.allow_hosts is not None and not provider.is_local:
        parts.append("in allow_hosts")
    if rules.allow_licenses is not None and entry is not None:
        parts.append(f"license {entry.license} allowed")
    return "; ".join(parts)
