"""The run's clock and what a chain call spent its time on, for the HTML timeline and
OpenTelemetry: each model attempt (from a free slot to its answer or failure) and each wait (for a
provider or model slot, the model's own queue, a rate limit's Retry-After, a backoff). Times are
milliseconds on the run's clock: since the run started, or since its first start for a resumed run."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MIN_WAIT_S = 0.001  # shorter waits (an uncontended slot) are not worth a span
MIN_QUEUE_S = 0.5  # nor a call's shorter wait in its model's own queue (the embedded model's)


@dataclass
class RunClock:
    origin: float = field(default_factory=time.time)  # epoch seconds of the run's (first) start

    def ms(self, at: float | None = None) -> int:
        """Milliseconds from the run's start to `at` (epoch seconds; default now)."""
        return max(0, int(((time.time() if at is None else at) - self.origin) * 1000))


@dataclass
class SpanLog:
    """The spans of one chain call, as plain dicts (the engine turns them into `Span` records)."""

    clock: RunClock
    spans: list[dict[str, Any]] = field(default_factory=list)

    def wait(self, name: str, start: float, seconds: float, detail: str = "") -> None:
        if seconds >= MIN_WAIT_S:
            self.spans.append(
                {
                    "kind": "wait",
                    "name": name,
                    "started_ms": self.clock.ms(start),
                    "duration_ms": int(seconds * 1000),
                    "detail": detail,
                }
            )

    def queued(self, ref: str, waits: Sequence[tuple[float, float]]) -> None:
        """The waits of a model's calls in its own queue (behind other calls it was serving)."""
        for start, seconds in waits:
            if seconds >= MIN_QUEUE_S:
                self.wait("queue", start, seconds, ref)

    def model(
        self, ref: str, start: float, status: str, attempts: int, tokens: tuple[int, int], hosts: Sequence[str] = ()
    ) -> None:
        """A model's attempts; `hosts`: the host of a pool each attempt went to, in order."""
        detail = [f"{attempts} attempts"] if attempts > 1 else []
        if hosts:
            shown = [host for index, host in enumerate(hosts) if index == 0 or hosts[index - 1] != host]
            detail.append("host " + " -> ".join(shown))
        self.spans.append(
            {
                "kind": "model",
                "name": ref,
                "started_ms": self.clock.ms(start),
                "duration_ms": max(0, int((time.time() - start) * 1000)),
                "status": status,
                "detail": "; ".join(detail),
                "tokens_in": tokens[0],
                "tokens_out": tokens[1],
            }
        )


@dataclass
class Attempts:
    """The attempts on one route: how many, and the time slept between them."""

    count: int = 0
    waited_s: float = 0.0
    log: SpanLog | None = None  # where each wait is written down
    hosts: list[str] = field(default_factory=list)  # a pool: the host each attempt went to

    def waited(self, seconds: float, error: BaseException | None, model: str) -> None:
        """A sleep before the next attempt: a rate limit's Retry-After (or a 429), or our backoff."""
        self.waited_s += seconds
        if self.log is not None:
            limited = getattr(error, "retry_after", None) or getattr(error, "status", None) == 429
            self.log.wait("rate_limit" if limited else "backoff", time.time(), seconds, model)
