"""The Ray executor (the optional extra `[ray]`, imported only when it is chosen).

One actor per node of the cluster (pinned to it, created on first use, reused by every subtask
and every run of this process: an embedded model loads once per node). A subtask goes to the
least busy live node whose labels match its placement; the actor rebuilds the run's context from
the shipped workflow (no recorder, no cache, no pause: the budget left is given to it) and runs
the same role work as a local run. What comes back (the call record, its usage, its egress) is
this run's: the budget is charged, the egress report names the node, the record says where it ran.
A node that dies mid-subtask loses nothing: the subtask goes to another matching node (a hop
`worker_lost`), and what had finished stays finished (the run's checkpoints are here).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
from dataclasses import dataclass
from typing import Any

from orchestrator.engine import CallRecord, Hop, RunContext, Subtask, subtask_files
from orchestrator.engine.state import CallError, Worker
from orchestrator.errors import PolicyError, ProviderError
from orchestrator.log import get_logger
from orchestrator.models.budget import Reservation
from orchestrator.runtime.executor import chain_countries, matches, needed_labels, run_needs, unplaceable
from orchestrator.workflow import Workflow

log = get_logger(__name__)
NAMESPACE = "sovereign-orchestrator"
SYSTEM_LABEL = "ray.io/"


@dataclass
class Node:
    node_id: str
    labels: dict[str, str]
    alive: bool = True
    busy: int = 0


class NodeWorker:
    """The actor on one node: runs role work for any run of the driver that created it. A run's
    context (its model pool and clients, its verifier with the checks' baselines) is built on the
    node's first subtask of that run and kept until the driver ends the run."""

    def __init__(self) -> None:
        self.runs: dict[str, tuple[RunContext, Workflow]] = {}

    async def run(self, job: dict[str, Any], shipped: list[Any]) -> dict[str, Any]:
        from orchestrator.engine import role_work
        from orchestrator.runtime._context import mcp_tools

        if job["run_id"] not in self.runs:
            workflow = await shipped[0]  # inside a list: Ray resolves it here, once per run, not every call
            self.runs[job["run_id"]] = (self._context(job, workflow), workflow)
        ctx, workflow = self.runs[job["run_id"]]
        budget = ctx.pool.budget  # what the driver's budget has left, on top of what this node spent
        budget.max_cost_usd = None if job["max_cost_usd"] is None else budget.spent_cost + job["max_cost_usd"]
        budget.max_tokens = None if job["max_tokens"] is None else budget.spent_tokens + job["max_tokens"]
        async with mcp_tools(workflow, ctx):
            record = await role_work(ctx, job["role"], Subtask.model_validate(job["subtask"]))
        return {
            "record": record.model_dump(mode="json"),
            "egress": ctx.pool.egress.drain() if ctx.pool.egress else {},
            "exhausted": budget.exhausted,
        }

    def _context(self, job: dict[str, Any], workflow: Workflow) -> RunContext:
        from orchestrator.engine import SilentProgress
        from orchestrator.models import Budget
        from orchestrator.models.timing import RunClock
        from orchestrator.runtime._context import build_context

        ctx = build_context(workflow, job["run_id"], SilentProgress(), None, None)
        ctx.pausable = False
        ctx.pool.budget = Budget()
        ctx.pool.clock = RunClock(job["origin"])
        return ctx

    def end_run(self, run_id: str) -> None:
        ctx, _ = self.runs.pop(run_id, (None, None))
        if ctx is not None and ctx.verifier is not None:
            ctx.verifier.close()


def shippable(workflow: Workflow) -> Workflow:
    """The workflow as a node receives it (a Python graph's object stays here: nodes run role work only)."""
    shipped = copy.copy(workflow)
    shipped.python_graph = None
    return shipped


ACTOR_CONCURRENCY = 256  # subtasks one node's actor runs at once (each run's own concurrency bounds its share)


class _Connection:
    """This process's connection to the cluster and its actors, shared by every run it makes
    (a sweep's runs at once): the last run to finish closes what the first one opened."""

    def __init__(self) -> None:
        self.users = 0
        self.started_ray = False
        self.actors: dict[str, Any] = {}  # node id -> its actor
        self.lock = threading.Lock()

    def acquire(self, address: str | None, source: str) -> None:
        import ray

        with self.lock:
            if not ray.is_initialized():
                try:
                    ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, logging_level=logging.WARNING)
                except (ConnectionError, RuntimeError, ValueError) as exc:
                    raise ProviderError(f"executor ray ({source}): cannot reach the cluster: {exc}") from None
                self.started_ray = True
            self.users += 1

    def release(self) -> None:
        import ray

        with self.lock:
            self.users -= 1
            if self.users > 0:
                return
            for actor in self.actors.values():
                ray.kill(actor, no_restart=True)
            self.actors.clear()
            if self.started_ray:
                ray.shutdown()
                self.started_ray = False

    def actor(self, node_id: str) -> Any:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        with self.lock:
            if node_id not in self.actors:
                strategy = NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)
                remote = ray.remote(NodeWorker).options(
                    scheduling_strategy=strategy, max_concurrency=ACTOR_CONCURRENCY, num_cpus=0, max_restarts=0
                )
                self.actors[node_id] = remote.remote()
            return self.actors[node_id]

    def end_run(self, run_id: str | None) -> None:
        """The nodes forget a finished run's context (fire and forget: a dead node has nothing to drop)."""
        with self.lock:
            actors = list(self.actors.values())
        for actor in actors if run_id else []:
            actor.end_run.remote(run_id)

    def forget(self, node_id: str) -> None:
        with self.lock:
            self.actors.pop(node_id, None)


