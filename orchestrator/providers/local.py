"""The embedded model: SmolLM2-135M-Instruct run by llama.cpp in a worker process of its own.

Structured output is constrained decoding (`response_format={"type": "json_object", "schema":
...}`): llguidance masks the tokens the JSON Schema does not allow at each step (llama.cpp's GBNF
grammar, checked on the sampled token first, for schemas llguidance cannot compile), so even a
135M model answers with JSON of the right shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from orchestrator.models.registry import CallSettings, ProviderKind, ProviderTraits
from orchestrator.providers._llama import weights_path

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from orchestrator.catalog import ProviderConfig, Route


class LocalProvider(ProviderKind):
    traits: ClassVar[ProviderTraits] = ProviderTraits(
        in_process=True, self_hosted=True, exact_tokens=True, lists_models=True, reports_serving=True
    )

    def chat_model(self, route: Route, config: ProviderConfig, settings: CallSettings) -> BaseChatModel:
        from orchestrator.providers.embedded import EmbeddedChatModel

        if route.model != "smollm2":
            raise FileNotFoundError(f"unknown embedded model '{route.model}' (the embedded model is 'smollm2')")
        return EmbeddedChatModel(
            model_path=str(weights_path()),
            temperature=settings.temperature,
            max_tokens=settings.max_output_tokens,
            seed=settings.seed,
        )

    def structured_kwargs(
        self, schema: dict[str, Any], name: str, config: ProviderConfig, mode: str = "native"
    ) -> dict[str, Any]:
        return {"response_format": {"type": "json_object", "schema": schema}}

    def list_models(self, config: ProviderConfig, timeout_s: float) -> list[str]:
        weights_path()  # raises FileNotFoundError when the weights are not installed
        return ["smollm2"]

    def structured_support(self, config: ProviderConfig, model: str) -> str:
        return "constrained decoding (llguidance JSON-schema token masks)"

    def count_tokens(self, model: BaseChatModel, text: str) -> int:
        from orchestrator.providers.embedded import EmbeddedChatModel

        if isinstance(model, EmbeddedChatModel):
            return model.count_tokens(text)
        return super().count_tokens(model, text)


provider = LocalProvider()
