"""The embedded model as it ran before its worker process, kept as the benchmarks' baseline: one
shared llama-cpp-python instance in the run's own process, called through `create_chat_completion`
(the JSON-Schema grammar applied to the whole vocabulary at every step) in a worker thread.
Registered as provider kind `local-thread`; `overrides()` points a spec's roles at it."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict

from orchestrator import CallSettings, ProviderConfig, ProviderKind, ProviderTraits, register_provider
from orchestrator.testing import embedded_in_process, embedded_tokens, embedded_weights

ROLES = ("planner", "architecture_review", "refactor", "debug", "arabic_docs")


class ThreadedEmbeddedModel(BaseChatModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: str
    temperature: float = 0.2
    max_tokens: int = 1024
    seed: int = 42

    @property
    def _llm_type(self) -> str:
        return "embedded-thread"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        llama, lock = embedded_in_process()
        roles = {"human": "user", "ai": "assistant", "system": "system"}
        payload = [{"role": roles.get(m.type, "user"), "content": m.text} for m in messages]
        with lock:
            done: Any = llama.create_chat_completion(
                messages=payload,  # type: ignore[arg-type]
                response_format=kwargs.get("response_format"),
                max_tokens=kwargs.get("max_tokens", self.max_tokens),
                temperature=self.temperature,
                seed=self.seed,
                repeat_penalty=1.1,
                stop=stop,
            )
        usage = done.get("usage") or {}
        message = AIMessage(
            content=done["choices"][0]["message"].get("content") or "",
            usage_metadata=UsageMetadata(
                input_tokens=usage.get("prompt_tokens", 0),
                output_tokens=usage.get("completion_tokens", 0),
                total_tokens=usage.get("total_tokens", 0),
            ),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                         **kwargs: Any) -> Any:  # fmt: skip
        return await asyncio.to_thread(self._generate, messages, stop, None, **kwargs)


class ThreadedProvider(ProviderKind):
    traits: ClassVar[ProviderTraits] = ProviderTraits(in_process=True, self_hosted=True, exact_tokens=True)

    def chat_model(self, route: Any, config: ProviderConfig, settings: CallSettings) -> BaseChatModel:
        return ThreadedEmbeddedModel(model_path=str(embedded_weights()), temperature=settings.temperature,
                                     max_tokens=settings.max_output_tokens, seed=settings.seed)  # fmt: skip

    def structured_kwargs(self, schema: dict[str, Any], name: str, config: ProviderConfig, mode: str = "native") -> Any:
        return {"response_format": {"type": "json_object", "schema": schema}}

    def count_tokens(self, model: BaseChatModel, text: str) -> int:
        return embedded_tokens(text)


def overrides() -> list[str]:
    """`--set` assignments that run every role of a spec on the old in-process thread path."""
    register_provider("local-thread", ThreadedProvider())
    return ["providers.thread={kind: local-thread, compact_output: true, max_concurrency: 1}",
            *(f"models.{role}=thread/smollm2" for role in ROLES)]  # fmt: skip
