"""(1) Orchestration overhead: the coding-workflow graph against a bare LangGraph graph
(plan -> Send fan-out -> aggregate) making the same calls to the same zero-latency fake model;
and (6) their peak memory. `python -m bench.overhead --which orchestrator --n 1000` runs one
measurement in this process and prints it as JSON (the memory figures need a process each)."""

from __future__ import annotations

import argparse
import asyncio
import json
import operator
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from bench.fake import BenchModel, install

SPEC = """version: 1
name: bench
goal: Review the code.
workspace: ws
providers: {{bench: {{kind: bench}}}}
models: {{default: bench/{latency}}}
limits: {{concurrency: {concurrency}}}
fail_on: none
tasks:
{tasks}
"""


def write_spec(folder: Path, n: int, latency_ms: int = 0, concurrency: int = 1000) -> Path:
    (folder / "ws").mkdir(parents=True, exist_ok=True)
    (folder / "ws" / "app.py").write_text("def add(a, b):\n    return a - b\n")
    tasks = "".join(f"  - {{role: debug, instruction: subtask {i}}}\n" for i in range(n))
    spec = folder / "spec.yaml"
    spec.write_text(SPEC.format(latency=latency_ms, concurrency=concurrency, tasks=tasks))
    return spec


async def orchestrator_run(spec: Path, checkpoint: str) -> float:
    from orchestrator import RunOptions, load_spec, prepare_workflow, run_workflow_async

    workflow = prepare_workflow(load_spec(spec))
    started = time.perf_counter()
    options = RunOptions(write=False, checkpoint=checkpoint, cache=False, ledger=False)
    outcome = await run_workflow_async(workflow, options)
    elapsed = time.perf_counter() - started
    assert outcome.exit_code == 0 and all(s.ok for s in outcome.result.subtasks)
    return elapsed


class _State(TypedDict, total=False):
    items: list[int]
    results: Annotated[list[str], operator.add]
    summary: str


async def bare_run(n: int, checkpoint: str, latency_ms: int = 0, concurrency: int = 1000) -> float:
    """The same calls with nothing but LangGraph: a plan node, one Send per subtask, a worker
    that asks the model, an aggregate node that asks it once more."""
    from langchain_core.messages import HumanMessage
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Send

    from orchestrator.testing import answer_schema

    model = BenchModel(latency_s=latency_ms / 1000)
    findings, aggregate = answer_schema("diagnosis"), answer_schema("aggregate")

    async def worker(item: dict[str, int]) -> dict[str, Any]:
        answer = await model.ainvoke([HumanMessage(f"subtask {item['i']}")], schema=findings)
        return {"results": [answer.text]}

    async def merge(state: _State) -> dict[str, Any]:
        answer = await model.ainvoke([HumanMessage("\n".join(state["results"]))], schema=aggregate)
        return {"summary": answer.text}

    graph: Any = StateGraph(_State)
    graph.add_node("plan", lambda state: {})
    graph.add_node("worker", worker)
    graph.add_node("merge", merge)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", lambda s: [Send("worker", {"i": i}) for i in s["items"]], ["worker"])
    graph.add_edge("worker", "merge")
    graph.add_edge("merge", END)
    config: Any = {"configurable": {"thread_id": "bench"}, "max_concurrency": concurrency}
    started = time.perf_counter()
    if checkpoint == "off":
        final = await graph.compile().ainvoke({"items": list(range(n)), "results": []}, config=config)
    else:
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        async with aiosqlite.connect(checkpoint) as conn:
            saver = AsyncSqliteSaver(conn)
            await saver.setup()
            final = await graph.compile(checkpointer=saver).ainvoke(
                {"items": list(range(n)), "results": []}, config=config, durability="sync"
            )
    elapsed = time.perf_counter() - started
    assert len(final["results"]) == n
    return elapsed


def measure(which: str, n: int, checkpointed: bool, latency_ms: int = 0, concurrency: int = 1000) -> float:
    """Seconds for one run of N subtasks: the median of three runs after a warm-up run of the
    same size (imports and first-use costs are paid once per process, not per run)."""
    install()

    def once(size: int) -> float:
        with tempfile.TemporaryDirectory() as folder:
            checkpoint = str(Path(folder) / "checkpoints.sqlite") if checkpointed else "off"
            if which == "bare":
                return asyncio.run(bare_run(size, checkpoint, latency_ms, concurrency))
            spec = write_spec(Path(folder), size, latency_ms, concurrency)
            return asyncio.run(orchestrator_run(spec, checkpoint))

    once(n)
    return statistics.median(once(n) for _ in range(3))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--which", choices=["orchestrator", "bare"], required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--checkpointed", action="store_true")
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=1000)
    args = parser.parse_args()
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # errors only
    elapsed = measure(args.which, args.n, args.checkpointed, args.latency_ms, args.concurrency)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": elapsed, "peak_rss_mib": peak_kib / 1024}))


if __name__ == "__main__":
    main()
