"""A provider as a run sees it: the catalog's defaults merged with the spec's settings, and
what its kind declares about it (in-process, self-hosted). Nothing here calls anything."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


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
    base_url: str | None = None
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

    @property
    def host(self) -> str | None:
        return urlsplit(self.base_url).hostname if self.base_url else None

    @property
    def is_local(self) -> bool:
        """Served from this machine: in this process, or a loopback host."""
        return self.in_process or is_loopback(self.host)

    @property
    def costed_by_time(self) -> bool:
        """Served by the user's own machine or host: priced per hour of model time, not per token."""
        return self.self_hosted or self.is_local

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None
