"""A pool of hosts that serve the same models (a provider's `base_urls`: several Ollama or vLLM
hosts), and which of them takes each call.

Each attempt of a call goes to the least busy healthy host: the fewest calls in flight, ties taken
in turn (round-robin), never past that host's own limits (the provider's `max_concurrency` and
`max_concurrency_per_model` hold per host). Calls wait, oldest first, while every healthy host is
full. A host whose calls fail with a transient error `cooldown_after` times in a row (the
breaker's threshold) cools down: it gets no call for `host_cooldown_s` while others are healthy,
then one call to prove itself (a failure cools it again at once, a success makes it healthy). A
host in a failure streak takes one call at a time, so a host that is down sees few calls. When
every host is cooling, the pool's provider is opened in the breaker (breaker.py), as a provider of
one host is. The pool lives on the run's event loop, as the other gates do.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator.models._schedule import wait_turn
from orchestrator.policy.egress import host_name


@dataclass
class Host:
    url: str
    name: str
    index: int
    in_flight: int = 0
    per_model: Counter[str] = field(default_factory=Counter)  # calls in flight per model
    calls: int = 0  # calls it was given
    failures: int = 0  # consecutive transient failures
    cooled_until: float = 0.0  # on the pool's clock; while it lies ahead, the host gets no call

    def cooling(self, now: float) -> bool:
        return now < self.cooled_until


@dataclass
class _Waiter:
    model: str
    future: asyncio.Future[Host]


class HostPool:
    def __init__(
        self,
        urls: tuple[str, ...],
        max_concurrency: int | None = None,
        max_per_model: int | None = None,
        threshold: int = 3,
        cooldown_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hosts = [Host(url, host_name(url), index) for index, url in enumerate(urls)]
        self.max_concurrency = max_concurrency
        self.max_per_model = max_per_model
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.waiting: list[_Waiter] = []
        self._turn = 0  # the host whose turn it is on a tie

    async def acquire(self, model: str) -> Host:
        """Wait for a free place on the least busy healthy host and take it."""
        waiter = _Waiter(model, asyncio.get_running_loop().create_future())
        host: Host = await wait_turn(self.waiting, waiter, self._admit, lambda given: self.release(given, model))
        return host

    def release(self, host: Host, model: str) -> None:
        host.in_flight -= 1
        host.per_model[model] -= 1
        self._admit()

    def succeeded(self, host: Host) -> None:
        host.failures = 0
        host.cooled_until = 0.0

    def failed(self, host: Host) -> bool:
        """Count a transient failure of `host`; True when it cools down with it."""
        host.failures += 1
        if host.failures < self.threshold:
            return False
        host.cooled_until = self.clock() + self.cooldown_s
        return True

    def all_cooling(self) -> bool:
        now = self.clock()
        return all(host.cooling(now) for host in self.hosts)

    def _has_room(self, host: Host, model: str) -> bool:
        limit = 1 if host.failures else self.max_concurrency  # a failing host: one call at a time
        if limit is not None and host.in_flight >= limit:
            return False
        return self.max_per_model is None or host.per_model[model] < self.max_per_model

    def _pick(self, model: str) -> Host | None:
        now = self.clock()
        healthy = [host for host in self.hosts if not host.cooling(now)]
        free = [host for host in healthy or self.hosts if self._has_room(host, model)]
        if not free:
            return None
        count = len(self.hosts)
        chosen = min(free, key=lambda host: (host.in_flight, (host.index - self._turn) % count))
        self._turn = (chosen.index + 1) % count
        return chosen

    def _admit(self) -> None:
        """Give free places to the waiting calls, oldest first (a call whose model is at its limit
        everywhere lets the calls behind it pass)."""
        for waiter in list(self.waiting):
            if waiter.future.done():  # cancelled while it waited
                self.waiting.remove(waiter)
                continue
            host = self._pick(waiter.model)
            if host is None:
                continue
            self.waiting.remove(waiter)
            host.in_flight += 1
            host.per_model[waiter.model] += 1
            host.calls += 1
            waiter.future.set_result(host)
