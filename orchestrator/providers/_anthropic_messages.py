"""The chat model of the `anthropic` provider kind (imported only when one is built): Anthropic's
Messages API over httpx, with the run's egress hooks, the request's pinning fields, and what the
answer reports of where it ran (`usage.inference_geo`) kept as `served` in its response metadata."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, SecretStr

from orchestrator.providers._http import ssl_context

API_VERSION = "2023-06-01"  # the `anthropic-version` header the Messages API requires
ROLES = {"human": "user", "ai": "assistant", "tool": "user"}


class AnthropicAPIError(RuntimeError):
    """An error answer of the Messages API (its HTTP status is classified by models/failure.py)."""

    def __init__(self, message: str, status_code: int, response: Any) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.response = response


class AnthropicMessages(BaseChatModel):
    """A chat model that calls the Messages API with httpx (the run's egress hooks attached)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str
    base_url: str
    api_key: SecretStr
    max_tokens: int
    temperature: float
    timeout_s: float
    extra_body: dict[str, Any] = Field(default_factory=dict)
    sync_hooks: dict[str, list[Any]] = Field(default_factory=dict)
    async_hooks: dict[str, list[Any]] = Field(default_factory=dict)

    @property
    def _llm_type(self) -> str:
        return "anthropic-messages"

    def _request(self, messages: list[BaseMessage], stop: list[str] | None) -> dict[str, Any]:
        system = "\n\n".join(m.text for m in messages if m.type == "system")
        turns: list[dict[str, Any]] = []
        for message in messages:
            if message.type == "system":
                continue
            role = ROLES.get(message.type, "user")
            if turns and turns[-1]["role"] == role:  # the API wants user and assistant turns alternating
                turns[-1]["content"] += "\n\n" + message.text
            else:
                turns.append({"role": role, "content": message.text})
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "messages": turns,
            **self.extra_body,
        }
        if system:
            body["system"] = system
        if stop:
            body["stop_sequences"] = stop
        return body

    def _headers(self) -> dict[str, str]:
        return {
            "x-api-key": self.api_key.get_secret_value(),
            "anthropic-version": API_VERSION,
            "content-type": "application/json",
        }

    def _url(self) -> str:
        return self.base_url.rstrip("/").removesuffix("/v1") + "/v1/messages"

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        import httpx

        with httpx.Client(timeout=self.timeout_s, event_hooks=self.sync_hooks, verify=ssl_context()) as client:
            response = client.post(self._url(), json=self._request(messages, stop), headers=self._headers())
            response.read()
        return _result(response)

    async def _agenerate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        import httpx

        async with httpx.AsyncClient(
            timeout=self.timeout_s, event_hooks=self.async_hooks, verify=ssl_context()
        ) as client:
            response = await client.post(self._url(), json=self._request(messages, stop), headers=self._headers())
            await response.aread()
        return _result(response)


def _result(response: Any) -> ChatResult:
    """The answer of a Messages API response: its text blocks, token counts, and where it ran."""
    if response.status_code >= 400:
        detail = response.text[:300]
        raise AnthropicAPIError(f"HTTP {response.status_code}: {detail}", response.status_code, response)
    data = response.json()
    text = "".join(block.get("text", "") for block in data.get("content") or [] if block.get("type") == "text")
    usage = data.get("usage") or {}
    tokens_in, tokens_out = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    metadata: dict[str, Any] = {"model_name": data.get("model"), "stop_reason": data.get("stop_reason")}
    if isinstance(usage.get("inference_geo"), str):
        metadata["served"] = {"inference_geo": usage["inference_geo"]}
    message = AIMessage(
        content=text,
        usage_metadata=UsageMetadata(
            input_tokens=tokens_in, output_tokens=tokens_out, total_tokens=tokens_in + tokens_out
        ),
        response_metadata=metadata,
    )
    return ChatResult(generations=[ChatGeneration(message=message)])
