"""Where a call's time went, for a model that says when it starts serving a call (the embedded
model's worker): waiting in the model's queue behind other calls, then serving it (prompt
evaluation, then generation).

Time that counts: a call's `timeout_s` counts from when the model starts serving it, not from
when it joined the queue. Such a model also has a progress bound (`stall_s`: no new token, a
prompt chunk evaluated counts as one) and a separate, generous bound on the time in its queue
(`queue_wait_s`). A model that says nothing of its queue (an HTTP endpoint) keeps `timeout_s`
from when the request is sent: the orchestrator's own queue for it (its provider's
`max_concurrency`) is already outside.

The call path (`_call.budgeted_call`) opens one `Serving` per call and the model fills it in; it
travels in a context variable, not in the call's options, which key the result cache and the
recordings. The bounds come from the run's settings the same way (`patience`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from orchestrator.errors import ProviderTimeout

STALL_S = 120.0  # default limits.stall_s
QUEUE_WAIT_S = 1800.0  # default limits.queue_wait_s
# how much longer than its own bounds the call path waits for a model that keeps them itself
SAFETY_S = 30.0


@dataclass(frozen=True)
class Patience:
    """The bounds besides `timeout_s` for a model that reports its serving."""

    stall_s: float = STALL_S
    queue_s: float = QUEUE_WAIT_S


_PATIENCE: ContextVar[Patience | None] = ContextVar("patience", default=None)
_SERVING: ContextVar[Serving | None] = ContextVar("serving", default=None)


@contextmanager
def patience(stall_s: float, queue_s: float) -> Iterator[None]:
    """The bounds of the calls made inside the block (the chain sets the run's)."""
    token = _PATIENCE.set(Patience(stall_s, queue_s))
    try:
        yield
    finally:
        _PATIENCE.reset(token)


@dataclass
class Serving:
    """One call: when it was queued, when its model started and last made progress, the tokens
    it produced. The model's side (a reader thread) writes it; the caller's side reads it."""

    timeout_s: float = float("inf")
    patience: Patience = field(default_factory=Patience)
    queued_at: float = field(default_factory=time.time)
    started_at: float | None = None
    progress_at: float | None = None
    ended_at: float | None = None
    tokens: int = 0
    # queued | prompt | generating | done
    phase: str = "queued"
    # the model reported its serving: the bounds are its to keep, and the split is known
    reported: bool = False

    def start(self, at: float | None = None) -> None:
        self.started_at = self.progress_at = at or time.time()
        self.phase = "prompt"

    def progress(self, tokens: int, at: float | None = None) -> None:
        self.progress_at = at or time.time()
        if tokens > self.tokens:
            self.phase = "generating"
        self.tokens = max(self.tokens, tokens)

    def end(self) -> None:
        if self.ended_at is None:
            self.ended_at = time.time()

    @property
    def queued_s(self) -> float:
        until = self.started_at or self.ended_at or time.time()
        return max(0.0, until - self.queued_at)

    @property
    def served_s(self) -> float:
        if self.started_at is None:
            return 0.0
        return max(0.0, (self.ended_at or time.time()) - self.started_at)

    def outer_limit(self) -> float:
        """How long the call path itself waits for a model that keeps the bounds itself."""
        return self.patience.queue_s + self.timeout_s + SAFETY_S

    def overdue(self, now: float | None = None) -> str | None:
        """Why the call must stop now (a bound passed), or None."""
        now = now or time.time()
        if self.started_at is None:
            waited = now - self.queued_at
            if waited > self.patience.queue_s:
                return f"waited {waited:.1f} s in the model's queue (limits.queue_wait_s {self.patience.queue_s:g})"
            return None
        if now - self.started_at > self.timeout_s:
            return f"served for {now - self.started_at:.1f} s (limits.timeout_s {self.timeout_s:g})"
        quiet = now - (self.progress_at or self.started_at)
        if quiet > self.patience.stall_s:
            return f"no progress for {quiet:.1f} s (limits.stall_s {self.patience.stall_s:g})"
        return None

    def timed_out(self, model: str, why: str, *, local: bool) -> ProviderTimeout:
        """The error of a call stopped for `why`, with where its time went."""
        self.end()
        phase = self.phase if self.reported else "serving"
        split = f"waited {self.queued_s:.1f} s, then served {self.served_s:.1f} s" if self.reported else ""
        detail = f"{why}; {split}, {self.tokens} tokens produced" if split else why
        return ProviderTimeout(
            f"{model}: timed out ({phase}): {detail}",
            model=model,
            local=local,
            phase=phase,
            queued_s=round(self.queued_s, 3) if self.reported else 0.0,
            served_s=round(self.served_s, 3) if self.reported else round(self.timeout_s, 3),
            tokens=self.tokens,
        )


@contextmanager
def serving(timeout_s: float) -> Iterator[Serving]:
    """A call's record, the current one inside the block (its model finds it there)."""
    record = Serving(timeout_s=timeout_s, patience=_PATIENCE.get() or Patience())
    token = _SERVING.set(record)
    try:
        yield record
    finally:
        record.end()
        _SERVING.reset(token)


def current_serving() -> Serving | None:
    """The record of the call being made (None outside the call path: a direct model call)."""
    return _SERVING.get()
