"""(2) Fan-out under a concurrency limit: N subtasks on a model with a fixed latency and
`limits.concurrency = C`, against the ideal (ceil(N/C) rounds, then the aggregation's call) and
against running every call one after another."""

from __future__ import annotations

import math
from typing import Any

from bench.child import child, median


def run(quick: bool) -> dict[str, Any]:
    n, latency_ms, concurrency = (40, 20, 8) if quick else (300, 100, 32)
    repeats = 1 if quick else 3
    args = (
        "--which",
        "orchestrator",
        "--n",
        str(n),
        "--latency-ms",
        str(latency_ms),
        "--concurrency",
        str(concurrency),
    )
    wall = median([child("bench.overhead", *args)["seconds"] for _ in range(repeats)])
    ideal = (math.ceil(n / concurrency) + 1) * latency_ms / 1000  # the rounds, then the aggregation
    sequential = (n + 1) * latency_ms / 1000
    return {
        "rows": [
            {
                "figure": f"{n} subtasks, {latency_ms} ms each, concurrency {concurrency}: wall / ideal",
                "ratio": round(wall / ideal, 3),
                "absolute": f"{wall:.3f} s vs ideal {ideal:.3f} s",
                "met": wall / ideal <= 1.15,
            },
            {
                "figure": "wall / one call after another",
                "ratio": round(wall / sequential, 4),
                "absolute": f"{wall:.3f} s vs {sequential:.1f} s ({n + 1} x {latency_ms} ms)",
                "met": None,
            },
        ]
    }
