"""An OpenAI-compatible chat model that keeps what a gateway reports of who served the answer
(OpenRouter's top-level `provider` field of a completion) as `served` in the answer's response
metadata, where the serving policy checks it (policy/serving.py)."""

from __future__ import annotations

from functools import cache
from typing import Any

SERVED_FIELDS = ("provider",)  # top-level fields of a completion that name who served it


@cache
def served_chat_openai() -> Any:
    """ChatOpenAI that copies the completion's serving report into `response_metadata["served"]`
    (built on first use: the SDK is imported only then)."""
    from langchain_openai import ChatOpenAI

    class ServedChatOpenAI(ChatOpenAI):
        def _create_chat_result(self, response: Any, generation_info: dict[str, Any] | None = None) -> Any:
            result = super()._create_chat_result(response, generation_info)
            data = response if isinstance(response, dict) else response.model_dump(warnings=False)
            served = {key: data[key] for key in SERVED_FIELDS if isinstance(data.get(key), str)}
            if served and result.generations:
                result.generations[0].message.response_metadata["served"] = served
            return result

    return ServedChatOpenAI
