"""The executor benchmark's measurements, in one process (`bench/executor.py` runs it; with Ray,
inside a network namespace with only loopback, as tests/servers/ray_scenario.py is run):

    python -m bench.executor_child --n 200 --big 1000 --ray
    python -m bench.executor_child --serve 100     # the model server alone (its own process)

A loopback OpenAI-compatible model server (tests/servers/model_server.py's canned answers) runs in
a process of its own, so its CPU is not the run's, and answers every chat request after a fixed
latency. The latency is slept before the request is handled, outside the server's one-request-
at-a-time model lock (its `delay_s` is slept inside it, which serialises the answers: a slow
single-model host, not a concurrent endpoint). Runs of N subtasks (spec tasks of one role with
`tools: []`: one model call each, no planning call, then the aggregation's call) go through the
local executor and, with `--ray`, through the Ray executor on Ray's own multi-node test cluster (a
head with no CPU and two labelled worker nodes, started once), and as a sweep
of several specs at once (`orchestrator sweep`). CPU is measured as getrusage (RUSAGE_SELF +
RUSAGE_CHILDREN) deltas for this process (the driver: the LangGraph run, and Ray's core worker
when it is connected), and from /proc, sampled every 0.1 s, for the cluster's processes (every
descendant of this process but the model server: GCS, raylets, their agents and the actors, whose
time must be read while they live: see TreeSampler). Prints one JSON line."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SPEC = """version: 1
name: bench-executor
goal: Review the code.
workspace: ws
graph: coding-workflow
providers: {{api: {{kind: openai, base_url: '{url}/v1'}}}}
models: {{default: api/m}}
roles: {{debug: {{tools: []}}}}
limits: {{concurrency: {concurrency}}}
fail_on: none
tasks:
{tasks}
"""
TICK = os.sysconf("SC_CLK_TCK")


# ---- the model server (its own process)
def serve(latency_ms: int) -> None:
    """Serve canned answers after `latency_ms` each, print the URL, stop when stdin closes."""
    from tests.servers.model_server import Handler, ModelServer

    class LatencyHandler(Handler):
        def do_POST(self) -> None:
            if "chat/completions" in self.path:
                time.sleep(latency_ms / 1000)  # concurrently: outside the server's model lock
            super().do_POST()

        def do_GET(self) -> None:
            if self.path == "/bench/requests":
                self._json(200, {"chat": sum(self.state.requests.values())})
            else:
                super().do_GET()

    server = ModelServer({"m": "canned"})
    server.httpd.RequestHandlerClass = LatencyHandler
    server.httpd.socket.listen(1024)  # socketserver listens with a backlog of 5: a real server's is in the hundreds
    with server:
        print(server.url, flush=True)
        sys.stdin.read()


class Server:
    def __init__(self, latency_ms: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.executor_child", "--serve", str(latency_ms)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()

    def requests(self) -> int:
        import httpx

        return int(httpx.get(f"{self.url}/bench/requests").json()["chat"])

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


# ---- CPU
def own_cpu() -> float:
    """This process's CPU seconds, and its reaped children's."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def processes() -> dict[tuple[int, int], tuple[int, float]]:
    """Every process: (pid, start time) -> (parent pid, its own CPU seconds so far)."""
    found: dict[tuple[int, int], tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # from field 3 (state) on
        found[(int(entry), int(fields[19]))] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK)
    return found


def descendants(found: dict[tuple[int, int], tuple[int, float]], exclude: int) -> dict[tuple[int, int], float]:
    """The CPU seconds of every descendant of this process but `exclude`'s subtree."""
    children: dict[int, list[tuple[int, int]]] = {}
    for key, (parent, _) in found.items():
        children.setdefault(parent, []).append(key)
    tree: dict[tuple[int, int], float] = {}
    stack = [key for key in children.get(os.getpid(), []) if key[0] != exclude]
    while stack:
        key = stack.pop()
        tree[key] = found[key][1]
        stack.extend(children.get(key[0], []))
    return tree


