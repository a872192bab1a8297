"""How many threads the embedded model's engine should compute with, on a machine it shares.

llama.cpp's CPU threads wait for each other at every graph node by spinning. With every core
busy elsewhere, a thread that is descheduled stalls its partners, and two threads run several
times slower than one (measured here: 0.7 against 5.2 tokens/s on 2 cores with a load of 10).
`Threads` watches how much CPU the rest of the machine uses (from /proc/stat, minus this process)
and picks all the cores when they are free, one when they are not. Where /proc is missing, it
keeps the configured count.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

BUSY_OTHERS = 0.5  # cores used by other processes above which one thread computes faster
INTERVAL_S = 1.0


def _busy_ticks() -> tuple[int, int]:
    """(ticks every CPU spent busy, ticks this process spent), both in clock ticks."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # less idle and iowait
    own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return busy, int(own[11]) + int(own[12])


class Threads:
    def __init__(self, most: int) -> None:
        self.most = max(1, most)
        self.current = self.most
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        try:
            self._last: tuple[float, int, int] | None = (time.monotonic(), *_busy_ticks())
        except (OSError, ValueError, IndexError):
            self._last = None

    def choose(self) -> int:
        """The thread count for the next step (re-evaluated at most once a second)."""
        if self._last is None or self.most == 1:
            return self.current
        now = time.monotonic()
        if now - self._last[0] < INTERVAL_S:
            return self.current
        try:
            busy, own = _busy_ticks()
        except (OSError, ValueError, IndexError):
            return self.current
        then, busy_then, own_then = self._last
        self._last = (now, busy, own)
        others = ((busy - busy_then) - (own - own_then)) / self._tick / (now - then)
        self.current = 1 if others > BUSY_OTHERS else self.most
        return self.current


class Fixed:
    """Always the same count (for measurements that must not adapt)."""

    def __init__(self, count: int) -> None:
        self.current = count

    def choose(self) -> int:
        return self.current
