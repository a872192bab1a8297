"""Telemetry is egress like any other, held to the run's policy under the operator's floor, and
refused (exit 5) before any call. `--trace` sends every prompt of the run to LangSmith's endpoint,
so that host must pass the policy at the highest data class the run's files have (for the run and
for every role), and it is listed in the egress report. `--otel` sends spans to an OpenTelemetry
collector, held to the run's rules (no role's) at the class of what the spans may repeat."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from orchestrator.catalog.provider import is_loopback
from orchestrator.errors import PolicyError
from orchestrator.policy._rules import Rules, host_refusal, rules_for

if TYPE_CHECKING:
    from orchestrator.policy.egress import Egress
    from orchestrator.spec import PolicySpec
    from orchestrator.spec.operator import OperatorPolicy

LANGSMITH = "https://api.smith.langchain.com"
NO_ROLE = "__telemetry__"  # no role's own rules apply to an OpenTelemetry collector: the run's do


def tracing_host(env: Mapping[str, str]) -> str:
    endpoint = env.get("LANGSMITH_ENDPOINT") or env.get("LANGCHAIN_ENDPOINT") or LANGSMITH
    return (urlsplit(endpoint).hostname or "").lower()


def allow_tracing(
    policy: PolicySpec,
    floor: OperatorPolicy | None,
    *,
    roles: Iterable[str],
    data_class: str,
    egress: Egress | None,
    env: Mapping[str, str] | None = None,
) -> None:
    """PolicyError when the tracing endpoint may not receive what the run sees (`data_class`: the
    highest class of its files); else declare it in the egress report (when there is one yet)."""
    host = tracing_host(os.environ if env is None else env)
    for owner in ["", *roles]:
        rules = rules_for(policy, owner, data_class, floor)
        why = host_refusal("the tracing endpoint", host, is_loopback(host), rules)
        if why:
            scope = f"role '{owner}'" if owner else "the run"
            raise PolicyError(f"--trace: LangSmith at {host} would receive every prompt of {scope}: {why}")
    if egress is not None:
        rule = f"data_class {data_class}; --trace (the operator)"
        egress.declare(host, "langsmith tracing", rule, "tracing traffic is not counted")


def collector_rules(policy: PolicySpec, floor: OperatorPolicy | None, *, host: str, data_class: str) -> Rules:
    """The rules the OpenTelemetry collector at `host` passes (the run's at `data_class`, under the
    operator's floor); PolicyError when they refuse it."""
    rules = rules_for(policy, NO_ROLE, data_class, floor)
    refused = host_refusal("the OpenTelemetry collector", host, is_loopback(host), rules)
    if refused:
        raise PolicyError(
            f"OpenTelemetry export refused by the policy: {refused}",
            hint="point OTEL_EXPORTER_OTLP_ENDPOINT at a collector on this machine or in policy.allow_hosts",
        )
    return rules
