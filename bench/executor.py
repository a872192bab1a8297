"""(9) Executors: N subtasks against a loopback OpenAI-compatible model server over real HTTP (a
fixed latency per answer, `limits.concurrency` 32) on the local executor and on the Ray executor
(Ray's own multi-node test cluster on this machine: a head with no CPU, two labelled worker nodes),
in one process and one cluster (`bench/executor_child.py`, run inside `unshare -n` with only
loopback: Ray probes a public resolver for its address). Figures: the local run's wall over the
ideal (the fan-out over HTTP, beside the in-process fan-out of `bench/fanout.py`); Ray's wall and
CPU per subtask over the local run's (the driver's CPU, and the driver's plus the cluster's
processes'); the first Ray run against the later ones; Ray's start (head and workers up) and its
fixed cost per run (a 2-subtask run); and the cost per subtask at N=1000 over N=200, both executors.
`--quick` runs the local executor only (N=8): the cluster alone takes 8-11 s to start here."""

from __future__ import annotations

import importlib.util
import shlex
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.child import child

ROOT = Path(__file__).resolve().parent.parent


def ray_child(*args: str) -> dict[str, Any]:
    """The child in a network namespace with only loopback (as tests/servers/ray_scenario.py runs)."""
    import json
    import subprocess

    inner = " ".join(shlex.quote(a) for a in (sys.executable, "-m", "bench.executor_child", *args))
    command = ["unshare", "-n", "sh", "-c", f"ip link set lo up && exec {inner}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=3600, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"bench.executor_child {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def ray_unavailable() -> str | None:
    if importlib.util.find_spec("ray") is None:
        return "Ray is not installed (the [ray] extra)"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare and ip (a network namespace with only loopback)"
    return None


def median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def per(run: dict[str, Any], key: str) -> float:
    """Milliseconds per subtask."""
    return float(run[key]) * 1000 / run["n"]


def cpu(run: dict[str, Any]) -> float:
    return float(run["driver_cpu_s"] + run["cluster_cpu_s"])


def run(quick: bool) -> dict[str, Any]:
    n, big, latency_ms, concurrency, repeats, runs = (8, 16, 20, 4, 1, 2) if quick else (200, 1000, 100, 32, 3, 5)
    args = ["--n", str(n), "--big", str(big), "--latency-ms", str(latency_ms), "--concurrency", str(concurrency)]
    args += ["--repeats", str(repeats), "--sweep", str(runs)]
    skipped = "--quick: local executor only" if quick else ray_unavailable()
    report = child("bench.executor_child", *args) if skipped else ray_child(*args, "--ray")
    local = report["local"]
    wall, ideal = median(local, "wall_s"), report["ideal_s"]
    local_cpu_ms = statistics.median(per(r, "driver_cpu_s") for r in local)
    where = f"{n} subtasks over HTTP (loopback server, {latency_ms} ms each), concurrency {concurrency}"
    http = {
        "figure": f"{where}, local executor: wall / ideal",
        "ratio": round(wall / ideal, 3),
        "absolute": f"{wall:.3f} s vs ideal {ideal:.3f} s; {local_cpu_ms:.1f} ms CPU per subtask",
        "met": None,
    }
    big_local = report["local_big"]
    rows = [
        {
            "figure": f"local executor: wall per subtask at N={big} / at N={n}",
            "ratio": round(per(big_local, "wall_s") / (wall * 1000 / n), 3),
            "absolute": f"{per(big_local, 'wall_s'):.2f} ms vs {wall * 1000 / n:.2f} ms"
            f" (ideal {report['ideal_big_s'] * 1000 / big:.2f} vs {ideal * 1000 / n:.2f} ms)",
            "met": None,
        },
        {
            "figure": f"local executor: CPU per subtask at N={big} / at N={n}",
            "ratio": round(per(big_local, "driver_cpu_s") / local_cpu_ms, 3),
            "absolute": f"{per(big_local, 'driver_cpu_s'):.1f} ms vs {local_cpu_ms:.1f} ms",
            "met": None,
        },
    ]
    if "local_sweep" in report:  # orchestrator/runtime/sweep.py is there
        swept = report["local_sweep"]
        rows.append(
            {
                "figure": f"local executor: wall per subtask, a sweep of {swept['runs']} runs x {n} at once"
                f" / one run of {n}",
                "ratio": round(per(swept, "wall_s") / (wall * 1000 / n), 3),
                "absolute": f"{per(swept, 'wall_s'):.2f} ms vs {wall * 1000 / n:.2f} ms ({swept['wall_s']:.1f} s);"
                f" CPU {per(swept, 'driver_cpu_s'):.1f} vs {local_cpu_ms:.1f} ms",
                "met": None,
            }
        )
    if not skipped:
        rows = ray_rows(report, n, big) + rows
    else:
        rows[0]["figure"] += f" (Ray not measured: {skipped})"
    return {"rows": rows, "fanout_http": {"rows": [http]}, "skipped": skipped}


def ray_rows(report: dict[str, Any], n: int, big: int) -> list[dict[str, Any]]:
    local, remote = report["local"], report["ray"]
    first, later = remote[0], remote[1:] or remote
    wall = median(local, "wall_s")
    later_wall = median(later, "wall_s")
    local_cpu = statistics.median(per(r, "driver_cpu_s") for r in local)
    driver = statistics.median(per(r, "driver_cpu_s") for r in later)
    total = statistics.median(cpu(r) * 1000 / r["n"] for r in later)
    cluster = statistics.median(per(r, "cluster_cpu_s") for r in later)
    tiny, ray_tiny, ray_big = report["local_tiny"], report["ray_tiny"], report["ray_big"]
    idle = report["idle_cluster_cpu_per_s"] * 1000
    return [
        {
            "figure": f"Ray (2 worker nodes) / local: wall per subtask, N={n}, runs after the first",
            "ratio": round(later_wall / wall, 2),
            "absolute": f"{later_wall * 1000 / n:.1f} ms vs {wall * 1000 / n:.1f} ms"
            f" ({later_wall:.1f} s vs {wall:.2f} s)",
            "met": None,
        },
        {
            "figure": f"Ray / local: wall per subtask, N={n}, the first Ray run",
            "ratio": round(first["wall_s"] / wall, 2),
            "absolute": f"{per(first, 'wall_s'):.1f} ms vs {wall * 1000 / n:.1f} ms ({first['wall_s']:.1f} s)",
            "met": None,
        },
        {
            "figure": "Ray: a later run / the first (each run starts its own actors)",
            "ratio": round(later_wall / first["wall_s"], 3),
            "absolute": f"{later_wall:.1f} s vs {first['wall_s']:.1f} s",
            "met": None,
        },
        {
            "figure": f"Ray / local: CPU per subtask, the driver only, N={n}",
            "ratio": round(driver / local_cpu, 3),
            "absolute": f"{driver:.1f} ms vs {local_cpu:.1f} ms",
            "met": None,
        },
        {
            "figure": f"Ray / local: CPU per subtask, the driver + the cluster's processes, N={n}",
            "ratio": round(total / local_cpu, 2),
            "absolute": f"{total:.1f} ms ({driver:.1f} driver + {cluster:.1f} cluster) vs {local_cpu:.1f} ms;"
            f" idle cluster {idle:.0f} ms CPU/s ({report['idle_processes']} processes, /proc sampled)",
            "met": None,
        },
        {
            "figure": f"Ray start: head + 2 worker nodes up / the local N={n} run",
            "ratio": round(report["cluster_start_s"] / wall, 2),
            "absolute": f"{report['cluster_start_s']:.1f} s (then connecting: {report['connect_s']:.2f} s)"
            f" vs {wall:.2f} s",
            "met": None,
        },
        {
            "figure": f"Ray's fixed cost per run: a {tiny['n']}-subtask run, Ray / local",
            "ratio": round(ray_tiny["wall_s"] / tiny["wall_s"], 1),
            "absolute": f"{ray_tiny['wall_s']:.2f} s vs {tiny['wall_s']:.2f} s; CPU {cpu(ray_tiny):.2f} s vs"
            f" {cpu(tiny):.2f} s",
            "met": None,
        },
        {
            "figure": f"Ray: wall per subtask at N={big} / at N={n}",
            "ratio": round(per(ray_big, "wall_s") / (later_wall * 1000 / n), 3),
            "absolute": f"{per(ray_big, 'wall_s'):.1f} ms vs {later_wall * 1000 / n:.1f} ms"
            f" ({ray_big['wall_s']:.1f} s)",
            "met": None,
        },
        {
            "figure": f"Ray: CPU per subtask (driver + cluster) at N={big} / at N={n}",
            "ratio": round(cpu(ray_big) * 1000 / big / total, 3),
            "absolute": f"{cpu(ray_big) * 1000 / big:.1f} ms vs {total:.1f} ms",
            "met": None,
        },
        *sweep_rows(report, n, later_wall, total),
    ]


def sweep_rows(report: dict[str, Any], n: int, later_wall: float, total: float) -> list[dict[str, Any]]:
    """A sweep of several N-subtask specs at once on Ray (they share the connection and the actors)."""
    if "ray_sweep" not in report:
        return []
    swept, local = report["ray_sweep"], report["local_sweep"]
    what = f"a sweep of {swept['runs']} runs x {n} at once"
    return [
        {
            "figure": f"Ray: wall per subtask, {what} / one run of {n}",
            "ratio": round(per(swept, "wall_s") / (later_wall * 1000 / n), 3),
            "absolute": f"{per(swept, 'wall_s'):.1f} ms vs {later_wall * 1000 / n:.1f} ms ({swept['wall_s']:.1f} s)",
            "met": None,
        },
        {
            "figure": f"Ray: CPU per subtask (driver + cluster), {what} / one run of {n}",
            "ratio": round(cpu(swept) * 1000 / swept["n"] / total, 3),
            "absolute": f"{cpu(swept) * 1000 / swept['n']:.1f} ms vs {total:.1f} ms",
            "met": None,
        },
        {
            "figure": f"Ray / local: wall, {what}",
            "ratio": round(swept["wall_s"] / local["wall_s"], 2),
            "absolute": f"{swept['wall_s']:.1f} s vs {local['wall_s']:.1f} s",
            "met": None,
        },
    ]
