"""Ollama hosts, through langchain-ollama's ChatOllama.

Structured output uses Ollama's `format` (a JSON Schema). ChatOllama has no timeout by
default, so a hung host would block forever: every client gets connect and read timeouts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from orchestrator.models.registry import CallSettings, ProviderKind, ProviderTraits
from orchestrator.providers._http import ssl_context

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from orchestrator.catalog import ProviderConfig, Route

DEFAULT_BASE_URL = "http://localhost:11434"


class OllamaProvider(ProviderKind):
    traits: ClassVar[ProviderTraits] = ProviderTraits(self_hosted=True, lists_models=True, native_tools=True)

    def chat_model(self, route: Route, config: ProviderConfig, settings: CallSettings) -> BaseChatModel:
        import httpx
        from langchain_ollama import ChatOllama

        sync_hooks, async_hooks = settings.http_hooks or ({}, {})
        return ChatOllama(
            model=route.model,
            base_url=config.base_url or DEFAULT_BASE_URL,
            temperature=settings.temperature,
            num_predict=settings.max_output_tokens,
            num_ctx=route.context_window,
            seed=settings.seed,
            client_kwargs={
                "timeout": httpx.Timeout(settings.client_timeout_s, connect=min(10.0, settings.timeout_s)),
                "verify": ssl_context("httpx"),  # one CA bundle load per process, not two per model
            },
            sync_client_kwargs={"event_hooks": sync_hooks},
            async_client_kwargs={"event_hooks": async_hooks},
        )

    def structured_kwargs(
        self, schema: dict[str, Any], name: str, config: ProviderConfig, mode: str = "native"
    ) -> dict[str, Any]:
        return {"format": schema}

    def list_models(self, config: ProviderConfig, timeout_s: float) -> list[str]:
        """Model tags the host serves (`/api/tags`); `name:latest` is also listed as `name`."""
        import httpx

        response = httpx.get(f"{(config.base_url or DEFAULT_BASE_URL).rstrip('/')}/api/tags", timeout=timeout_s)
        response.raise_for_status()
        names = [str(m.get("name") or m.get("model")) for m in response.json().get("models", [])]
        return names + [n.removesuffix(":latest") for n in names if n.endswith(":latest")]

    def structured_support(self, config: ProviderConfig, model: str) -> str:
        return "format (JSON schema, Ollama >= 0.5)"

    def unload_kwargs(self) -> dict[str, Any]:
        """Sent with the last call for a model before a single-model host switches models."""
        return {"keep_alive": 0}


provider = OllamaProvider()
