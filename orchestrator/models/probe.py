"""`orchestrator models --check`: ask each provider what it serves, and whether each role's
chain has a reachable model with structured output. Calls no model; lists models only."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from orchestrator.catalog import ProviderConfig
from orchestrator.models.failure import classify
from orchestrator.models.registry import registry


@dataclass
class ProviderStatus:
    name: str
    kind: str
    endpoint: str
    ok: bool
    detail: str
    models: list[str] = field(default_factory=list)


def probe_provider(config: ProviderConfig, timeout_s: float = 5.0) -> ProviderStatus:
    if config.is_pool:
        return _probe_pool(config, timeout_s)
    endpoint = config.base_url or "(in-process)"
    kind = registry.get(config.kind)
    if not kind.traits.lists_models:
        return ProviderStatus(config.name, config.kind, endpoint, False, "this provider kind cannot list models")
    try:
        models = list(kind.list_models(config, timeout_s))
    except Exception as exc:  # noqa: BLE001 - any failure to list is reported, classified in one table
        error = classify(exc, config.name)
        return ProviderStatus(config.name, config.kind, endpoint, False, f"{error.kind}: {error.message}")
    return ProviderStatus(config.name, config.kind, endpoint, True, f"{len(models)} models", models)


def _probe_pool(config: ProviderConfig, timeout_s: float) -> ProviderStatus:
    """Each host of a pool: it serves what every host that answered serves; a host that does not
    answer is named (the others still take the calls)."""
    found = [probe_provider(config.at(url), timeout_s) for url in config.base_urls]
    answered = [status for status in found if status.ok]
    down = [f"{status.endpoint}: {status.detail}" for status in found if not status.ok]
    models = sorted(set.intersection(*(set(status.models) for status in answered))) if answered else []
    detail = "; ".join([f"{len(models)} models on {len(answered)} of {len(found)} hosts", *down])
    return ProviderStatus(config.name, config.kind, " ".join(config.base_urls), bool(answered), detail, models)


def probe_providers(providers: dict[str, ProviderConfig], timeout_s: float = 5.0) -> dict[str, ProviderStatus]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda c: probe_provider(c, timeout_s), providers.values()))
    return {status.name: status for status in statuses}


def default_providers_to_check(providers: dict[str, ProviderConfig]) -> dict[str, ProviderConfig]:
    """Without a spec: local and keyless providers, and API providers whose key is set."""
    return {name: c for name, c in providers.items() if not c.api_key_env or c.api_key()}


def probe_chains(
    chains: dict[str, list[Any]], providers: dict[str, ProviderConfig], statuses: dict[str, ProviderStatus]
) -> list[dict[str, Any]]:
    rows = []
    for role, chain in chains.items():
        for route in chain:
            status = statuses.get(route.provider)
            served = bool(status and status.ok and route.model in status.models)
            if status is None:
                why = "provider not checked"
            elif not status.ok:
                why = status.detail
            elif not served:
                why = f"{route.provider} does not serve '{route.model}'"
            else:
                why = "ok"
            kind = registry.get(providers[route.provider].kind)
            structured = kind.structured_support(providers[route.provider], route.model)
            rows.append(
                {"role": role, "model": route.ref, "reachable": served, "detail": why, "structured": structured}
            )
    return rows


def unreachable_roles(rows: list[dict[str, Any]], needed: list[str]) -> list[str]:
    reachable = {row["role"] for row in rows if row["reachable"]}
    return [role for role in needed if role not in reachable]
