"""How many calls the embedded model's engine decodes together, decided from what it measures
on this machine, now.

Decoding k calls in one batch costs more per step than decoding one, and pays only while a step
costs less than k times as much. On a quiet machine with free cores it does (docs/benchmarks.md);
on a machine whose cores other work keeps busy it may not, and then k calls decoded together all
go k times slower and all miss their deadlines together. `Width` times the steps in which every
call generates one token (no prompt chunk), keeps a decaying average of seconds per step for
each width and thread count, and admits as many calls as the best measured tokens per second
asks for, as long as each call still goes at least `MIN_SHARE` of the speed it would have alone
(a call's timeout runs from its admission: a batch must not stretch it without bound). It tries
the next width when calls wait and it has no recent figure for it (a few steps cost little), and
forgets figures older than `MEMORY_S`, so it follows the load as it changes.

Admission stays first come, first served (a call whose prompt is mostly cached may go first,
`_engine.Engine._next`): at width 1 the calls finish in the order they came, each at the
machine's full speed, and a call's timeout counts only from its admission.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

MEMORY_S = 120.0  # a figure older than this is measured again
SAMPLES = 6  # steps at a width before its figure counts
GAIN = 1.15  # a wider batch must beat the narrower one's tokens/s by this much
SMOOTHING = 0.3  # weight of a new step in the running average
MIN_SHARE = 0.5  # a call in a batch keeps at least this share of its speed alone


@dataclass
class _Figure:
    seconds: float  # per step, averaged
    samples: int
    at: float  # monotonic time of the last sample


class Width:
    def __init__(self, most: int, adapt: bool = True) -> None:
        self.most = max(1, most)
        self.adapt = adapt
        self.figures: dict[tuple[int, int], _Figure] = {}
        self.threads = 1
        self.current = 1 if adapt else self.most

    def record(self, threads: int, width: int, seconds: float) -> None:
        """One generation step of `width` calls took `seconds` with `threads` threads."""
        self.threads = threads
        now = time.monotonic()
        figure = self.figures.get((threads, width))
        if figure is None or now - figure.at > MEMORY_S:
            self.figures[(threads, width)] = _Figure(seconds, 1, now)
            return
        figure.seconds += SMOOTHING * (seconds - figure.seconds)
        figure.samples += 1
        figure.at = now

    def rate(self, width: int) -> float | None:
        """Tokens per second at `width`, from a recent figure with enough samples (else None)."""
        figure = self.figures.get((self.threads, width))
        if figure is None or figure.samples < SAMPLES or time.monotonic() - figure.at > MEMORY_S:
            return None
        return width / max(figure.seconds, 1e-6)

    def choose(self, demand: int) -> int:
        """How many calls may decode together now, with `demand` calls running or waiting."""
        if not self.adapt:
            return self.most
        best, best_rate = 1, self.rate(1)
        if best_rate is None:
            self.current = 1
            return 1
        alone = best_rate
        for width in range(2, self.most + 1):
            rate = self.rate(width)
            if rate is None:
                # not measured lately: try it while enough calls ask for it
                if demand >= width:
                    best = width
                break
            if rate < best_rate * GAIN or rate / width < alone * MIN_SHARE:
                break
            best, best_rate = width, rate
        self.current = best
        return best
