"""The embedded model's vocabulary and sampling, for the worker's engine (`_engine.py`): the
chat template, tokens and pieces, llama.cpp's sampler chain, and one sampling step with a
constraint (`_constraint.py`)."""

from __future__ import annotations

import ctypes
import warnings
from typing import Any

import llama_cpp as C
import numpy as np

from orchestrator.providers._constraint import Constraint

TOKEN = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])  # llama_token_data


class Vocabulary:
    def __init__(self, model: Any) -> None:
        self.model = model
        self.vocab = C.llama_model_get_vocab(model)
        self.n_vocab = C.llama_vocab_n_tokens(self.vocab)
        self.buffer = (C.llama_token_data * self.n_vocab)()
        self.view = np.frombuffer(self.buffer, dtype=TOKEN)
        self.ids = np.arange(self.n_vocab, dtype=np.int32)
        self.candidates = C.llama_token_data_array(data=self.buffer, size=self.n_vocab, selected=-1, sorted=False)
        self._tokenizer: Any = None
        self._formatter: Any = None

    def is_end(self, token: int) -> bool:
        return bool(C.llama_vocab_is_eog(self.vocab, token))

    def chat_prompt(self, messages: list[dict[str, str]]) -> list[int]:
        """The chat template of the GGUF, rendered as llama-cpp-python renders it."""
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            eos, bos = C.llama_vocab_eos(self.vocab), C.llama_vocab_bos(self.vocab)
            self._formatter = Jinja2ChatFormatter(
                template=self._meta("tokenizer.chat_template"),
                eos_token=self._text(eos),
                bos_token=self._text(bos),
                stop_token_ids=[eos],
            )
        rendered = self._formatter(messages=messages)
        tokens = self.tokenize(rendered.prompt, add_special=not rendered.added_special)
        return tokens

    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            import llguidance.llamacpp

            with warnings.catch_warnings():  # it reads token attributes through a deprecated binding
                warnings.simplefilter("ignore", DeprecationWarning)
                self._tokenizer = llguidance.llamacpp.lltokenizer_from_vocab(self.vocab)
        return self._tokenizer

    def sampler(self, temperature: float, seed: int, repeat_penalty: float) -> Any:
        chain = C.llama_sampler_chain_init(C.llama_sampler_chain_default_params())
        parts = [C.llama_sampler_init_penalties(self.n_vocab, 64, repeat_penalty, 0.0, 0.0)]
        if temperature <= 0:
            parts.append(C.llama_sampler_init_greedy())
        else:
            parts += [
                C.llama_sampler_init_top_k(40),
                C.llama_sampler_init_typical(1.0, 1),
                C.llama_sampler_init_top_p(0.95, 1),
                C.llama_sampler_init_min_p(0.05, 1),
                C.llama_sampler_init_temp(temperature),
                C.llama_sampler_init_dist(seed & 0xFFFFFFFF),
            ]
        for part in parts:
            C.llama_sampler_chain_add(chain, part)
        return chain

    def sample(self, ctx: Any, index: int, sampler: Any, constraint: Constraint | None) -> int:
        """One token from the logits at `index` of the last batch: the constraint restricts first
        (or checks the sampled token, and filters only when it is rejected), then the chain samples."""
        logits = np.ctypeslib.as_array(C.llama_get_logits_ith(ctx, index), shape=(self.n_vocab,))
        self._fill(logits)
        if constraint is not None:
            constraint.restrict(self.view["logit"], ctypes.byref(self.candidates))
        C.llama_sampler_apply(sampler, ctypes.byref(self.candidates))
        token = int(self.buffer[self.candidates.selected].id)
        if constraint is not None and not constraint.allows(token):
            self._fill(logits)
            constraint.filter(ctypes.byref(self.candidates))
            C.llama_sampler_apply(sampler, ctypes.byref(self.candidates))
            token = int(self.buffer[self.candidates.selected].id)
        if constraint is not None:
            constraint.accept(token)
        C.llama_sampler_accept(sampler, token)
        return token

    def _fill(self, logits: Any) -> None:
        self.view["id"] = self.ids
        self.view["logit"] = logits
        self.view["p"] = 0.0
        self.candidates.size, self.candidates.selected, self.candidates.sorted = self.n_vocab, -1, False

    def tokenize(self, text: str, add_special: bool) -> list[int]:
        data = text.encode("utf-8")
        room = len(data) + 8
        tokens = (C.llama_token * room)()
        n = C.llama_tokenize(self.vocab, data, len(data), tokens, room, add_special, True)
        if n < 0:
            raise ValueError(f"cannot tokenize the prompt ({n})")
        return list(tokens[:n])

    def piece(self, token: int) -> bytes:
        buffer = ctypes.create_string_buffer(256)
        n = C.llama_token_to_piece(self.vocab, token, buffer, 256, 0, False)
        return buffer.raw[: max(n, 0)]

    def _text(self, token: int) -> str:
        if token < 0:
            return ""
        text: bytes = C.llama_vocab_get_text(self.vocab, token)
        return text.decode("utf-8")

    def _meta(self, key: str) -> str:
        size = 1 << 16
        buffer = ctypes.create_string_buffer(size)
        n = C.llama_model_meta_val_str(self.model, key.encode("utf-8"), buffer, size)
        if n < 0:
            raise ValueError(f"the model has no {key}")
        return buffer.value.decode("utf-8")
