"""The run's models: built on first use, limited per provider and per model, cooled down when
they keep failing, and remembering which structured-output mode each endpoint accepts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from orchestrator.breaker import Breaker
from orchestrator.registry import CallSettings, ProviderConfig, ProviderKind, registry

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from orchestrator.catalog import Route

UNLIMITED = 1_000_000


@dataclass
class BoundModel:
    """A chat model ready for one route, with the provider that built it."""

    route: Route
    model: BaseChatModel
    kind: ProviderKind
    config: ProviderConfig

    def count_tokens(self, text: str) -> int:
        return self.kind.count_tokens(self.model, text)


def structured_modes(kind: Any, config: ProviderConfig) -> list[str]:
    """The structured-output modes to try for a provider, best first (kinds may omit this)."""
    modes = getattr(kind, "structured_modes", None)
    return list(modes(config)) if modes else ["native"]


class ModelPool:
    def __init__(self, providers: dict[str, ProviderConfig], settings: CallSettings) -> None:
        self.providers = providers
        self.settings = settings
        self.breaker = Breaker(threshold=settings.cooldown_after)
        self._models: dict[str, BoundModel] = {}
        self._provider_limits: dict[str, asyncio.Semaphore] = {}
        self._model_limits: dict[str, asyncio.Semaphore] = {}
        self._modes: dict[str, list[str]] = {}

    def get(self, route: Route, variant: int = 0) -> BoundModel:
        """The chat model for a route; `variant` > 0 gives one seeded differently."""
        key = route.ref if not variant else f"{route.ref}#{variant}"
        if key not in self._models:
            config = self.providers[route.provider]
            kind = registry.get(config.kind)
            settings = replace(self.settings, seed=self.settings.seed + variant)
            model = kind.chat_model(route, config, settings)
            self._models[key] = BoundModel(route=route, model=model, kind=kind, config=config)
        return self._models[key]

    @asynccontextmanager
    async def slot(self, route: Route) -> AsyncIterator[None]:
        """Wait for a free slot on the route's provider, then on the model itself."""
        config = self.providers[route.provider]
        provider = self._provider_limits.setdefault(
            route.provider, asyncio.Semaphore(config.max_concurrency or UNLIMITED)
        )
        model = self._model_limits.setdefault(
            route.ref, asyncio.Semaphore(config.max_concurrency_per_model or UNLIMITED)
        )
        async with provider, model:
            yield

    def mode(self, bound: BoundModel) -> str:
        modes = self._modes.setdefault(bound.route.ref, structured_modes(bound.kind, bound.config))
        return modes[0]

    def downgrade(self, bound: BoundModel, rejected: str) -> str | None:
        """The mode to use after the endpoint rejected `rejected`, or None when none is left.
        Concurrent calls may report the same rejection: only the first one steps down."""
        modes = self._modes.setdefault(bound.route.ref, structured_modes(bound.kind, bound.config))
        if modes[0] == rejected:
            if len(modes) < 2:
                return None
            modes.pop(0)
        return modes[0]