class TreeSampler:
    """The CPU of this process's descendants (the cluster's processes) over a window, sampled every
    0.1 s from /proc: each process's own time, the last value seen, less its value when the window
    opened (0 for a process started since), so a worker killed at the end of a run still counts (to
    within its last 0.1 s, when it is idle). Ray's raylets do not wait for the workers they start
    (their children's times never reach the raylets' own), hence the sampling. The sampling's own
    CPU (its thread's, in this process) is taken off the driver's figure."""

    def __init__(self, exclude: int) -> None:
        self.exclude = exclude
        self.lock = threading.Lock()
        self.base: dict[tuple[int, int], float] = {}
        self.last: dict[tuple[int, int], float] | None = None
        self.own_s = 0.0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        tree = descendants(processes(), self.exclude)
        with self.lock:
            if self.last is not None:
                self.last.update(tree)

    def _loop(self) -> None:
        while not self.stopped.wait(0.1):
            started = time.thread_time()
            self._sample()
            with self.lock:
                self.own_s += time.thread_time() - started

    def open(self) -> None:
        tree = descendants(processes(), self.exclude)
        with self.lock:
            self.base, self.last, self.own_s = tree, dict(tree), 0.0

    def close(self) -> tuple[float, int, float]:
        """(the descendants' CPU seconds in the window, how many processes ran, the sampling's CPU)."""
        self._sample()
        with self.lock:
            last, self.last = self.last or {}, None
            return sum(v - self.base.get(k, 0.0) for k, v in last.items()), len(last), self.own_s

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()


# ---- one run
def write_spec(folder: Path, url: str, n: int, concurrency: int) -> Path:
    (folder / "ws").mkdir(parents=True, exist_ok=True)
    (folder / "ws" / "app.py").write_text("def add(a, b):\n    return a - b\n")
    tasks = "".join(f"  - {{role: debug, instruction: subtask {i}}}\n" for i in range(n))
    spec = folder / f"spec-{n}.yaml"
    spec.write_text(SPEC.format(url=url, concurrency=concurrency, tasks=tasks))
    return spec


def measure(work: Any, n: int, server: Server, sampler: TreeSampler) -> tuple[Any, dict[str, Any]]:
    """What `work()` returns, and its wall seconds, this process's CPU seconds (less the
    sampling's), the cluster's processes' CPU seconds and the model calls it made."""
    calls = server.requests()
    sampler.open()
    cpu = own_cpu()
    started = time.perf_counter()
    value = work()
    wall = time.perf_counter() - started
    cpu = own_cpu() - cpu
    cluster_cpu, ran, sampling = sampler.close()
    return value, {
        "n": n,
        "wall_s": wall,
        "driver_cpu_s": cpu - sampling,
        "cluster_cpu_s": cluster_cpu,
        "sampling_cpu_s": sampling,
        "processes": ran,
        "calls": server.requests() - calls,
    }


def checked(subtasks: list[Any], n: int, executor: str | None) -> int:
    """The nodes the subtasks ran on, once every one of the N is known to have run, and well."""
    assert len(subtasks) == n and all(s.ok for s in subtasks), [s.error for s in subtasks if not s.ok][:3]
    nodes = {s.worker.node_id for s in subtasks if s.worker is not None}
    assert not executor or all(s.worker is not None for s in subtasks), "a subtask ran in the driver"
    return len(nodes)


def one_run(spec: Path, n: int, server: Server, sampler: TreeSampler, executor: str | None = None) -> dict[str, Any]:
    """One run of `spec` (N subtasks) on `executor` (None: local)."""
    from orchestrator import RunOptions, load_spec, prepare_workflow, run_workflow_async

    workflow = prepare_workflow(load_spec(spec))
    options = RunOptions(write=False, checkpoint="memory", cache=False, ledger=False, executor=executor)
    outcome, figures = measure(lambda: asyncio.run(run_workflow_async(workflow, options)), n, server, sampler)
    assert outcome.exit_code == 0, outcome.result.status
    figures["nodes"] = checked(outcome.result.subtasks, n, executor)
    return figures


