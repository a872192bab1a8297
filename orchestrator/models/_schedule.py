"""Model-swap-aware scheduling for hosts that keep one model loaded at a time.

A local Ollama with `max_loaded_models: 1` pays a model load each time the requested model
changes. The gate of such a host serves the loaded model while anyone waits for it, and switches
models only when no request for the loaded one is waiting (then to the model with most waiting),
so each model loads once per run. The last request for a model before a switch is told so, and is
sent with Ollama's `keep_alive: 0`, so the host frees it at once instead of keeping both resident.
Hosts with room (no `max_loaded_models`) are not gated.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Waiter:
    model: str
    future: asyncio.Future[bool]


async def wait_turn(
    waiting: list[Any], waiter: Any, admit: Callable[[], None], give_back: Callable[[Any], None]
) -> Any:
    """Queue `waiter` (it has a `future`), admit whoever may go, and wait for its turn. A
    cancelled waiter leaves the queue, or gives back the turn it was granted meanwhile."""
    waiting.append(waiter)
    admit()
    try:
        return await waiter.future
    except asyncio.CancelledError:
        if waiter in waiting:
            waiting.remove(waiter)
        elif waiter.future.done() and not waiter.future.cancelled():
            give_back(waiter.future.result())
        raise


@dataclass
class ModelGate:
    """Admits calls to one single-model host: `capacity` at a time, all for the loaded model."""

    capacity: int = 1
    loaded: str | None = None
    in_flight: int = 0
    loads: int = 0
    waiting: list[_Waiter] = field(default_factory=list)

    async def acquire(self, model: str) -> bool:
        """Wait for a turn; True when no other call for this model is waiting behind it (the
        host may then unload the model as soon as this call is done)."""
        waiter = _Waiter(model, asyncio.get_running_loop().create_future())
        last: bool = await wait_turn(self.waiting, waiter, self._admit, lambda _: self.release())
        return last

    def release(self) -> None:
        self.in_flight -= 1
        self._admit()

    def _admit(self) -> None:
        while self.waiting and self.in_flight < self.capacity:
            same = [w for w in self.waiting if w.model == self.loaded]
            if same:
                chosen = same[0]
            elif self.in_flight == 0:  # switch: to the model most calls wait for, oldest first
                counts = Counter(w.model for w in self.waiting)
                best = max(counts.values())
                chosen = next(w for w in self.waiting if counts[w.model] == best)
                if chosen.model != self.loaded:
                    self.loads += 1
                self.loaded = chosen.model
            else:
                return  # others wait until the loaded model's calls are done
            self.waiting.remove(chosen)
            self.in_flight += 1
            others = any(w.model != chosen.model for w in self.waiting)
            last = others and not any(w.model == chosen.model for w in self.waiting)
            chosen.future.set_result(last)
