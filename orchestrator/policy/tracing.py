"""Tracing is egress like any other: `--trace` sends every prompt of the run to LangSmith's
endpoint, so that host must pass the policy at the highest data class the run's files have (for
the run and for every role), and it is listed in the egress report. Refused: exit 5 before any
call."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from orchestrator.catalog.provider import is_loopback
from orchestrator.errors import PolicyError
from orchestrator.policy._rules import host_refusal, rules_for

if TYPE_CHECKING:
    from orchestrator.policy.egress import Egress
    from orchestrator.spec import PolicySpec
    from orchestrator.spec.operator import OperatorPolicy

LANGSMITH = "https://api.smith.langchain.com"


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
