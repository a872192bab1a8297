"""(1) orchestration overhead per subtask and (6) peak memory, each measurement in its own process."""

from __future__ import annotations

from typing import Any

from bench.child import child, median


def run(quick: bool) -> dict[str, Any]:
    sizes = [5, 20] if quick else [10, 100, 1000]
    repeats = 1 if quick else 5  # process pairs; each process takes the median of three runs
    rows: list[dict[str, Any]] = []
    per: dict[tuple[str, bool, int], float] = {}
    rss: dict[str, float] = {}
    for checkpointed in (False, True):
        flags = ["--checkpointed"] if checkpointed else []
        for n in sizes:
            # bare and orchestrator alternate, so a slow spell of this shared machine hits both:
            # the ratio is the median of the ratios of neighbouring pairs
            samples: dict[str, list[dict[str, Any]]] = {"bare": [], "orchestrator": []}
            for repeat in range(repeats):
                order = ("bare", "orchestrator") if repeat % 2 == 0 else ("orchestrator", "bare")
                for which in order:
                    samples[which].append(child("bench.overhead", "--which", which, "--n", str(n), *flags))
            for which, taken in samples.items():
                per[(which, checkpointed, n)] = median([s["seconds"] for s in taken]) / n * 1000
                if not checkpointed and n == sizes[-1]:
                    rss[which] = median([s["peak_rss_mib"] for s in taken])
            pairs = zip(samples["orchestrator"], samples["bare"], strict=True)
            ratio = median([mine["seconds"] / bare["seconds"] for mine, bare in pairs])
            mine, bare = per[("orchestrator", checkpointed, n)], per[("bare", checkpointed, n)]
            label = "SQLite checkpointer" if checkpointed else "no checkpointer"
            rows.append(
                {
                    "figure": f"ms per subtask, N={n}, {label}",
                    "ratio": round(ratio, 2),
                    "absolute": f"{mine:.3f} ms vs bare {bare:.3f} ms",
                    "met": (ratio <= 1.5) if not checkpointed else None,
                }
            )
    # flat in N: the two largest sizes, where fixed costs (largest at the smallest N) weigh least
    smallest, largest = sizes[-2], sizes[-1]
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
