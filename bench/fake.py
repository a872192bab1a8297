"""A fake chat model for benchmarks: answers a minimal valid instance of the requested schema
after a fixed latency (zero by default), registered as provider kind `bench`."""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict

from orchestrator import CallSettings, ProviderConfig, ProviderKind, ProviderTraits, register_provider
from tests.servers.model_server import sample


class BenchModel(BaseChatModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    latency_s: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "bench"

    def _answer(self, kwargs: dict[str, Any]) -> ChatResult:
        schema = kwargs.get("schema")
        text = json.dumps(sample(schema)) if isinstance(schema, dict) else "{}"
        message = AIMessage(
            content=text, usage_metadata=UsageMetadata(input_tokens=10, output_tokens=5, total_tokens=15)
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        return self._answer(kwargs)

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        return self._answer(kwargs)


class BenchProvider(ProviderKind):
    """Model names are latencies in milliseconds: `bench/0`, `bench/100`."""

    traits: ClassVar[ProviderTraits] = ProviderTraits(real=False)

    def chat_model(self, route: Any, config: ProviderConfig, settings: CallSettings) -> BaseChatModel:
        return BenchModel(latency_s=float(route.model) / 1000)

    def structured_kwargs(self, schema: dict[str, Any], name: str, config: ProviderConfig, mode: str = "") -> Any:
        return {"schema": schema}


def install() -> None:
    register_provider("bench", BenchProvider())
