"""The embedded model as a LangChain chat model (imported only when the embedded model is used:
langchain-core is not cheap to import). Calls go to the model's worker process (`_client.py`);
the event loop only waits on a future, and a cancelled call stops its generation.

It keeps a call's bounds itself (models/_serving.py): the time in the worker's queue (up to
`queue_wait_s`) does not count towards `timeout_s`, which starts when the worker admits the call;
and a call that makes no progress for `stall_s` is stopped. A call stopped so raises
`CallTimedOut` (a TimeoutError), which the call path reports as a `timeout` with its split."""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict

from orchestrator.models._serving import Serving, current_serving
from orchestrator.providers._client import PARALLEL, ModelWorker, worker_for, worker_options
from orchestrator.providers._llama import CONTEXT_WINDOW, count_tokens

WATCH_S = 0.5  # how often a waiting call's bounds are checked


class CallTimedOut(TimeoutError):
    """The embedded model stopped a call that passed one of its bounds (the message says which)."""


class EmbeddedChatModel(BaseChatModel):
    """A LangChain chat model over the embedded model's worker process."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: str
    model_name: str = "smollm2"
    n_ctx: int = CONTEXT_WINDOW
    temperature: float = 0.2
    max_tokens: int = 1024
    seed: int = 42
    parallel: int = PARALLEL  # calls the worker generates at once (batched)
    constraint: str = "llguidance"  # llguidance | grammar (sample first) | grammar-first

    @property
    def _llm_type(self) -> str:
        return "orchestrator-embedded"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "temperature": self.temperature, "max_tokens": self.max_tokens}

    def count_tokens(self, text: str) -> int:
        return count_tokens(Path(self.model_path), text)

    def _request(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {
            "messages": [{"role": _role(message), "content": message.text} for message in messages],
            "response_format": kwargs.get("response_format"),
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "temperature": self.temperature,
            "seed": self.seed,
            "repeat_penalty": 1.1,
            "stop": stop,
        }

    def worker(self) -> ModelWorker:
        """This model's worker process (started on first use, shared by the process)."""
        return worker_for(worker_options(self.model_path, self.n_ctx, self.parallel, self.constraint))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        worker = self.worker()
        serving = current_serving() or Serving()
        ident, future = worker.submit(self._request(messages, stop, kwargs), serving)
        try:
            while True:
                try:
                    return self._result(future.result(timeout=WATCH_S))
                except concurrent.futures.TimeoutError:
                    _check(serving)
        except BaseException:  # interrupted or out of bounds: the generation must stop too
            worker.cancel(ident)
            raise

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        worker = self.worker()
        serving = current_serving() or Serving()
        ident, future = worker.submit(self._request(messages, stop, kwargs), serving)
        waiting = asyncio.wrap_future(future)
        try:
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=WATCH_S)
                if done:
                    return self._result(waiting.result())
                _check(serving)
        except (asyncio.CancelledError, CallTimedOut):  # a timeout or a stopped run: stop the worker too
            worker.cancel(ident)
            waiting.cancel()
            raise

    def _result(self, reply: dict[str, Any]) -> ChatResult:
        prompt, completion = int(reply["prompt_tokens"]), int(reply["completion_tokens"])
        message = AIMessage(
            content=reply.get("text") or "",
            usage_metadata=UsageMetadata(
                input_tokens=prompt, output_tokens=completion, total_tokens=prompt + completion
            ),
            response_metadata={"finish_reason": reply.get("finish_reason"), "model_name": self.model_name},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


def _check(serving: Serving) -> None:
    why = serving.overdue()
    if why is not None:
        raise CallTimedOut(why)


def _role(message: BaseMessage) -> str:
    return {"human": "user", "ai": "assistant", "system": "system"}.get(message.type, "user")
