"""(5) The real model: the quickstart on the embedded SmolLM2, through its worker process.

- the share of wall time spent inside model calls: the union of the run's model spans (calls
  that overlap count once), over the run's wall time;
- tokens/s through the orchestrator against the worker's engine called directly in this
  process, and against llama-cpp-python's `create_chat_completion` called directly, like for like:
  the orchestrator's run with `limits.concurrency` 1 (one call at a time, as the direct calls
  go), and the direct calls sending the very requests that run made (replayed from its
  recording: messages, grammar, temperature, seed, max tokens), so the same tokens come out;
- the quickstart's wall time against the old path (one llama-cpp-python instance in the run's
  process, called from a worker thread: `bench/thread_model.py`)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
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


def recorded(recording: Path) -> list[dict[str, Any]]:
    """The recorded requests, in the order they were made, as chat messages and options."""
    calls = sorted(recording.rglob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    requests = []
    for path in calls:
        request = json.loads(path.read_text())["request"]
        roles = {"human": "user", "ai": "assistant"}
        requests.append(
            {
                "messages": [
                    {"role": roles.get(m["role"], m["role"]), "content": m["content"]} for m in request["messages"]
                ],
                "response_format": request["options"].get("response_format"),
                "max_tokens": request["params"]["max_output_tokens"],
                "temperature": request["params"]["temperature"],
                "seed": request["params"]["seed"],
                "repeat_penalty": 1.1,
            }
        )
    return requests


def llama_cpp_direct(requests: list[dict[str, Any]]) -> tuple[int, float]:
    """Every request straight into llama-cpp-python (a fresh instance): completion tokens, seconds."""
    from llama_cpp import Llama

    from orchestrator.testing import EMBEDDED_CONTEXT_WINDOW, embedded_weights

    llama = Llama(model_path=str(embedded_weights()), n_ctx=EMBEDDED_CONTEXT_WINDOW, n_threads=os.cpu_count() or 1,
                  n_batch=512, verbose=False, seed=42)  # fmt: skip
    tokens, seconds = 0, 0.0
    for request in requests:
        started = time.perf_counter()
        done: Any = llama.create_chat_completion(**request)
        seconds += time.perf_counter() - started
        tokens += done["usage"]["completion_tokens"]
    llama.close()
    return tokens, seconds


def engine_direct(
    requests: list[dict[str, Any]], parallel: int = 1, constraint: str = "llguidance"
) -> tuple[int, float]:
    """Every request into the worker's engine, run here on the main thread (a fresh engine)."""
    from orchestrator.testing import embedded_engine

    engine = embedded_engine(parallel, constraint)
    tokens, started = 0, time.perf_counter()
    if constraint == "llguidance":
        engine.words.tokenizer()  # built once per worker, at its first constrained call: not timed
        started = time.perf_counter()
    for ident, request in enumerate(requests):
        engine.submit({**request, "id": ident})
        while parallel == 1 and not engine.idle():
            tokens += sum(len(s.out) for s, _ in engine.step())
    while not engine.idle():
        tokens += sum(len(s.out) for s, _ in engine.step())
    seconds = time.perf_counter() - started
    engine.close()
    return tokens, seconds


