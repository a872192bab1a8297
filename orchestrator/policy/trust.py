"""Where a spec may send things (see PRODUCT.md, Trust and docs/security.md).

A spec may come from a pull request, so it is untrusted: an API key is sent only to a host the
catalog knows for that provider, or to hosts the operator trusts outside the spec (their policy's
`trusted_hosts`, or ORCHESTRATOR_TRUSTED_HOSTS). In pull-request mode, no host the spec itself
introduces (a provider's base_url the catalog does not give it) is contacted at all unless the
operator trusts it. A pool (`base_urls`) is held to the same rules host by host: one host of it
that may not receive the key, or that the spec introduces, is enough to refuse it.
"""

from __future__ import annotations

from orchestrator.catalog import Catalog, ProviderConfig, is_loopback
from orchestrator.catalog.provider import hosts_of
from orchestrator.spec.operator import TRUSTED_HOSTS_ENV, TRUSTED_KEYS_ENV

__all__ = [
    "TRUSTED_HOSTS_ENV",
    "TRUSTED_KEYS_ENV",
    "catalog_hosts",
    "endpoint_field",
    "introduced_host",
    "introduced_hosts",
    "untrusted",
]


def endpoint_field(config: ProviderConfig) -> str:
    """The spec field that names a provider's hosts: base_urls for a pool, else base_url."""
    return "base_urls" if config.is_pool else "base_url"


def catalog_hosts(config: ProviderConfig, catalog: Catalog) -> set[str]:
    """The hosts the catalog itself gives a provider of this name."""
    known = {h.lower() for h in config.hosts}
    entry = catalog.providers.get(config.name)
    if entry and entry.base_url:
        known.add((ProviderConfig(name="", kind="", base_url=entry.base_url).host or "").lower())
    return known - {""}


def untrusted(
    config: ProviderConfig,
    catalog: Catalog,
    trusted: frozenset[str] = frozenset(),
    trusted_keys: frozenset[str] = frozenset(),
) -> tuple[str, str] | None:
    """(field, why) when a provider would send a key where the operator has not said it may: the
    variable must be the provider's documented one (the catalog's) or one the operator trusts, and
    the key goes only to the catalog's hosts for that provider, to hosts the operator trusts, or,
    for a provider the spec adds, to this machine. A spec cannot redirect a key, nor name any
    variable of the environment (a CI token) as one."""
    variable = config.api_key_env
    if not variable:
        return None
    entry = catalog.providers.get(config.name)
    documented = entry.api_key_env if entry is not None else None
    if variable != documented and variable not in trusted_keys:
        expected = f"its key is {documented}" if documented else "it has no documented key"
        return "api_key_env", (
            f"{variable} is not the documented key of provider '{config.name}' ({expected}); if you mean it, "
            f"set {TRUSTED_KEYS_ENV}={variable} (or trusted_keys in the operator policy) outside the spec"
        )
    known = catalog_hosts(config, catalog) | trusted
    for host in hosts_of(config):
        if host in known:
            continue
        if entry is None and (config.in_process or is_loopback(host)):  # a provider of the spec's own, here
            continue
        return endpoint_field(config), (
            f"the API key in {variable} would be sent to {host}, which is not a known host of provider "
            f"'{config.name}'; if you trust it, add it to the operator policy's trusted_hosts "
            f"(or set {TRUSTED_HOSTS_ENV}={host}) outside the spec"
        )
    return None


def introduced_hosts(config: ProviderConfig, catalog: Catalog, trusted: frozenset[str]) -> list[str]:
    """The hosts of a provider (every host of a pool) that the spec points somewhere the catalog
    does not, unless the operator trusts them (pull-request mode refuses these, loopback included:
    a port on the CI runner is the operator's, not the spec's)."""
    known = catalog_hosts(config, catalog) | trusted
    return [host for host in hosts_of(config) if host not in known]


def introduced_refusal(where: str, operator_mode: str, host: str) -> str:
    """Pull-request mode's refusal of a host the spec introduces (a provider's, an MCP server's)."""
    return (
        f"{where}: {operator_mode} refuses host {host}, which the spec introduces; "
        "the operator can trust it with trusted_hosts in their policy"
    )


def introduced_host(config: ProviderConfig, catalog: Catalog, trusted: frozenset[str]) -> str | None:
    """The first host of `introduced_hosts`, or None."""
    found = introduced_hosts(config, catalog, trusted)
    return found[0] if found else None
