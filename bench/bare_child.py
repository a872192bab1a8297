"""One side of the bare-LangGraph comparison, in a process of its own (`bench/bare.py` runs it):

    python -m bench.bare_child --which ours|bare --mode memory|durable --n 200 --url URL

The same work on both sides: N subtasks, one structured call each over real HTTP (langchain-openai
against the loopback server of `bench/executor_child.py`, 100 ms answers), `max_concurrency` 32,
then one aggregation call that reads every answer. `ours` runs a spec from its file (loaded,
validated, prepared, run: everything a run costs); `bare` builds a LangGraph graph (plan -> one
`Send` per subtask -> merge) with a `ChatOpenAI(...).with_structured_output(schema,
method="json_schema")` and the same messages. Checkpoints: LangGraph's in-memory saver for both
(`memory`), or a fresh SQLite file with durability "sync" for both (`durable`).

A warm-up run (imports, first use), then `--runs` measured runs (wall, this process's CPU with
every thread, the calls the server answered), then one more run with the event loop probed
(`bench/loop_probe.py`: its 2 us a callback stay out of the CPU figures). Prints one JSON line."""

from __future__ import annotations

import argparse
import asyncio
import json
import operator
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

from bench import loop_probe
from bench.executor_child import own_cpu, write_spec

PROMPTS = Path(__file__).resolve().parent.parent / "prompts"
SYSTEM, ROLE = ((PROMPTS / name).read_text(encoding="utf-8") for name in ("system.md", "debug.md"))
SOURCE = "def add(a, b):\n    return a - b\n"
WARM = 8


def server_calls(url: str) -> int:
    from urllib.request import urlopen

    with urlopen(f"{url}/bench/requests") as answer:
        return int(json.loads(answer.read())["chat"])


# ---- ours: a spec file, as `orchestrator run` would take it
def ours(url: str, folder: Path, concurrency: int) -> Callable[[int, str], Awaitable[Any]]:
    async def run(n: int, checkpoint: str) -> Any:
        from orchestrator import RunOptions, load_spec, prepare_workflow, run_workflow_async

        spec = folder / f"spec-{n}.yaml"
        if not spec.exists():
            write_spec(folder, url, n, concurrency)
        options = RunOptions(write=False, checkpoint=checkpoint, cache=False, ledger=False)
        outcome = await run_workflow_async(prepare_workflow(load_spec(spec)), options)
        subtasks = outcome.result.subtasks
        assert outcome.exit_code == 0 and len(subtasks) == n and all(s.ok for s in subtasks), outcome.result.status
        return outcome

    return run


# ---- bare: LangGraph and langchain-openai, nothing else
class _State(TypedDict, total=False):
    items: list[int]
    results: Annotated[list[dict[str, Any]], operator.add]
    summary: dict[str, Any]


def bare(url: str, concurrency: int) -> Callable[[int, str], Awaitable[Any]]:
    from orchestrator.testing import answer_schema

    findings, aggregate = answer_schema("diagnosis"), answer_schema("aggregate")
    files = 'Repository files:\n\n<file path="app.py">\n' + SOURCE + "</file>"

    async def once(n: int, checkpoint: str) -> Any:
        from langchain_core.messages import HumanMessage, SystemMessage
        from langchain_openai import ChatOpenAI
        from langgraph.graph import END, START, StateGraph
        from langgraph.types import Send

        model = ChatOpenAI(
            model="m",
            base_url=f"{url}/v1",
            api_key="not-needed",  # type: ignore[arg-type]
            temperature=0.2,
            seed=42,
            timeout=120,
            max_retries=0,
            extra_body={"max_tokens": 1024},
        )
        worker_model = model.with_structured_output(findings, method="json_schema", strict=False)
        merge_model = model.with_structured_output(aggregate, method="json_schema", strict=False)

        async def worker(item: dict[str, int]) -> dict[str, Any]:
            user = f"Your subtask: subtask {item['i']}\n\n{ROLE}"
            messages = [SystemMessage(SYSTEM + "\n\n" + files), HumanMessage(user)]
            answer = await worker_model.ainvoke(messages)
            return {"results": [{"id": item["i"], "output": answer}]}

        async def merge(state: _State) -> dict[str, Any]:
            outputs = "\n".join(json.dumps(r) for r in state["results"])
            answer = await merge_model.ainvoke([SystemMessage(SYSTEM), HumanMessage(outputs)])
            return {"summary": answer}

        graph: Any = StateGraph(_State)
        graph.add_node("plan", lambda state: {})
        graph.add_node("worker", worker)
        graph.add_node("merge", merge)
        graph.add_edge(START, "plan")
        graph.add_conditional_edges("plan", lambda s: [Send("worker", {"i": i}) for i in s["items"]], ["worker"])
        graph.add_edge("worker", "merge")
        graph.add_edge("merge", END)
        config: Any = {"configurable": {"thread_id": "bench"}, "max_concurrency": concurrency}
        start = {"items": list(range(n)), "results": []}
        if checkpoint == "memory":
            from langgraph.checkpoint.memory import InMemorySaver

            final = await graph.compile(checkpointer=InMemorySaver()).ainvoke(start, config=config)
        else:
            import aiosqlite
            from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

            async with aiosqlite.connect(checkpoint) as conn:
                saver = AsyncSqliteSaver(conn)
                await saver.setup()
                final = await graph.compile(checkpointer=saver).ainvoke(start, config=config, durability="sync")
        assert len(final["results"]) == n and final["summary"]
        return final

    return once


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--which", choices=["ours", "bare"], required=True)
    parser.add_argument("--mode", choices=["memory", "durable"], required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    profile = "sample the measured runs with py-spy (raw stacks to this file); no loop probe"
    parser.add_argument("--profile", type=Path, metavar="FILE", help=profile)
    args = parser.parse_args()
    report = {"which": args.which, "mode": args.mode, "n": args.n, "nodes": args.n + 2}  # plan, N subtasks, aggregate
    with tempfile.TemporaryDirectory() as folder:
        report |= asyncio.run(measure(args, Path(folder)))
    report["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sys.stdout.write(json.dumps(report) + "\n")


def start_profiler(output: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling this process from now on (`pip install py-spy`; root or ptrace rights)."""
    command = ["py-spy", "record", "--pid", str(os.getpid()), "--rate", "250", "--format", "raw", "-o", str(output)]
    profiler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached
    return profiler


async def measure(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Every run of the process on one event loop (langchain-openai's default clients are cached
    per process and bound to the loop they first ran on)."""
    work = ours(args.url, folder, args.concurrency) if args.which == "ours" else bare(args.url, args.concurrency)
    counter = iter(range(1_000_000))

    def checkpoint() -> str:
        return "memory" if args.mode == "memory" else str(folder / f"run-{next(counter)}.sqlite")

    await work(WARM, checkpoint())
    profiler = start_profiler(args.profile) if args.profile else None
    runs = []
    for _ in range(args.runs):
        calls, cpu, started = server_calls(args.url), own_cpu(), time.perf_counter()
        await work(args.n, checkpoint())
        wall, cpu = time.perf_counter() - started, own_cpu() - cpu
        runs.append({"wall_s": wall, "cpu_s": cpu, "calls": server_calls(args.url) - calls})
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(timeout=120)
        return {"runs": runs, "blocked": None}
    blocked = None
    if loop_probe.available():
        with loop_probe.blocked_time() as probed:
            await work(args.n, checkpoint())
        blocked = {"seconds": probed.seconds, "callbacks": probed.callbacks, "longest_s": probed.longest_s}
    return {"runs": runs, "blocked": blocked}


if __name__ == "__main__":
    main()
