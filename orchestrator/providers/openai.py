"""Any OpenAI-compatible endpoint (OpenRouter, DeepSeek, Mistral, vLLM, llama.cpp server),
through langchain-openai's ChatOpenAI.

Structured output asks for `response_format: json_schema` first and steps down to JSON mode
when the endpoint rejects it (llama-cpp-python's server, for one); the answer is validated
either way, and the mode that worked is kept for the rest of the run.
ChatOpenAI's own retries are off: the orchestrator keeps exactly one retry layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from orchestrator.models.registry import CallSettings, ProviderKind, ProviderTraits
from orchestrator.providers._http import Deferred, endpoint, library_of, ssl_context

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from orchestrator.catalog import ProviderConfig, Route


MODES = ("json_schema", "grammar", "json_object")


def _token_field(config: ProviderConfig) -> str:
    return "max_completion_tokens" if config.host == "api.openai.com" else "max_tokens"


class OpenAICompatibleProvider(ProviderKind):
    traits: ClassVar[ProviderTraits] = ProviderTraits(lists_models=True, native_tools=True)

    def chat_model(self, route: Route, config: ProviderConfig, settings: CallSettings) -> BaseChatModel:
        import openai
        from pydantic import SecretStr

        from orchestrator.providers._served import served_chat_openai

        # a serving policy's pinning: fields of the request body, and a regional endpoint
        base_url, key, pin = endpoint(config, settings)
        sync_hooks, async_hooks = settings.http_hooks or ({}, {})
        # the SDK's own client classes (its HTTP library and pool limits), one SSL context for all
        verify = ssl_context(library_of(openai.DefaultAsyncHttpxClient))
        fields: dict[str, Any] = {
            "model": route.model,
            "base_url": base_url,
            "api_key": SecretStr(key or "not-needed"),
            "temperature": settings.temperature,
            # `max_tokens`, not `max_completion_tokens`: every OpenAI-compatible server knows it
            # (llama.cpp's ignores the newer name and would generate to the end of its context);
            # OpenAI's own API refuses it for its reasoning models (GPT-5, o-series)
            "extra_body": {_token_field(config): settings.max_output_tokens, **pin},
            "seed": settings.seed,
            "timeout": settings.client_timeout_s,
            "max_retries": 0,
            # no redirects: a model endpoint cannot send the conversation to a host the policy never saw
            "http_async_client": openai.DefaultAsyncHttpxClient(
                timeout=settings.client_timeout_s, event_hooks=async_hooks, verify=verify, follow_redirects=False
            ),
        }
        chat = served_chat_openai()

        def with_sync_client() -> BaseChatModel:
            sync = openai.DefaultHttpxClient(
                timeout=settings.client_timeout_s, event_hooks=sync_hooks, verify=verify, follow_redirects=False
            )
            return chat(**fields, http_client=sync)  # type: ignore[no-any-return]

        # runs call asynchronously: the sync client is built if and when something calls invoke()
        twin = Deferred(with_sync_client)
        sync_root, sync_chat = Deferred(lambda: twin.root_client), Deferred(lambda: twin.client)
        return chat(**fields, root_client=sync_root, client=sync_chat)  # type: ignore[no-any-return]

    def structured_modes(self, config: ProviderConfig) -> list[str]:
        """json_schema (OpenAI structured outputs), then grammar (JSON mode with the schema
        attached, which llama.cpp servers enforce), then plain JSON mode."""
        return [config.structured_output] if config.structured_output else list(MODES)

    def structured_kwargs(
        self, schema: dict[str, Any], name: str, config: ProviderConfig, mode: str = "json_schema"
    ) -> dict[str, Any]:
        if mode == "json_object":
            return {"response_format": {"type": "json_object"}}
        if mode == "grammar":
            return {"response_format": {"type": "json_object", "schema": schema}}
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": False},
            }
        }

    def schema_in_prompt(self, mode: str) -> bool:
        return mode != "json_schema"

    def rejects_format(self, exc: BaseException) -> bool:
        """The endpoint refused the response_format itself (llama-cpp-python's server answers
        500 to json_schema; others 400 or 422)."""
        status = getattr(exc, "status_code", None)
        text = str(exc)
        return status in (400, 422, 500) and ("response_format" in text or "json_schema" in text)

    def list_models(self, config: ProviderConfig, timeout_s: float) -> list[str]:
        """Model ids the endpoint serves (`GET /models`), with the key when one is configured."""
        import httpx

        if not config.base_url:
            raise ValueError(f"provider '{config.name}' needs a base_url")
        key = config.api_key()
        if config.api_key_env and not key:
            raise PermissionError(f"environment variable {config.api_key_env} is not set")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = httpx.get(f"{config.base_url.rstrip('/')}/models", headers=headers, timeout=timeout_s)
        response.raise_for_status()
        return [str(m.get("id")) for m in response.json().get("data", [])]

    def tool_kwargs(
        self, tools: list[dict[str, Any]], config: ProviderConfig, required: bool = False
    ) -> dict[str, Any]:
        """As ChatOpenAI.bind_tools binds them, with `tool_choice: required` when asked."""
        found = super().tool_kwargs(tools, config)
        return {**found, "tool_choice": "required"} if required else found

    def structured_support(self, config: ProviderConfig, model: str) -> str:
        modes = self.structured_modes(config)
        return " -> ".join(modes) + ("" if len(modes) == 1 else " (negotiated on the first call)")


provider = OpenAICompatibleProvider()
