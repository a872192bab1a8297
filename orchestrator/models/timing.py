"""The run's clock and what a chain call spent its time on, for the HTML timeline and
OpenTelemetry: each model attempt (from a free slot to its answer or failure) and each wait (for a
provider or model slot, the model's own queue, a rate limit's Retry-After, a backoff). An attempt
that failed and was retried is a span of its own (`retried`, its error kind as its status), so a
retry never hides inside the span of the attempt that answered. Times are milliseconds on the
run's clock: since the run started, or since its first start for a resumed run."""

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
    # the retries of models whose attempts are not written down yet: (model, at, seconds, error kind)
    retries: list[tuple[str, float, float, str]] = field(default_factory=list)

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
        """A model's attempts, one span each (the retried ones split at the waits between them);
        `hosts`: the host of a pool each attempt went to, in order."""
        mine = [retry for retry in self.retries if retry[0] == ref]
        self.retries = [retry for retry in self.retries if retry[0] != ref]
        now = time.time()
        begins = [start, *(at + seconds for _, at, seconds, _ in mine)]
        ends = [*(at for _, at, _, _ in mine), now]
        count = len(begins)
        per_attempt = len(hosts) == count
        for index, (begin, end) in enumerate(zip(begins, ends, strict=True)):
            final = index == count - 1
            detail = [f"attempt {index + 1} of {count}"] if count > 1 else []
            if not final:
                detail[0] += ", retried"
            elif count == 1 and attempts > 1:
                detail.append(f"{attempts} attempts")
            if per_attempt and count > 1:
                detail.append(f"host {hosts[index]}")
            elif hosts and final:
                shown = [host for i, host in enumerate(hosts) if i == 0 or hosts[i - 1] != host]
                detail.append("host " + " -> ".join(shown))
            self.spans.append(
                {
                    "kind": "model",
                    "name": ref,
                    "started_ms": self.clock.ms(begin),
                    "duration_ms": max(0, int((end - begin) * 1000)),
                    "status": status if final else mine[index][3],
                    "retried": not final,
                    "detail": "; ".join(detail),
                    "tokens_in": tokens[0] if final else None,
                    "tokens_out": tokens[1] if final else None,
                }
            )

    def retried(self, ref: str, at: float, seconds: float, error: BaseException | None) -> None:
        """An attempt of `ref` failed and the next one comes after `seconds` (from `at`)."""
        kind = getattr(error, "kind", None) or (type(error).__name__ if error is not None else "error")
        self.retries.append((ref, at, seconds, str(kind)))


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
            at = time.time()
            limited = getattr(error, "retry_after", None) or getattr(error, "status", None) == 429
            self.log.wait("rate_limit" if limited else "backoff", at, seconds, model)
            self.log.retried(model, at, seconds, error)
