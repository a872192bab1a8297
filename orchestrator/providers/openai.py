"""Any OpenAI-compatible endpoint (OpenRouter, DeepSeek, Mistral, vLLM, llama.cpp server),
through langchain-openai's ChatOpenAI.

Structured output asks for `response_format: json_schema` unless the provider says it only
supports `json_object` (llama-cpp-python's server, for one); the answer is validated either way.
ChatOpenAI's own retries are off: the orchestrator keeps exactly one retry layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.registry import CallSettings, ProviderConfig, estimate_tokens

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from orchestrator.catalog import Route


class OpenAICompatibleProvider:
    real = True

    def chat_model(self, route: Route, config: ProviderConfig, settings: CallSettings) -> BaseChatModel:
        from langchain_openai import ChatOpenAI
        from pydantic import SecretStr

        if not config.base_url:
            raise ValueError(f"provider '{config.name}' needs a base_url")
        key = config.api_key()
        if config.api_key_env and not key:
            raise PermissionError(f"environment variable {config.api_key_env} is not set")
        return ChatOpenAI(
            model=route.model,
            base_url=config.base_url,
            api_key=SecretStr(key or "not-needed"),
            temperature=settings.temperature,
            max_completion_tokens=settings.max_output_tokens,
            seed=settings.seed,
            timeout=settings.timeout_s,
            max_retries=0,
        )

    def structured_kwargs(self, schema: dict[str, Any], name: str, config: ProviderConfig) -> dict[str, Any]:
        if config.structured_output == "json_object":
            return {"response_format": {"type": "json_object"}}
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": False},
            }
        }

    def count_tokens(self, model: BaseChatModel, text: str) -> int:
        return estimate_tokens(text)


provider = OpenAICompatibleProvider()
