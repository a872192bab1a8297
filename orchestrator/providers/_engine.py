"""The embedded model's decoding engine, run by its worker process (`_worker.py`) on its main thread.

It drives llama.cpp's C API (through llama-cpp-python's ctypes bindings) directly:
- **sequences**: one llama.cpp context with `SLOTS` sequences in a unified KV cache. Each slot
  keeps the tokens of its last prompt and answer, so a call that shares a prefix with an earlier
  one (the system prompt and files of a role, the conversation of a tool loop or a repair turn)
  evaluates only what is new; a prefix cached in another slot is shared (`llama_memory_seq_cp`).
- **batching**: up to `parallel` calls generate at once, one token each per `llama_decode`, with
  prompt chunks of newly admitted calls in the same batch (continuous batching, as llama.cpp's
  server does). How many of them is decided from what the engine measures (`_width.py`): as many
  as pay in tokens per second on this machine now; calls are admitted first come, first served,
  save that a call whose prompt is mostly cached (a conversation's next turn) may go first.
- **progress**: each call admitted is announced at once (`on_start`: its serving starts with its
  prompt's evaluation), and the ids of the calls that made progress (a prompt chunk or a token)
  are kept for the worker to report (`moved`).
- **sampling**: llama.cpp's sampler chain with llama-cpp-python's defaults (repeat penalty, top-k
  40, top-p 0.95, min-p 0.05, temperature, seeded), and a constraint (`_constraint.py`).
- **cancellation**: `cancelled` ids (set by the worker's reader thread) are dropped between
  steps, and llama.cpp's abort callback stops a long prompt evaluation mid-way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import llama_cpp as C

from orchestrator.providers._constraint import Constraint, GrammarCheck, GrammarFirst, JsonMask, UnsupportedSchema
from orchestrator.providers._cpu import Fixed, Threads
from orchestrator.providers._vocabulary import Vocabulary
from orchestrator.providers._width import Width

SLOTS = 4
N_BATCH = 512
PROMPT_BESIDE = 128  # prompt tokens per step beside calls that are generating
WARM = 256  # prompt tokens in the cache that make a waiting call cheap enough to go first...
OVERTAKEN_S = 300.0  # ...unless the oldest call has waited this long already


@dataclass
class Sequence:
    """One call being answered."""

    id: int
    prompt: list[int]
    max_tokens: int
    sampler: Any
    constraint: Constraint | None
    stop: list[str]
    slot: int = -1
    pending: list[int] = field(default_factory=list)  # prompt tokens still to evaluate
    pos: int = 0  # position of the next token fed
    feed: int | None = None  # the sampled token to feed next
    out: list[int] = field(default_factory=list)
    text: bytearray = field(default_factory=bytearray)
    cached: int = 0  # prompt tokens reused from the cache
    finish: str | None = None
    arrived: float = field(default_factory=time.monotonic)  # when it joined the queue

    def result(self) -> dict[str, Any]:
        text = self.text.decode("utf-8", errors="ignore")
        for stop in self.stop:
            if stop and stop in text:
                text = text[: text.index(stop)]
        return {
            "text": text,
            "finish_reason": self.finish,
            "prompt_tokens": len(self.prompt),
            "completion_tokens": len(self.out),
            "cached_tokens": self.cached,
        }


@dataclass
class Slot:
    tokens: list[int] = field(default_factory=list)  # what the KV cache holds for this sequence
    busy: bool = False
    used: int = 0  # a clock tick: the least recently used idle slot is evicted first


def _ignore(ident: int) -> None:
    pass


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class Engine:
    def __init__(
        self,
        path: str,
        window: int,
        parallel: int = 1,
        threads: int = 1,
        constraint: str = "llguidance",
        adapt_threads: bool = True,
        adapt_width: bool = False,
    ) -> None:
        logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # its log callback prints below this
        C.llama_backend_init()
        model_params = C.llama_model_default_params()
        self.model = C.llama_model_load_from_file(path.encode("utf-8"), model_params)
        if not self.model:
            raise ValueError(f"cannot load the model {path}")
        self.words = Vocabulary(self.model)
        self.window = window  # the most one call may use (prompt + answer)
        self.parallel = max(1, min(parallel, SLOTS))
        self.width = Width(self.parallel, adapt=adapt_width)  # calls decoded together, up to parallel
        params = C.llama_context_default_params()
        params.n_ctx = window * 2  # one full-window call plus cached prefixes and parallel calls
        params.n_batch = params.n_ubatch = N_BATCH
        params.n_seq_max = SLOTS
        params.kv_unified = True  # sequences share the cells of a common prefix
        params.n_threads = params.n_threads_batch = threads
        self.ctx = C.llama_init_from_model(self.model, params)
        if not self.ctx:
            raise ValueError("cannot create a llama.cpp context")
        self.memory = C.llama_get_memory(self.ctx)
        self.threads = Threads(threads) if adapt_threads else Fixed(threads)
        self._threads_set = threads
        self.cells = window * 2
        self.batch = C.llama_batch_init(N_BATCH, 0, SLOTS)
        self.slots = [Slot() for _ in range(SLOTS)]
        self.clock = 0
        self.waiting: list[Sequence] = []
        self.active: list[Sequence] = []
        self.cancelled: set[int] = set()  # ids to stop: the worker's reader thread adds to it
        self.method = constraint
        self._in_batch: list[Sequence] = []
        # told of each call admitted at once, before its prompt's first chunk is evaluated
        self.on_start: Callable[[int], None] = _ignore
        self.moved: set[int] = set()  # calls that evaluated a prompt chunk or made a token since then
        self.step_s = 0.0  # the last decode's duration
        self._abort = C.ggml_abort_callback(self._should_abort)  # consulted per graph node: long prompts only
        self._no_abort = C.ggml_abort_callback()

    # ---- requests
    def submit(self, request: dict[str, Any]) -> Sequence:
        """Queue a call: {"id", "messages", "response_format", "max_tokens", "temperature", "seed",
        "repeat_penalty", "stop"}. Raises ValueError for a call that cannot be served."""
        prompt = self.words.chat_prompt(request["messages"])
        if len(prompt) >= self.window:
            raise ValueError(f"Requested tokens ({len(prompt)}) exceed context window of {self.window}")
        max_tokens = min(int(request.get("max_tokens") or self.window), self.window - len(prompt))
        fmt = request.get("response_format") or {}
        schema = fmt.get("schema", {}) if fmt.get("type") == "json_object" else None
        sequence = Sequence(
            id=int(request["id"]),
            prompt=prompt,
            max_tokens=max_tokens,
            sampler=self.words.sampler(
                float(request.get("temperature", 0.2)),
                int(request.get("seed", 42)),
                float(request.get("repeat_penalty", 1.1)),
            ),
            constraint=self._constraint(schema) if schema is not None else None,
            stop=[s for s in request.get("stop") or [] if isinstance(s, str)],
        )
        self.waiting.append(sequence)
        return sequence

    def _constraint(self, schema: dict[str, Any]) -> Constraint:
        if self.method == "llguidance":
            try:
                return JsonMask(self.words.tokenizer(), schema, self.words.n_vocab)
            except UnsupportedSchema:
                pass
        if self.method == "grammar-first":
            return GrammarFirst(self.words.vocab, schema)
        return GrammarCheck(self.words.vocab, schema)

    def clear_cache(self) -> None:
        """Forget every cached prefix (only while no call is running)."""
        C.llama_memory_clear(self.memory, True)
        for slot in self.slots:
            slot.tokens = []

    def close(self) -> None:
        C.llama_batch_free(self.batch)
        C.llama_free(self.ctx)
        C.llama_model_free(self.model)

    # ---- one step
    def idle(self) -> bool:
        return not self.waiting and not self.active

    def step(self) -> list[tuple[Sequence, str]]:
        """Admit what fits, run one `llama_decode`, sample; the calls that ended, each with how
        ("done", "cancelled" or an error message)."""
        ended = self._drop_cancelled()
        self._admit()
        if not self.active:
            return ended
        threads = self.threads.choose()
        if threads != self._threads_set:
            C.llama_set_n_threads(self.ctx, threads, threads)
            self._threads_set = threads
        members = self._fill_batch()
        self._in_batch = members
        long_prompt = self.batch.n_tokens > self.parallel
        C.llama_set_abort_callback(self.ctx, self._abort if long_prompt else self._no_abort, None)
        began = time.perf_counter()
        code = C.llama_decode(self.ctx, self.batch)
        self.step_s = time.perf_counter() - began
        self._in_batch = []
        if code != 0:
            return ended + self._failed(members, code)
        if self.batch.n_tokens == len(members):  # every member generates one token: a figure
            self.width.record(threads, len(members), self.step_s)
        self.moved.update(sequence.id for sequence in members)
        index = 0
        for sequence, count, wants_logits in self._layout:
            index += count
            self._commit(sequence, count)
            if wants_logits:
                self._advance(sequence, index - 1)
        for sequence in list(self.active):
            if sequence.finish is not None:
                ended.append((sequence, "done"))
                self._release(sequence)
        return ended

    def _should_abort(self, _data: Any) -> bool:
        return any(sequence.id in self.cancelled for sequence in self._in_batch)

    def _fill_batch(self) -> list[Sequence]:
        batch, n = self.batch, 0
        self._layout: list[tuple[Sequence, int, bool]] = []
        members = []
        for sequence in self.active:  # generating calls first: one token each
            if sequence.feed is not None:
                n = self._put(n, sequence, [sequence.feed], True)
                members.append(sequence)
        # a prompt evaluated beside calls that generate goes in small chunks: each chunk holds
        # their next token back for as long as it takes, and they came first
        room = N_BATCH if n == 0 else min(N_BATCH, n + PROMPT_BESIDE)
        for sequence in self.active:
            if sequence.feed is None and sequence.pending and n < room:
                chunk = sequence.pending[: room - n]
                n = self._put(n, sequence, chunk, len(chunk) == len(sequence.pending))
                members.append(sequence)
        batch.n_tokens = n
        return members

    def _put(self, n: int, sequence: Sequence, tokens: list[int], logits: bool) -> int:
        batch = self.batch
        for offset, token in enumerate(tokens):
            i = n + offset
            batch.token[i] = token
            batch.pos[i] = sequence.pos + offset
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = sequence.slot
            batch.logits[i] = False
        batch.logits[n + len(tokens) - 1] = logits
        self._layout.append((sequence, len(tokens), logits))
        return n + len(tokens)

    def _failed(self, members: list[Sequence], code: int) -> list[tuple[Sequence, str]]:
        """An aborted (2) or failed decode: the batch's cache entries are undone; an abort is a
        cancellation and the others go on; no room in the cache (1) fails the newest call."""
        for sequence in members:
            C.llama_memory_seq_rm(self.memory, sequence.slot, sequence.pos, -1)
        if code == 2:
            return self._drop_cancelled()
        if code == 1 and self._evict(exclude_busy=True):
            return []
        victim = max(members, key=lambda s: s.id)
        self._release(victim)
        return [(victim, f"llama_decode failed ({code}): the model's context is full")]

    def _commit(self, sequence: Sequence, count: int) -> None:
        """The batch's `count` tokens of this call are in the cache."""
        if sequence.feed is not None:
            fed = [sequence.feed]
            sequence.feed = None
        else:
            fed, sequence.pending = sequence.pending[:count], sequence.pending[count:]
        self.slots[sequence.slot].tokens.extend(fed)
        sequence.pos += len(fed)

    def _advance(self, sequence: Sequence, index: int) -> None:
        """Sample the call's next token from the logits at `index` of the batch."""
        token = self.words.sample(self.ctx, index, sequence.sampler, sequence.constraint)
        if self.words.is_end(token):
            sequence.finish = "stop"
            return
        sequence.out.append(token)
        sequence.text += self.words.piece(token)
        if sequence.constraint is not None and sequence.constraint.finished():
            sequence.finish = "stop"
        elif len(sequence.out) >= sequence.max_tokens:
            sequence.finish = "length"
        elif sequence.stop and any(s in sequence.text.decode("utf-8", errors="ignore") for s in sequence.stop):
            sequence.finish = "stop"
        else:
            sequence.feed = token

    # ---- slots and the cache
    def _admit(self) -> None:
        width = self.width.choose(len(self.waiting) + len(self.active))
        while self.waiting and len(self.active) < width:
            sequence = self._next()
            need = len(sequence.prompt) + sequence.max_tokens
            while self._cells_in_use() + need > self.cells and self._evict(exclude_busy=True):
                pass
            if self.active and self._cells_in_use() + need > self.cells:
                return  # wait for a running call to finish
            self.waiting.remove(sequence)
            self._place(sequence)
            self.active.append(sequence)
            self.on_start(sequence.id)

    def _next(self) -> Sequence:
        """The waiting call to admit: first come, first served, except that a call whose prompt is
        mostly in the cache already (a conversation's next turn, a retry of a stopped call) goes
        first while the oldest has not waited `OVERTAKEN_S` (a busy machine makes every call wait a
        minute or more): it costs little to serve, and served later its prefix may have been
        evicted by the calls admitted before it."""
        oldest = self.waiting[0]
        if time.monotonic() - oldest.arrived >= OVERTAKEN_S:
            return oldest
        for sequence in self.waiting:
            cached = max(common_prefix(slot.tokens, sequence.prompt) for slot in self.slots)
            if cached >= max(WARM, len(sequence.prompt) // 2):
                return sequence
        return oldest

    def _place(self, sequence: Sequence) -> None:
        """Pick the idle slot to reuse and the longest cached prefix of the prompt anywhere."""
        free = [i for i, slot in enumerate(self.slots) if not slot.busy]
        prompt = sequence.prompt
        own = max(free, key=lambda i: (common_prefix(self.slots[i].tokens, prompt), -self.slots[i].used))
        best = max(range(SLOTS), key=lambda i: common_prefix(self.slots[i].tokens, prompt))
        shared = common_prefix(self.slots[best].tokens, prompt)
        mine = common_prefix(self.slots[own].tokens, prompt)
        slot = self.slots[own]
        if shared > mine:  # copy the longer prefix from another sequence's cells
            C.llama_memory_seq_rm(self.memory, own, 0, -1)
            C.llama_memory_seq_cp(self.memory, best, own, 0, shared)
            slot.tokens = prompt[:shared]
            mine = shared
        reuse = min(mine, len(prompt) - 1)  # the last prompt token is evaluated again for its logits
        C.llama_memory_seq_rm(self.memory, own, reuse, -1)
        slot.tokens = prompt[:reuse]
        slot.busy = True
        sequence.slot, sequence.pos, sequence.cached = own, reuse, reuse
        sequence.pending = prompt[reuse:]

    def _release(self, sequence: Sequence) -> None:
        if sequence in self.active:
            self.active.remove(sequence)
        slot = self.slots[sequence.slot] if sequence.slot >= 0 else None
        if slot is not None:
            slot.busy = False
            self.clock += 1
            slot.used = self.clock
            if sequence.finish is None:  # dropped mid-way: keep only what is committed
                C.llama_memory_seq_rm(self.memory, sequence.slot, len(slot.tokens), -1)
        C.llama_sampler_free(sequence.sampler)
        if sequence.constraint is not None:
            sequence.constraint.close()

    def _cells_in_use(self) -> int:
        reserved = sum(len(s.prompt) + s.max_tokens - s.cached for s in self.active)
        return sum(len(slot.tokens) for slot in self.slots if not slot.busy) + reserved

    def _evict(self, exclude_busy: bool) -> bool:
        idle = [i for i, slot in enumerate(self.slots) if slot.tokens and not (exclude_busy and slot.busy)]
        if not idle:
            return False
        oldest = min(idle, key=lambda i: self.slots[i].used)
        C.llama_memory_seq_rm(self.memory, oldest, 0, -1)
        self.slots[oldest].tokens = []
        return True

    def _drop_cancelled(self) -> list[tuple[Sequence, str]]:
        ended = []
        for sequence in [s for s in (*self.waiting, *self.active) if s.id in self.cancelled]:
            self.cancelled.discard(sequence.id)
            if sequence in self.waiting:
                self.waiting.remove(sequence)
                sequence.slot = -1
            self._release(sequence)
            ended.append((sequence, "cancelled"))
        return ended
