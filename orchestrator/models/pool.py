"""The run's models: built on first use, limited per provider and per model, cooled down when
they keep failing, and remembering which structured-output mode each endpoint accepts. A provider
with a pool of hosts (`base_urls`) has one chat model per host, and each attempt of a call takes
a host from its `HostPool` (_hosts.py), where the limits hold per host."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from orchestrator.errors import ProviderError
from orchestrator.log import get_logger
from orchestrator.models._breaker import Breaker
from orchestrator.models._hosts import Host, HostPool
from orchestrator.models._schedule import ModelGate
from orchestrator.models.budget import Budget
from orchestrator.models.registry import CallSettings, ProviderKind, registry
from orchestrator.models.timing import RunClock

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from orchestrator.catalog import ProviderConfig, Route
    from orchestrator.models.cache import ResponseCache
    from orchestrator.models.recording import Recorder
    from orchestrator.policy.egress import Egress


class _NoLimit:
    """An async context manager that waits for nothing (a provider or model without a limit)."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


_UNLIMITED: Any = _NoLimit()
log = get_logger(__name__)


@dataclass
class BoundModel:
    """A chat model ready for one route, with the provider that built it."""

    route: Route
    model: BaseChatModel
    kind: ProviderKind
    config: ProviderConfig  # the provider's (of a pool: all of it, whichever host the model calls)
    counter: Callable[[str], int] | None = None
    variant: int = 0

    def count_tokens(self, text: str) -> int:
        if self.counter is not None:
            return self.counter(text)
        return self.kind.count_tokens(self.model, text)


