"""Anthropic's own Messages API (`POST /v1/messages`), over httpx: the one Claude endpoint where a
request can pin where inference runs (`inference_geo`) and the answer reports where it ran
(`usage.inference_geo`), https://platform.claude.com/docs/en/build-with-claude/data-residency.
The OpenAI-compatible endpoint (the `anthropic` provider of kind openai) has neither.

Structured output: the schema goes into the prompt and the answer is validated (and repaired
once) like any JSON-mode answer. Tools: one JSON action per turn (no native tool calls here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from orchestrator.models.registry import CallSettings, ProviderKind, ProviderTraits
from orchestrator.providers._http import endpoint

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from orchestrator.catalog import ProviderConfig, Route


class AnthropicProvider(ProviderKind):
    traits: ClassVar[ProviderTraits] = ProviderTraits()

    def chat_model(self, route: Route, config: ProviderConfig, settings: CallSettings) -> BaseChatModel:
        from pydantic import SecretStr

        from orchestrator.providers._anthropic_messages import AnthropicMessages

        base_url, key, pin = endpoint(config, settings)
        sync_hooks, async_hooks = settings.http_hooks or ({}, {})
        return AnthropicMessages(
            model=route.model,
            base_url=base_url,
            api_key=SecretStr(key or ""),
            max_tokens=settings.max_output_tokens,
            temperature=settings.temperature,
            timeout_s=settings.client_timeout_s,
            extra_body=pin,
            sync_hooks=sync_hooks,
            async_hooks=async_hooks,
        )

    def structured_modes(self, config: ProviderConfig) -> list[str]:
        return ["prompt"]

    def structured_kwargs(self, schema: dict[str, Any], name: str, config: ProviderConfig, mode: str) -> dict[str, Any]:
        return {}

    def schema_in_prompt(self, mode: str) -> bool:
        return True


provider = AnthropicProvider()
