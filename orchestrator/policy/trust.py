"""The rule that keeps API keys at home (see PRODUCT.md, Trust).

A spec may come from a pull request, so it is untrusted: an API key is sent only to a host the
catalog knows for that provider, or to hosts the operator lists outside the spec in
ORCHESTRATOR_TRUSTED_HOSTS. A spec that points a key at any other host fails validation.
"""

from __future__ import annotations

import os

from orchestrator.catalog import Catalog, ProviderConfig

TRUSTED_HOSTS_ENV = "ORCHESTRATOR_TRUSTED_HOSTS"


def trusted_hosts() -> set[str]:
    return {h.strip().lower() for h in os.environ.get(TRUSTED_HOSTS_ENV, "").split(",") if h.strip()}


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