_connection = _Connection()


class RayExecutor:
    """Role nodes' work on a Ray cluster, placed by the operator's placement rules."""

    def __init__(self, workflow: Workflow, address: str | None, source: str) -> None:
        self.workflow = workflow
        self.address = address
        self.source = source
        self.nodes: dict[str, Node] = {}
        self.shipped: Any = None
        self.connected = False
        self.run_id: str | None = None  # the run it serves (its nodes keep that run's context)

    # ---- start: connect, see the nodes, refuse what no node can run (exit 5, before any call)
    def start(self) -> None:
        _connection.acquire(self.address, self.source)
        self.connected = True
        try:
            self._check()
        except BaseException:
            self.close()
            raise

    def _check(self) -> None:
        import ray

        self.refresh()
        placement = self.workflow.operator.policy.placement
        where = self.workflow.operator.rule_source("placement") if placement is not None else ""
        refused = unplaceable(run_needs(self.workflow), [n.labels for n in self.live()], where)
        if refused:
            raise PolicyError("\n".join(refused))
        if not self.live():
            raise ProviderError(f"executor ray ({self.source}): the cluster has no node with a CPU to run work on")
        self.shipped = ray.put(shippable(self.workflow))
        log.info("executor.started", kind="ray", nodes=len(self.live()))

    def refresh(self) -> None:
        import ray

        for info in ray.nodes():  # type: ignore[no-untyped-call]
            node_id = str(info["NodeID"])
            labels = {k: str(v) for k, v in (info.get("Labels") or {}).items() if not k.startswith(SYSTEM_LABEL)}
            usable = bool(info.get("Alive")) and float((info.get("Resources") or {}).get("CPU", 0)) > 0
            node = self.nodes.setdefault(node_id, Node(node_id, labels))
            node.alive = node.alive and usable
            node.labels = labels

    def live(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.alive]

    def close(self) -> None:
        if self.connected:
            self.connected = False
            _connection.end_run(self.run_id)
            _connection.release()

    # ---- one subtask
    def needs(self, ctx: RunContext, role: str, subtask: Subtask) -> dict[str, str]:
        data_class = ctx.data_class_of([f.path for f in subtask_files(ctx, subtask)])
        countries = chain_countries(ctx.chain(role, data_class))
        return needed_labels(self.workflow.operator.policy.placement, data_class, countries)

    async def role_work(self, ctx: RunContext, role: str, subtask: Subtask) -> CallRecord:
        import ray.exceptions as errors

        lost = (errors.RayActorError, errors.WorkerCrashedError, errors.NodeDiedError, errors.ObjectLostError)
        self.run_id = ctx.run_id
        labels = self.needs(ctx, role, subtask)
        hops: list[Hop] = []
        while True:
            candidates = [n for n in self.live() if matches(n.labels, labels)]
            if not candidates:
                return _lost(subtask, role, hops, f"no live node has the labels {labels}")
            node = min(candidates, key=lambda n: (n.busy, n.node_id))
            budget = ctx.pool.budget
            job = {
                "run_id": ctx.run_id,
                "role": role,
                "subtask": subtask.model_dump(mode="json"),
                "origin": ctx.pool.clock.origin,
                "max_cost_usd": None if budget.max_cost_usd is None else budget.max_cost_usd - budget.spent_cost,
                "max_tokens": None if budget.max_tokens is None else budget.max_tokens - budget.spent_tokens,
            }
            ctx.progress.started(role, subtask.id, f"node {node.node_id[:8]}")
            node.busy += 1
            try:
                answer = await _connection.actor(node.node_id).run.remote(job, [self.shipped])
            except lost as exc:
                node.alive = False
                _connection.forget(node.node_id)
                await asyncio.to_thread(self.refresh)
                why = f"{type(exc).__name__}: the node left while it ran the subtask"
                log.warning("executor.node_lost", node=node.node_id, subtask=subtask.id, error=type(exc).__name__)
                hops.append(Hop(model=f"node {node.node_id}", error_kind="worker_lost", message=why))
                continue
            finally:
                node.busy -= 1
            return self._merge(ctx, answer, node, hops)

    def _merge(self, ctx: RunContext, answer: dict[str, Any], node: Node, hops: list[Hop]) -> CallRecord:
        record = CallRecord.model_validate(answer["record"])
        record.fallbacks = [*hops, *record.fallbacks]
        record.worker = Worker(node_id=node.node_id, labels=node.labels)
        ctx.pool.budget.settle(Reservation(0, 0.0), record.tokens_in + record.tokens_out, record.cost_usd or 0.0)
        if answer.get("exhausted") and not ctx.pool.budget.exhausted:
            ctx.pool.budget.exhausted = answer["exhausted"]
        if ctx.pool.egress is not None:
            ctx.pool.egress.merge(answer.get("egress") or {}, node.node_id)
        tokens = record.tokens_in + record.tokens_out
        ctx.progress.finished(record.role, record.id, record.status, record.model, record.latency_ms, tokens)
        return record


def _lost(subtask: Subtask, role: str, hops: list[Hop], why: str) -> CallRecord:
    return CallRecord(
        id=subtask.id,
        role=role,
        instruction=subtask.instruction,
        files=list(subtask.files),
        status="failed",
        fallbacks=hops,
        error=CallError(kind="worker_lost", message=f"the subtask could not run on the cluster: {why}"),
        node=role,
    )