def one_sweep(
    specs: list[Path], n: int, server: Server, sampler: TreeSampler, executor: str | None = None
) -> dict[str, Any]:
    """One sweep of `specs` (N subtasks each), every run at once, on `executor` (None: local)."""
    from orchestrator import plan_sweep, run_sweep_async, sweep_options

    items = plan_sweep([str(spec) for spec in specs])
    fields = {"write": False, "checkpoint": "memory", "cache": False, "ledger": False, "executor": executor}
    options_for = sweep_options(specs[0].parent / "sweep-out", **fields)

    def work() -> Any:
        return asyncio.run(run_sweep_async(items, options_for, concurrency=len(items)))

    swept, figures = measure(work, n * len(specs), server, sampler)
    assert swept.exit_code == 0 and all(row.status == "ok" for row in swept.rows), [r.error for r in swept.rows]
    figures["runs"] = len(items)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", type=int, metavar="LATENCY_MS", help="run the model server only")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--big", type=int, default=1000, help="the growth run's subtasks (0: none)")
    parser.add_argument("--tiny", type=int, default=2, help="the fixed-cost run's subtasks")
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sweep", type=int, default=5, help="runs of N subtasks in the sweep (0: none)")
    parser.add_argument("--ray", action="store_true", help="also on a Ray cluster (inside `unshare -n`)")
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # errors only
    report: dict[str, Any] = {
        "n": args.n,
        "big": args.big,
        "tiny": args.tiny,
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
        # the rounds of the fan-out, then the aggregation's call (spec tasks: no planning call)
        "ideal_s": (math.ceil(args.n / args.concurrency) + 1) * args.latency_ms / 1000,
        "ideal_big_s": (math.ceil(args.big / args.concurrency) + 1) * args.latency_ms / 1000,
    }
    server = Server(args.latency_ms)
    sampler = TreeSampler(exclude=server.process.pid)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        sizes = {"n": args.n, "tiny": args.tiny, "big": args.big, "warm": 8}
        specs = {key: write_spec(Path(folder), server.url, size, args.concurrency) for key, size in sizes.items()}
        swept = []
        if args.sweep:
            for index in range(args.sweep):
                swept.append(Path(folder) / f"sweep-{index + 1}.yaml")
                swept[-1].write_text(specs["n"].read_text())
        try:
            one_run(specs["warm"], 8, server, sampler)  # imports and first use, paid once
            if args.ray:
                report.update(with_ray(args, server, sampler, specs, swept))
            else:
                report["local"] = [one_run(specs["n"], args.n, server, sampler) for _ in range(args.repeats)]
                report["local_tiny"] = one_run(specs["tiny"], args.tiny, server, sampler)
                if args.big:
                    report["local_big"] = one_run(specs["big"], args.big, server, sampler)
                if swept:
                    report["local_sweep"] = one_sweep(swept, args.n, server, sampler)
        finally:
            sampler.stop()
            server.close()
    report["seconds"] = time.perf_counter() - started
    print(json.dumps(report))


def with_ray(
    args: argparse.Namespace, server: Server, sampler: TreeSampler, specs: dict[str, Path], swept: list[Path]
) -> dict[str, Any]:
    """The cluster started once; local and Ray runs alternated, so a slow spell hits both."""
    import logging

    import ray
    from ray.cluster_utils import Cluster

    report: dict[str, Any] = {}
    started = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    cluster.add_node(num_cpus=1, labels={"zone": "a"})
    cluster.add_node(num_cpus=1, labels={"zone": "b"})
    cluster.wait_for_nodes()
    report["cluster_start_s"] = time.perf_counter() - started
    executor = f"ray:{cluster.address}"
    try:
        started = time.perf_counter()
        ray.init(address=cluster.address, log_to_driver=False, logging_level=logging.WARNING)
        report["connect_s"] = time.perf_counter() - started
        ray.shutdown()
        time.sleep(2)  # what the start set off has settled
        sampler.open()
        time.sleep(3)
        idle, ran, _ = sampler.close()
        report["idle_cluster_cpu_per_s"], report["idle_processes"] = idle / 3, ran
        local: list[dict[str, Any]] = []
        remote: list[dict[str, Any]] = []
        for _ in range(args.repeats):
            local.append(one_run(specs["n"], args.n, server, sampler))
            remote.append(one_run(specs["n"], args.n, server, sampler, executor))
        report["local"], report["ray"] = local, remote
        report["local_tiny"] = one_run(specs["tiny"], args.tiny, server, sampler)
        report["ray_tiny"] = one_run(specs["tiny"], args.tiny, server, sampler, executor)
        if args.big:
            report["local_big"] = one_run(specs["big"], args.big, server, sampler)
            report["ray_big"] = one_run(specs["big"], args.big, server, sampler, executor)
        if swept:
            report["local_sweep"] = one_sweep(swept, args.n, server, sampler)
            report["ray_sweep"] = one_sweep(swept, args.n, server, sampler, executor)
    finally:
        ray.shutdown()
        cluster.shutdown()
    return report


if __name__ == "__main__":
    main()
