"""Constrained decoding for the embedded model's worker: answers that follow a JSON Schema.

Two ways, chosen per call (benchmarked in `bench/embedded.py`, figures in docs/benchmarks.md):

- `JsonMask` (the default): llguidance compiles the JSON Schema and computes the set of tokens
  allowed next as a bitmask over the vocabulary in tens of microseconds (a token trie walked
  against the grammar's lexer); the disallowed logits become -inf before the sampler chain runs,
  so the model samples from exactly the constrained distribution.
- `GrammarCheck`: llama.cpp's GBNF grammar (llama-cpp-python's JSON-Schema-to-GBNF converter),
  used the way llama.cpp's own server does: sample first, check only the sampled token against
  the grammar, and filter the whole vocabulary only when it is rejected. The fallback for
  schemas llguidance cannot compile.

Applying the GBNF grammar to all 49k candidates at every step (what llama-cpp-python does) costs
more than the model's forward pass on 2 cores; neither way here does that.
"""

from __future__ import annotations

import ctypes
import json
from typing import Any, Protocol

import llama_cpp as C
import numpy as np


class Constraint(Protocol):
    def restrict(self, logits: Any, candidates: Any) -> None:
        """Before sampling: remove tokens that may not come next (logits set to -inf in place)."""

    def allows(self, token: int) -> bool:
        """After sampling: whether the sampled token is allowed (False: filter and sample again)."""

    def filter(self, candidates: Any) -> None:
        """After a rejection: remove every disallowed token from the candidates (a token data array)."""

    def accept(self, token: int) -> None:
        """Advance past the chosen token."""

    def finished(self) -> bool:
        """The answer is complete: nothing but the end of the text may follow."""

    def close(self) -> None: ...


# One layout, as json.dumps writes it: no free whitespace for a small model to fill (indentation,
# runs of newlines), and overrides so a schema's own "x-guidance" options cannot change it.
JSON_LAYOUT: Any = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


class UnsupportedSchema(ValueError):
    """llguidance cannot compile this schema (the GBNF grammar is used instead)."""


class JsonMask:
    """A llguidance matcher over the model's vocabulary."""

    def __init__(self, tokenizer: Any, schema: dict[str, Any], n_vocab: int) -> None:
        import llguidance
        import llguidance.numpy

        try:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema), overrides=JSON_LAYOUT)
            self.matcher = llguidance.LLMatcher(tokenizer, grammar)
        except ValueError as exc:
            raise UnsupportedSchema(str(exc)) from exc
        if self.matcher.is_error():
            raise UnsupportedSchema(self.matcher.get_error())
        self.n_vocab = n_vocab
        self.bitmask = llguidance.numpy.allocate_token_bitmask(1, n_vocab)
        self._fill = llguidance.numpy.fill_next_token_bitmask

    def restrict(self, logits: Any, candidates: Any) -> None:
        self._fill(self.matcher, self.bitmask, 0)
        allowed = np.unpackbits(self.bitmask.view(np.uint8), bitorder="little")[: self.n_vocab]
        logits[allowed == 0] = -np.inf

    def allows(self, token: int) -> bool:
        return True  # the mask already removed every disallowed token

    def filter(self, candidates: Any) -> None:  # never called: allows() is always True
        raise AssertionError("JsonMask filters before sampling")

    def accept(self, token: int) -> None:
        if not self.matcher.consume_token(token):
            raise RuntimeError(f"constrained decoding failed: {self.matcher.get_error()}")

    def finished(self) -> bool:
        return bool(self.matcher.is_stopped())

    def close(self) -> None:
        pass


class GrammarCheck:
    """llama.cpp's GBNF grammar sampler, checked on the sampled token first."""

    def __init__(self, vocab: Any, schema: dict[str, Any]) -> None:
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        gbnf = json_schema_to_gbnf(json.dumps(schema))
        self.sampler = C.llama_sampler_init_grammar(vocab, gbnf.encode("utf-8"), b"root")
        if not self.sampler:
            raise ValueError("the JSON Schema could not be turned into a grammar")
        self.one = (C.llama_token_data * 1)()
        self.single = C.llama_token_data_array(data=self.one, size=1, selected=-1, sorted=False)
        self.complete = False

    def restrict(self, logits: Any, candidates: Any) -> None:
        pass  # sample first

    def allows(self, token: int) -> bool:
        entry: Any = self.one[0]
        entry.id, entry.logit, entry.p = token, 0.0, 0.0
        self.single.size, self.single.selected, self.single.sorted = 1, -1, False
        C.llama_sampler_apply(self.sampler, ctypes.byref(self.single))
        return bool(np.isfinite(self.one[0].logit))

    def filter(self, candidates: Any) -> None:
        C.llama_sampler_apply(self.sampler, candidates)

    def accept(self, token: int) -> None:
        C.llama_sampler_accept(self.sampler, token)

    def finished(self) -> bool:
        return False  # the grammar lets only the end-of-text token through once the answer is whole

    def close(self) -> None:
        if self.sampler:
            C.llama_sampler_free(self.sampler)
            self.sampler = None


class GrammarFirst(GrammarCheck):
    """The grammar applied to the whole vocabulary before every sample (llama-cpp-python's way);
    kept only so the benchmark can measure what the other two save."""

    def restrict(self, logits: Any, candidates: Any) -> None:
        C.llama_sampler_apply(self.sampler, candidates)

    def allows(self, token: int) -> bool:
        return True
