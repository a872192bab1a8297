"""Hosts that receive data but serve no model (an OpenTelemetry collector): the same data-class
rules as a model's host, without the model's own facts (country, license, weights). Confidential
data goes only to this machine and `allow_hosts`; `local_only` allows only this machine;
`allow_hosts`, when set, is the only place besides this machine that anything may go."""

from __future__ import annotations

from orchestrator.catalog.provider import is_loopback
from orchestrator.policy._rules import Rules


def host_refusal(host: str, rules: Rules, what: str) -> str | None:
    """Why the rules refuse sending `what` to `host`, or None when they allow it."""
    host = host.lower()
    local = is_loopback(host)
    own = local or (rules.allow_hosts is not None and host in rules.allow_hosts)
    if rules.local_only and not local:
        return f"local_only: {what} at {host} is not on this machine"
    if rules.data_class == "confidential" and not own:
        return f"confidential data stays on this machine and allow_hosts; {what} is at {host}"
    if rules.allow_hosts is not None and not own:
        return f"host {host} ({what}) is not in allow_hosts"
    return None


def host_rule(host: str, rules: Rules) -> str:
    """The rule a host passes, in words (for the egress report)."""
    local = is_loopback(host.lower())
    parts = [f"data_class {rules.data_class}", "this machine" if local else f"host {host}"]
    if rules.allow_hosts is not None and not local:
        parts.append("in allow_hosts")
    return "; ".join(parts)