def merged_seconds(intervals: list[tuple[float, float]]) -> float:
    """The time covered by (start, end) intervals, overlaps counted once."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def model_spans(calls: list[Any]) -> list[tuple[float, float]]:
    """Every model attempt of the run's calls, as (start, end) seconds on the run's clock."""
    spans = [span for call in calls if call.timing for span in call.timing.spans if span.kind == "model"]
    return [(span.started_ms / 1000, (span.started_ms + span.duration_ms) / 1000) for span in spans]


def measure(quick: bool) -> dict[str, float]:
    """New, one by one, engine directly, llama-cpp-python directly, old, old, llama-cpp-python,
    engine, new, in this process: the one-by-one run records the requests the direct calls send,
    and the symmetric order lets no side profit from a quiet spell of this shared machine."""
    from bench.thread_model import overrides
    from orchestrator import RunOptions, load_spec, prepare_workflow, run_workflow

    names = ("wall", "in_model", "tokens", "old_wall", "old_tokens", "serial_tokens", "serial_in_model",
             "engine_tokens", "engine_seconds", "llama_tokens", "llama_seconds")  # fmt: skip
    totals = dict.fromkeys(names, 0.0)
    with tempfile.TemporaryDirectory() as folder:
        spec = quick_spec(Path(folder)) if quick else REPO / "examples" / "quickstart" / "spec.yaml"
        recording = Path(folder) / "rec"

        def orchestrate(old: bool = False, serial: bool = False, record: Path | None = None) -> None:
            changes = [*(overrides() if old else ()), *(["limits.concurrency=1"] if serial else [])]
            workflow = prepare_workflow(load_spec(spec, changes))
            started = time.perf_counter()
            options = RunOptions(write=False, checkpoint="off", cache=False, record=record, ledger=False)
            outcome = run_workflow(workflow, options)
            wall = time.perf_counter() - started
            calls = [*outcome.result.subtasks, *([outcome.result.aggregate] if outcome.result.aggregate else [])]
            prefix = "old_" if old else "serial_" if serial else ""
            totals[prefix + "tokens"] += sum(c.tokens_out for c in calls)
            if not serial:
                totals[prefix + "wall"] += wall
            if not old:
                totals[prefix + "in_model"] += merged_seconds(model_spans(calls))

        def direct() -> None:
            for name, (tokens, seconds) in (("engine", engine_direct(requests)), ("llama", llama_cpp_direct(requests))):
                totals[name + "_tokens"] += tokens
                totals[name + "_seconds"] += seconds

        orchestrate()
        orchestrate(serial=True, record=recording)
        requests = recorded(recording / "calls")
        direct()
        orchestrate(old=True)
        orchestrate(old=True)
        direct()
        orchestrate()
    # the direct calls ran twice, the one-by-one run once (it takes four times a run's wall time)
    totals["serial_tokens"] *= 2
    totals["serial_in_model"] *= 2
    return totals


def run(quick: bool) -> dict[str, Any]:
    """Each repetition in a fresh process (a process reusing the model would reuse its cache)."""
    args = ["--quick"] if quick else []
    # an hour a process: a loaded machine took over 30 minutes for one
    samples = [child("bench.model", *args, timeout_s=3600) for _ in range(1 if quick else 2)]

    def med(key: str) -> float:
        return median([s[key] for s in samples]) / 2  # every figure was measured twice per sample

    def rate(tokens: str, seconds: str) -> float:
        return median([s[tokens] / s[seconds] for s in samples])

    # tokens/s like for like: the one-by-one run against the direct calls of its own requests
    through = rate("serial_tokens", "serial_in_model")
    engine, llama = rate("engine_tokens", "engine_seconds"), rate("llama_tokens", "llama_seconds")
    speed = median([(s["serial_tokens"] / s["serial_in_model"]) / (s["engine_tokens"] / s["engine_seconds"])
                    for s in samples])  # fmt: skip
    versus = median([(s["serial_tokens"] / s["serial_in_model"]) / (s["llama_tokens"] / s["llama_seconds"])
                     for s in samples])  # fmt: skip
    new_old = median([s["wall"] / s["old_wall"] for s in samples])
    return {
        "rows": [
            {
                "figure": "share of wall time inside model calls (overlapping calls counted once)",
                "ratio": round(med("in_model") / med("wall"), 3),
                "absolute": f"{med('in_model'):.1f} s of {med('wall'):.1f} s",
                "met": med("in_model") / med("wall") >= 0.95,
            },
            {
                "figure": "tokens/s through the orchestrator / the worker's engine called directly"
                " (both one call at a time, the same requests)",
                "ratio": round(speed, 3),
                "absolute": f"{through:.1f} vs {engine:.1f} tokens/s ({int(med('serial_tokens'))} vs "
                f"{int(med('engine_tokens'))} tokens)",
                "met": speed >= 0.95,
            },
            {
                "figure": "tokens/s through the orchestrator / llama-cpp-python create_chat_completion directly"
                " (both one call at a time, the same requests)",
                "ratio": round(versus, 3),
                "absolute": f"{through:.1f} vs {llama:.1f} tokens/s ({int(med('serial_tokens'))} vs "
                f"{int(med('llama_tokens'))} tokens)",
                "met": versus >= 0.95,
            },
            {
                "figure": "quickstart wall time, worker process / old in-process thread path",
                "ratio": round(new_old, 3),
                "absolute": f"{med('wall'):.1f} s vs {med('old_wall'):.1f} s ({int(med('tokens'))} vs "
                f"{int(med('old_tokens'))} tokens)",
                "met": new_old <= 0.5,
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
