"""A provider as a run sees it: the catalog's defaults merged with the spec's settings, and
what its kind declares about it (in-process, self-hosted). Nothing here calls anything."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from orchestrator.catalog.serving import Gateway, Serving

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
HOST_COOLDOWN_S = 60.0  # how long a host of a pool that keeps failing gets no calls, by default


def is_loopback(host: str | None) -> bool:
    """A host name or address of this machine (a name such as 127.evil.example is not)."""
    if host is None:
        return False
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ProviderConfig:
    """A provider: its kind, endpoint, credentials' variable and limits, with the traits its kind
    declares (`in_process`: runs inside this process; `self_hosted`: the user's own machine or
    host, costed by time rather than tokens)."""

    name: str
    kind: str
    base_url: str | None = None  # the endpoint; of a pool, its first host
    base_urls: tuple[str, ...] = ()  # a pool: every host of the same service (empty: base_url alone)
    api_key_env: str | None = None
    hosts: tuple[str, ...] = ()
    max_concurrency: int | None = None
    max_concurrency_per_model: int | None = None
    structured_output: str | None = None
    compact_output: bool = False  # tight bounds on output strings and lists, for very small models
    usd_per_hour: float = 0.0  # what an hour of a self-hosted model's time costs (no token price)
    max_loaded_models: int | None = None  # a host that keeps this many models loaded (1: swap-aware)
    in_process: bool = False  # declared by the kind: the model runs in this process
    self_hosted: bool = False  # declared by the kind: the user's own host (Ollama), whatever its address
    native_tools: bool = False  # tools as the endpoint's own tool calls (the kind's trait, or tool_calling)
    host_cooldown_s: float = HOST_COOLDOWN_S  # a pool: how long a host that keeps failing gets no calls
    serving: Serving | None = None  # where it serves inference (the operator's, the spec's or the catalog's)
    host_serving: tuple[tuple[str, Serving], ...] = ()  # a pool: where each host serves, when declared
    gateway: Gateway | None = None  # it routes requests on; its hook pins them (catalog.serving)

    @property
    def host(self) -> str | None:
        """The endpoint's host; of a pool, its first host's (policy checks use `hosts_of`)."""
        return urlsplit(self.base_url).hostname if self.base_url else None

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Every base URL calls may go to: the pool's, or base_url alone (none: the kind's default)."""
        return self.base_urls or ((self.base_url,) if self.base_url else ())

    @property
    def is_pool(self) -> bool:
        return len(self.base_urls) > 1

    def at(self, base_url: str) -> ProviderConfig:
        """This provider as one host of its pool sees it (what a provider kind builds a model for)."""
        return replace(self, base_url=base_url, base_urls=())

    @property
    def is_local(self) -> bool:
        """Served from this machine: in this process, or loopback hosts only (every host of a pool)."""
        hosts = hosts_of(self)
        return self.in_process or (bool(hosts) and all(is_loopback(h) for h in hosts))

    @property
    def costed_by_time(self) -> bool:
        """Served by the user's own machine or host: priced per hour of model time, not per token."""
        return self.self_hosted or self.is_local

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


def hosts_of(config: ProviderConfig) -> tuple[str, ...]:
    """Every host a provider's calls may reach, lower-cased, in the order given (a pool's hosts,
    or the one of base_url; none for a provider without an endpoint of its own)."""
    found: list[str] = []
    for url in config.endpoints:
        host = (urlsplit(url).hostname or "").lower()
        if host and host not in found:
            found.append(host)
    return tuple(found)
