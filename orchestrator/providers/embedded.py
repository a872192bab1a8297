"""The embedded model as a LangChain chat model (imported only when the embedded model is used:
langchain-core is not cheap to import)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict

from orchestrator.providers._llama import CONTEXT_WINDOW, count_tokens, shared_llama


class EmbeddedChatModel(BaseChatModel):
    """A LangChain chat model over llama-cpp-python's `create_chat_completion`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: str
    model_name: str = "smollm2"
    n_ctx: int = CONTEXT_WINDOW
    temperature: float = 0.2
    max_tokens: int = 1024
    seed: int = 42

    @property
    def _llm_type(self) -> str:
        return "orchestrator-embedded"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "temperature": self.temperature, "max_tokens": self.max_tokens}

    def count_tokens(self, text: str) -> int:
        return count_tokens(Path(self.model_path), text)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        llama, lock = shared_llama(Path(self.model_path), self.n_ctx)
        payload = [{"role": _role(message), "content": message.text} for message in messages]
        with lock:
            completion: Any = llama.create_chat_completion(
                messages=payload,  # type: ignore[arg-type]
                response_format=kwargs.get("response_format"),
                max_tokens=kwargs.get("max_tokens", self.max_tokens),
                temperature=self.temperature,
                seed=self.seed,
                repeat_penalty=1.1,
                stop=stop,
            )
        choice = completion["choices"][0]
        usage = completion.get("usage") or {}
        message = AIMessage(
            content=choice["message"].get("content") or "",
            usage_metadata=UsageMetadata(
                input_tokens=usage.get("prompt_tokens", 0),
                output_tokens=usage.get("completion_tokens", 0),
                total_tokens=usage.get("total_tokens", 0),
            ),
            response_metadata={"finish_reason": choice.get("finish_reason"), "model_name": self.model_name},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await asyncio.to_thread(self._generate, messages, stop, None, **kwargs)


def _role(message: BaseMessage) -> str:
    return {"human": "user", "ai": "assistant", "system": "system"}.get(message.type, "user")