class ModelPool:
    def __init__(
        self,
        providers: dict[str, ProviderConfig],
        settings: CallSettings,
        budget: Budget | None = None,
        recorder: Recorder | None = None,
        cache: ResponseCache | None = None,
        egress: Egress | None = None,
        allowed: dict[str, str] | None = None,
    ) -> None:
        self.providers = providers
        self.settings = settings
        self.budget = budget or Budget()
        self.recorder = recorder
        self.cache = cache
        self.egress = egress
        self.allowed = allowed or {}  # provider/model -> the policy rule it passed
        self.secrets: list[str] = []  # values never to write or send (secret.py)
        self.breaker = Breaker(threshold=settings.cooldown_after)
        self.clock = RunClock()  # the run's clock (timing.py); a resumed run keeps its first start
        self._models: dict[str, BoundModel] = {}
        self._provider_limits: dict[str, asyncio.Semaphore] = {}
        self._model_limits: dict[str, asyncio.Semaphore] = {}
        self._modes: dict[str, list[str]] = {}
        self._gates: dict[str, ModelGate] = {}
        self._pools: dict[str, HostPool] = {}

    def get(self, route: Route, variant: int = 0, url: str | None = None) -> BoundModel:
        """The chat model for a route; `variant` > 0 gives one seeded differently; `url` picks the
        host of a pool (by default its first)."""
        config = self.providers[route.provider]
        url = url or (config.base_urls[0] if config.is_pool else None)
        key = (route.ref if not variant else f"{route.ref}#{variant}") + (f"@{url}" if url else "")
        if route.pin is not None:  # a pinned request is another model (its body, maybe its endpoint)
            key += f"|{route.pin.body}|{route.pin.base_url or ''}"
        if key not in self._models:
            self._models[key] = self._build(route, variant, url)
        return self._models[key]

    def _build(self, route: Route, variant: int, url: str | None) -> BoundModel:
        """The model of a route (on one host of a pool), wrapped in the run's layers: answers from
        a replay, or the provider's model behind the result cache and the recorder, when they are on."""
        from orchestrator.models.cache import CachingChatModel
        from orchestrator.models.recording import RecordingChatModel, ReplayChatModel

        config = self.providers[route.provider]
        settings = replace(self.settings, seed=self.settings.seed + variant)
        params: dict[str, Any] = {
            "temperature": settings.temperature,
            "max_output_tokens": settings.max_output_tokens,
            "seed": settings.seed,
        }
        if config.base_url:  # the same model name on another host is another model (cache, recordings)
            params["endpoint"] = " ".join(config.endpoints)  # a pool is one service, whichever host answers
        if route.pin is not None:  # an answer to an unpinned request is not one to a pinned request
            params["pinning"] = route.pin.as_dict()
            settings = replace(settings, pinning=route.pin)
        recorder = self.recorder
        if recorder is not None and recorder.mode == "replay":  # nothing is built, loaded or contacted
            kind = registry.get(config.kind, calling=False)
            replay = ReplayChatModel(route=route.ref, params=params, recorder=recorder)
            counter = self._counter(route, lambda text: kind.count_tokens(replay, text))
            return BoundModel(route, replay, kind, config, counter, variant)
        kind = registry.get(config.kind)
        if self.egress is not None:
            if config.in_process:
                self.egress.in_process.add(route.ref)
            rule = self.allowed.get(route.ref, "allowed by the policy")
            settings = replace(settings, http_hooks=self.egress.hooks(route.ref, rule))
        inner = kind.chat_model(route, config.at(url) if url else config, settings)
        model: BaseChatModel = inner
        if self.cache is not None:
            model = CachingChatModel(route=route.ref, params=params, recorder=self.cache, inner=model)
        if recorder is not None:
            model = RecordingChatModel(route=route.ref, params=params, recorder=recorder, inner=model)
        counter = self._counter(route, lambda text: kind.count_tokens(inner, text))
        return BoundModel(route, model, kind, config, counter, variant)

    def _counter(self, route: Route, count: Callable[[str], int]) -> Callable[[str], int] | None:
        """Token counts go through the recorder (recorded, or served on replay) when there is one."""
        recorder = self.recorder
        if recorder is None:
            return None
        return lambda text: recorder.count(route.ref, text, count)

    def gate(self, provider: str) -> ModelGate | None:
        """The swap-aware gate of a host that keeps one model loaded, else None (a pool of such
        hosts is gated as one host with the room of all of them)."""
        config = self.providers[provider]
        if not config.max_loaded_models:
            return None
        if provider not in self._gates:
            room = (config.max_concurrency or 1) * max(1, len(config.base_urls))
            self._gates[provider] = ModelGate(capacity=room)
        return self._gates[provider]

    def hosts(self, provider: str) -> HostPool | None:
        """The host pool of a provider with `base_urls`, else None."""
        config = self.providers[provider]
        if not config.is_pool:
            return None
        if provider not in self._pools:
            self._pools[provider] = HostPool(
                config.base_urls,
                max_concurrency=config.max_concurrency,
                max_per_model=config.max_concurrency_per_model,
                threshold=self.settings.cooldown_after,
                cooldown_s=config.host_cooldown_s,
            )
        return self._pools[provider]

    @asynccontextmanager
    async def lease(self, route: Route) -> AsyncIterator[Host | None]:
        """For one attempt of a call on a pool: the least busy healthy host, a place on it taken
        (within its limits) until the attempt is done. None for a provider of one host."""
        pool = self.hosts(route.provider)
        if pool is None:
            yield None
            return
        host = await pool.acquire(route.ref)
        try:
            yield host
        finally:
            pool.release(host, route.ref)

    def on(self, bound: BoundModel, host: Host | None) -> BoundModel:
        """The route's model on the host of a lease (itself for a provider of one host)."""
        return bound if host is None else self.get(bound.route, bound.variant, host.url)

    def succeeded(self, route: Route, host: Host | None) -> None:
        self.breaker.success(route.provider, route.ref)
        pool = self.hosts(route.provider)
        if pool is not None and host is not None:
            pool.succeeded(host)

    def failed(self, route: Route, host: Host | None, error: ProviderError) -> None:
        """Count a failed attempt: in the breaker, or, for a transient failure on a pool, against
        its host (the provider opens when every host of it is cooling). Slow is not broken: an
        error that does not say the model is broken (a local model's timeout) counts nowhere."""
        if not error.breaks:
            log.info("model.slow", model=route.ref, error=error.message)
            return
        pool = self.hosts(route.provider)
        if pool is None or host is None or not error.retryable:
            self.breaker.failure(route.provider, route.ref, error)
            return
        if not pool.failed(host):
            return
        log.warning("host.cooled", provider=route.provider, host=host.name, for_s=pool.cooldown_s, error=error.message)
        if pool.all_cooling():
            self.breaker.open(route.provider, f"every host of the pool cooled down, last: {error.message}")

    @asynccontextmanager
    async def slot(self, route: Route) -> AsyncIterator[bool]:
        """Wait for a turn on a single-model host, then a free slot on the provider and the
        model (on a pool these are per host: each attempt takes its `lease`). Yields whether the
        host may unload the model after this call."""
        config = self.providers[route.provider]
        per_host = config.is_pool  # then the host's lease holds the provider's and the model's limits
        if config.max_concurrency and not per_host and route.provider not in self._provider_limits:
            self._provider_limits[route.provider] = asyncio.Semaphore(config.max_concurrency)
        if config.max_concurrency_per_model and not per_host and route.ref not in self._model_limits:
            self._model_limits[route.ref] = asyncio.Semaphore(config.max_concurrency_per_model)
        provider = self._provider_limits.get(route.provider) or _UNLIMITED
        model = self._model_limits.get(route.ref) or _UNLIMITED
        gate = self.gate(route.provider)
        last = await gate.acquire(route.model) if gate is not None else False
        try:
            async with provider, model:
                yield last
        finally:
            if gate is not None:
                gate.release()

    def mode(self, bound: BoundModel) -> str:
        modes = self._modes.setdefault(bound.route.ref, bound.kind.structured_modes(bound.config))
        return modes[0]

    def downgrade(self, bound: BoundModel, rejected: str) -> str | None:
        """The mode to use after the endpoint rejected `rejected`, or None when none is left.
        Concurrent calls may report the same rejection: only the first one steps down."""
        modes = self._modes.setdefault(bound.route.ref, bound.kind.structured_modes(bound.config))
        if modes[0] == rejected:
            if len(modes) < 2:
                return None
            modes.pop(0)
        return modes[0]
