"""(5) The real model: the quickstart on the embedded model. The share of wall time spent inside
model calls, and tokens/s through the orchestrator against llama-cpp-python called directly with
the very same requests (replayed from a recording of the run) and settings."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.child import child, median

REPO = Path(__file__).resolve().parent.parent


def quick_spec(folder: Path) -> Path:
    """The quickstart's project copied beside the spec (a workspace stays inside its spec's folder)."""
    project = shutil.copytree(REPO / "examples" / "quickstart" / "project", folder / "project")
    spec = folder / "spec.yaml"
    spec.write_text(
        "version: 1\nname: quick\ngoal: Find why test_new_store_is_empty fails.\n"
        f"workspace: {project}\ninclude: ['inventory/store.py']\n"
        "tasks: [{role: debug, instruction: Find the bug.}]\nfail_on: none\n"
    )
    return spec


def in_worker_thread(recording: Path) -> tuple[int, float]:
    """`direct` from a worker thread, where the orchestrator's event loop must call the model."""
    box: dict[str, tuple[int, float]] = {}
    worker = threading.Thread(target=lambda: box.setdefault("done", direct(recording)))
    worker.start()
    worker.join()
    return box["done"]


def direct(recording: Path) -> tuple[int, float]:
    """Replay every recorded request straight into llama-cpp-python: completion tokens, seconds."""
    from llama_cpp import Llama

    from orchestrator.testing import EMBEDDED_CONTEXT_WINDOW as CONTEXT_WINDOW
    from orchestrator.testing import embedded_weights as weights_path

    llama = Llama(model_path=str(weights_path()), n_ctx=CONTEXT_WINDOW, n_threads=os.cpu_count() or 1,
                  n_batch=512, verbose=False, seed=42)  # fmt: skip
    calls = sorted(recording.rglob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    tokens, seconds = 0, 0.0
    for path in calls:
        request = json.loads(path.read_text())["request"]
        messages = [{"role": {"human": "user", "ai": "assistant"}.get(m["role"], m["role"]), "content": m["content"]}
                    for m in request["messages"]]  # fmt: skip
        started = time.perf_counter()
        done: Any = llama.create_chat_completion(
            messages=messages,  # type: ignore[arg-type]
            response_format=request["options"].get("response_format"),
            max_tokens=request["params"]["max_output_tokens"],
            temperature=request["params"]["temperature"],
            seed=request["params"]["seed"],
            repeat_penalty=1.1,
        )
        seconds += time.perf_counter() - started
        tokens += done["usage"]["completion_tokens"]
    return tokens, seconds


def measure(quick: bool) -> dict[str, float]:
    """Orchestrator, direct, direct from a worker thread (twice), direct, orchestrator, in this
    process: the orchestrator's first run records the requests the replays send, and the
    symmetric order lets no side profit from a quiet spell of this shared machine."""
    from orchestrator import RunOptions, load_spec, prepare_workflow, run_workflow

    totals = dict.fromkeys(("wall", "in_model", "tokens", "direct_tokens", "direct_seconds", "thread_seconds"), 0.0)
    with tempfile.TemporaryDirectory() as folder:
        spec = quick_spec(Path(folder)) if quick else REPO / "examples" / "quickstart" / "spec.yaml"
        recording = Path(folder) / "rec"

        def orchestrate(record: Path | None) -> None:
            workflow = prepare_workflow(load_spec(spec))
            started = time.perf_counter()
            options = RunOptions(write=False, checkpoint="off", cache=False, record=record, ledger=False)
            outcome = run_workflow(workflow, options)
            totals["wall"] += time.perf_counter() - started
            calls = [*outcome.result.subtasks, *([outcome.result.aggregate] if outcome.result.aggregate else [])]
            totals["in_model"] += sum(c.latency_ms for c in calls) / 1000
            totals["tokens"] += sum(c.tokens_out for c in calls)

        orchestrate(recording)
        tokens, seconds = direct(recording / "calls")
        totals["thread_seconds"] += in_worker_thread(recording / "calls")[1]
        totals["thread_seconds"] += in_worker_thread(recording / "calls")[1]
        more_tokens, more_seconds = direct(recording / "calls")
        totals["direct_tokens"] = tokens + more_tokens
        totals["direct_seconds"] = seconds + more_seconds
        orchestrate(None)
    return totals


def run(quick: bool) -> dict[str, Any]:
    """Each repetition in a fresh process (a process reusing the model would reuse its cache)."""
    args = ["--quick"] if quick else []
    samples = [child("bench.model", *args) for _ in range(1 if quick else 3)]
    wall = median([s["wall"] for s in samples]) / 2  # two orchestrator runs a sample
    in_model = median([s["in_model"] for s in samples]) / 2
    tokens = int(median([s["tokens"] for s in samples]) / 2)
    through = median([s["tokens"] / s["in_model"] for s in samples])
    straight = median([s["direct_tokens"] / s["direct_seconds"] for s in samples])
    direct_tokens = int(median([s["direct_tokens"] for s in samples]) / 2)
    thread = median([s["direct_seconds"] / s["thread_seconds"] for s in samples])
    speed = median([(s["tokens"] / s["in_model"]) / (s["direct_tokens"] / s["direct_seconds"]) for s in samples])
    return {
        "rows": [
            {
                "figure": "share of wall time inside model calls",
                "ratio": round(in_model / wall, 3),
                "absolute": f"{in_model:.1f} s of {wall:.1f} s",
                "met": in_model / wall >= 0.95,
            },
            {
                "figure": "tokens/s through the orchestrator / llama-cpp-python directly",
                "ratio": round(speed, 3),
                "absolute": f"{through:.1f} vs {straight:.1f} tokens/s ({tokens} vs {direct_tokens} tokens)",
                "met": speed >= 0.95,
            },
            {
                "figure": "llama-cpp-python directly: tokens/s from a worker thread / from the main thread",
                "ratio": round(thread, 3),
                "absolute": "the same requests; the orchestrator calls the model from a worker thread",
                "met": None,
            },
        ]
    }


if __name__ == "__main__":
    import argparse

    import structlog

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    print(json.dumps(measure(parser.parse_args().quick)))
