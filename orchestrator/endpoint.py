"""The endpoints a run may call: the catalog's providers merged with the spec's, and the rule
that keeps API keys at home (see PRODUCT.md, Trust).

A spec may come from a pull request, so it is untrusted: an API key is sent only to a host the
catalog knows for that provider, or to hosts the operator lists outside the spec in
ORCHESTRATOR_TRUSTED_HOSTS. A spec that points a key at any other host fails validation.
"""

from __future__ import annotations

import os

from orchestrator.catalog import Catalog, load_catalog
from orchestrator.errors import Problem
from orchestrator.registry import ProviderConfig, registry
from orchestrator.source import close_match
from orchestrator.spec import LoadedSpec

TRUSTED_HOSTS_ENV = "ORCHESTRATOR_TRUSTED_HOSTS"


def trusted_hosts() -> set[str]:
    return {h.strip().lower() for h in os.environ.get(TRUSTED_HOSTS_ENV, "").split(",") if h.strip()}


def default_providers() -> dict[str, ProviderConfig]:
    """The providers the catalog defines, before any spec changes them."""
    return {
        name: ProviderConfig(
            name=name,
            kind=e.kind,
            base_url=e.base_url,
            api_key_env=e.api_key_env,
            hosts=e.hosts,
            max_concurrency=e.max_concurrency,
            compact_output=e.compact_output,
        )
        for name, e in load_catalog().providers.items()
    }


def merge_providers(loaded: LoadedSpec, catalog: Catalog, problems: list[Problem]) -> dict[str, ProviderConfig]:
    providers = default_providers()
    kinds = registry.names()
    for name, override in loaded.spec.providers.items():
        base = providers.get(name)
        kind = override.kind or (base.kind if base else None)
        if kind is None:
            problems.append(loaded.problem(("providers", name), f"new provider needs a kind ({', '.join(kinds)})"))
            continue
        if kind not in kinds:
            hint = close_match(kind, kinds)
            problems.append(loaded.problem(("providers", name, "kind"), f"unknown provider kind '{kind}'{hint}"))
            continue
        config = ProviderConfig(
            name=name,
            kind=kind,
            base_url=override.base_url or (base.base_url if base else None),
            api_key_env=override.api_key_env or (base.api_key_env if base else None),
            hosts=base.hosts if base else (),
            max_concurrency=override.max_concurrency or (base.max_concurrency if base else None),
            max_concurrency_per_model=override.max_concurrency_per_model,
            compact_output=override.compact_output
            if override.compact_output is not None
            else bool(base and base.compact_output),
            structured_output=override.structured_output,
            usd_per_hour=override.usd_per_hour
            if override.usd_per_hour is not None
            else (base.usd_per_hour if base else 0.0),
            max_loaded_models=override.max_loaded_models,
        )
        reason = untrusted(config, catalog)
        if reason:
            problems.append(loaded.problem(("providers", name, "base_url"), reason))
        providers[name] = config
    return providers


def untrusted(config: ProviderConfig, catalog: Catalog) -> str | None:
    """An API key goes only to a host the catalog knows for the provider, or one the operator
    trusts outside the spec; a spec from a pull request cannot redirect a key."""
    if not config.api_key_env or config.host is None:
        return None
    known = set(config.hosts) | trusted_hosts()
    entry = catalog.providers.get(config.name)
    if entry and entry.base_url:
        known.add(ProviderConfig(name="", kind="", base_url=entry.base_url).host or "")
    if config.host.lower() in known or config.is_local:
        return None
    return (
        f"the API key in {config.api_key_env} would be sent to {config.host}, which is not a known host "
        f"of provider '{config.name}'; if you trust it, set {TRUSTED_HOSTS_ENV}={config.host} outside the spec"
    )
