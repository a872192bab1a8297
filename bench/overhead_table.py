"""(1) orchestration overhead per subtask and (6) peak memory, each measurement in its own process."""

from __future__ import annotations

from typing import Any

from bench.child import child, median


def run(quick: bool) -> dict[str, Any]:
    sizes = [5, 20] if quick else [10, 100, 1000]
    repeats = 1 if quick else 3  # processes; each takes the median of three runs
    rows: list[dict[str, Any]] = []
    per: dict[tuple[str, bool, int], float] = {}
    rss: dict[str, float] = {}
    for checkpointed in (False, True):
        for n in sizes:
            for which in ("bare", "orchestrator"):
                flags = ["--checkpointed"] if checkpointed else []
                samples = [child("bench.overhead", "--which", which, "--n", str(n), *flags) for _ in range(repeats)]
                per[(which, checkpointed, n)] = median([s["seconds"] for s in samples]) / n * 1000
                if not checkpointed and n == sizes[-1]:
                    rss[which] = median([s["peak_rss_mib"] for s in samples])
            mine, bare = per[("orchestrator", checkpointed, n)], per[("bare", checkpointed, n)]
            label = "SQLite checkpointer" if checkpointed else "no checkpointer"
            rows.append(
                {
                    "figure": f"ms per subtask, N={n}, {label}",
                    "ratio": round(mine / bare, 2),
                    "absolute": f"{mine:.3f} ms vs bare {bare:.3f} ms",
                    "met": (mine / bare <= 1.5) if not checkpointed else None,
                }
            )
    smallest, largest = sizes[0], sizes[-1]
    flat = per[("orchestrator", False, largest)] / per[("orchestrator", False, smallest)]
    rows.append(
        {
            "figure": f"per-subtask cost at N={largest} / at N={smallest} (1.0 = linear total)",
            "ratio": round(flat, 2),
            "absolute": (
                f"{per[('orchestrator', False, largest)]:.3f} ms vs {per[('orchestrator', False, smallest)]:.3f} ms"
            ),
            "met": flat <= 1.5,
        }
    )
    memory = {
        "rows": [
            {
                "figure": f"peak RSS at N={largest}",
                "ratio": round(rss["orchestrator"] / rss["bare"], 2),
                "absolute": f"{rss['orchestrator']:.0f} MiB vs bare {rss['bare']:.0f} MiB",
                "met": rss["orchestrator"] / rss["bare"] < 2,
            }
        ]
    }
    return {"rows": rows, "memory": memory}
