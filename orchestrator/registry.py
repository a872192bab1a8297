"""One registry for provider kinds: the built-ins register through the same entry points
(`orchestrator.providers`) that plugins use, and tests swap models by registering a kind here.

A provider kind turns a route (`ollama/qwen3:8b`) plus its provider's settings into a
LangChain chat model, and knows how to ask that model for JSON that follows a schema.
Provider SDKs are imported inside `chat_model`, never at import time.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from orchestrator.catalog import Route

ENTRY_POINT_GROUP = "orchestrator.providers"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


@dataclass(frozen=True)
class ProviderConfig:
    """A provider as the run sees it: catalog defaults merged with the spec's settings."""

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

    @property
    def host(self) -> str | None:
        return urlsplit(self.base_url).hostname if self.base_url else None

    @property
    def is_local(self) -> bool:
        """Served from this machine: the embedded model or a loopback host."""
        if self.kind == "local":
            return True
        host = self.host
        if host is None:
            return False
        if host in LOOPBACK_HOSTS:
            return True
        try:
            return ipaddress.ip_address(host.strip("[]")).is_loopback
        except ValueError:  # a name such as 127.evil.example is not loopback
            return False

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


@dataclass(frozen=True)
class CallSettings:
    temperature: float = 0.2
    max_output_tokens: int = 1024
    timeout_s: float = 120.0
    seed: int = 42
    retries: int = 2  # retries of a transient failure on one model, before falling back
    backoff_s: float = 1.0  # first backoff; doubles each retry (with jitter)
    max_wait_s: float = 30.0  # a longer Retry-After falls back at once instead of waiting
    cooldown_after: int = 3  # consecutive failed attempts that cool a provider down
    http_hooks: Any = field(default=None, compare=False)  # (sync, async) httpx event hooks: egress accounting


class ProviderKind(Protocol):
    """What a provider kind implements. `real` kinds reach a real model."""

    real: bool

    def chat_model(self, route: Route, config: ProviderConfig, settings: CallSettings) -> BaseChatModel: ...

    def structured_kwargs(self, schema: dict[str, Any], name: str, config: ProviderConfig, mode: str) -> dict[str, Any]:
        """Keyword arguments to `bind` so the model answers JSON following `schema`. A kind may
        also define `structured_modes(config)`, `rejects_format(exc)` and `schema_in_prompt(mode)`
        to negotiate modes with endpoints that support only some of them."""
        ...

    def count_tokens(self, model: BaseChatModel, text: str) -> int: ...


def estimate_tokens(text: str) -> int:
    """A conservative token estimate for models whose tokenizer we do not have (3 chars/token)."""
    return len(text) // 3 + 1


class RealModelsForbidden(RuntimeError):
    """Raised when a test that forbids real model calls reaches a real provider."""


@dataclass
class Registry:
    kinds: dict[str, ProviderKind] = field(default_factory=dict)
    loaded: bool = False
    allow_real: bool = True

    def _load(self) -> None:
        if self.loaded:
            return
        for point in entry_points(group=ENTRY_POINT_GROUP):
            self.kinds.setdefault(point.name, point.load())
        self.loaded = True

    def register(self, name: str, kind: ProviderKind) -> None:
        self._load()
        self.kinds[name] = kind

    def unregister(self, name: str) -> None:
        self.kinds.pop(name, None)

    def names(self) -> list[str]:
        self._load()
        return sorted(self.kinds)

    def get(self, name: str, calling: bool = True) -> ProviderKind:
        """The provider kind; `calling=False` when no model of it will be called (replays)."""
        self._load()
        try:
            kind = self.kinds[name]
        except KeyError:
            raise KeyError(f"unknown provider kind '{name}' (known: {', '.join(self.names())})") from None
        if calling and kind.real and not self.allow_real:
            raise RealModelsForbidden(f"real model calls are forbidden here (provider kind '{name}')")
        return kind


registry = Registry()


@contextmanager
def forbid_real_models() -> Iterator[None]:
    """Within the block, building a chat model of a real provider kind raises (for unit tests)."""
    previous = registry.allow_real
    registry.allow_real = False
    try:
        yield
    finally:
        registry.allow_real = previous
