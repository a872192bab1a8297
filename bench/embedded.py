"""(7) The embedded model's engine, in a process of its own (as its worker runs it), on the
quickstart's recorded requests (`tests/data/quickstart-replay`):

- constrained / free tokens/s: the same prompts (cached after a warm-up pass, so the figures are
  generation speed), answered free, with llguidance masks (the default), with llama.cpp's grammar
  checked on the sampled token first, and with the grammar applied to every candidate first
  (llama-cpp-python's way), in alternating order;
- batching: the quickstart's 4 subtasks decoded together (parallel 4) against one by one;
- cancellation: seconds from a call's timeout to its generation stopping, through the worker,
  against the old in-process thread path (which stops only when the generation ends)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from bench.child import child, median

REPO = Path(__file__).resolve().parent.parent
RECORDING = REPO / "tests" / "data" / "quickstart-replay" / "rec" / "calls"
METHODS = ("free", "llguidance", "grammar", "grammar-first")


def requests(quick: bool, subtasks: bool = False) -> list[dict[str, Any]]:
    """The recorded calls (`subtasks`: the four roles' calls, not the aggregation)."""
    from bench.model import recorded

    calls = sorted(recorded(RECORDING), key=lambda r: json.dumps(r, sort_keys=True))
    if subtasks:
        calls = [r for r in calls if "summary" not in json.dumps(r["response_format"])]
    return calls[:1] if quick else calls


def constrained(quick: bool) -> dict[str, float]:
    from orchestrator.testing import embedded_engine

    engine = embedded_engine()
    engine.words.tokenizer()
    calls = [{**r, "max_tokens": 20 if quick else 200} for r in requests(quick)]
    totals = dict.fromkeys([f"{m}_{k}" for m in METHODS for k in ("tokens", "seconds")], 0.0)
    idents = iter(range(1_000_000))

    def answer(method: str) -> tuple[int, float]:
        engine.method = "llguidance" if method == "free" else method
        tokens, started = 0, time.perf_counter()
        for call in calls:
            engine.submit({**call, "id": next(idents), **({"response_format": None} if method == "free" else {})})
            while not engine.idle():
                for sequence, _ in engine.step():
                    tokens += len(sequence.out)
                    if method != "free" and sequence.finish == "stop":  # whole answers parse
                        json.loads(sequence.result()["text"])
        return tokens, time.perf_counter() - started

    answer("llguidance")  # warm-up: every prompt is cached from here on
    for order in (METHODS, METHODS[::-1]):
        for method in order:
            tokens, seconds = answer(method)
            totals[f"{method}_tokens"] += tokens
            totals[f"{method}_seconds"] += seconds
    return totals


def batching(quick: bool) -> dict[str, float]:
    from bench.model import engine_direct

    subtasks = requests(quick, subtasks=True)[:4]
    totals = dict.fromkeys(("batched_tokens", "batched_seconds", "serial_tokens", "serial_seconds"), 0.0)
    for order in ((4, 1), (1, 4)):
        for parallel in order:
            tokens, seconds = engine_direct(subtasks, parallel)
            name = "batched" if parallel == 4 else "serial"
            totals[f"{name}_tokens"] += tokens
            totals[f"{name}_seconds"] += seconds
    return totals


def cancellation(quick: bool) -> dict[str, float]:
    from langchain_core.messages import HumanMessage

    from bench.thread_model import ThreadedEmbeddedModel
    from orchestrator.testing import embedded_chat_model, embedded_in_process, embedded_weights

    story = [HumanMessage(content="Tell a very long story about a ship and its crew.")]
    new = embedded_chat_model(max_tokens=4000)
    old = ThreadedEmbeddedModel(model_path=str(embedded_weights()), max_tokens=300)  # longer than the 1 s timeout

    async def timed_out(model: Any) -> float:
        try:
            async with asyncio.timeout(1.0):
                await model.ainvoke(story)
        except TimeoutError:
            return time.perf_counter()
        raise AssertionError("the call finished before its timeout")

    worker = new.worker()
    worker.ready.wait(120)
    new.invoke(story, max_tokens=2)  # the model is loaded and warm
    asyncio.run(timed_out(new))
    while worker.pending:
        time.sleep(0.01)
    stop = worker.stop_delays[-1] if worker.stop_delays else float("nan")
    _, lock = embedded_in_process()
    old.invoke(story, max_tokens=2)
    fired = asyncio.run(timed_out(old))
    with lock:  # the abandoned generation holds it until it ends
        old_stop = time.perf_counter() - fired
    return {"stop_s": stop, "old_stop_s": old_stop, "killed": float(worker.kills)}


def measure(quick: bool) -> dict[str, float]:
    return {**constrained(quick), **batching(quick), **cancellation(quick)}


def run(quick: bool) -> dict[str, Any]:
    from orchestrator.testing import EMBEDDED_PARALLEL

    samples = [child("bench.embedded", *(["--quick"] if quick else [])) for _ in range(1 if quick else 2)]

    def rate(name: str) -> float:
        return median([s[f"{name}_tokens"] / s[f"{name}_seconds"] for s in samples])

    free = rate("free")
    rows = []
    ways = {
        "llguidance": "llguidance token masks (the default)",
        "grammar": "llama.cpp grammar, sampled token checked first",
        "grammar-first": "llama.cpp grammar on every candidate (llama-cpp-python's way)",
    }
    for method, what in ways.items():
        ratio = median([(s[f"{method}_tokens"] / s[f"{method}_seconds"]) / (s["free_tokens"] / s["free_seconds"])
                        for s in samples])  # fmt: skip
        rows.append({"figure": f"constrained / free tokens/s: {what}", "ratio": round(ratio, 3),
                     "absolute": f"{rate(method):.1f} vs free {free:.1f} tokens/s",
                     "met": ratio >= 0.8 if method == "llguidance" else None})  # fmt: skip
    batched = median([(s["batched_tokens"] / s["batched_seconds"]) / (s["serial_tokens"] / s["serial_seconds"])
                      for s in samples])  # fmt: skip
    # met: the worker batches (EMBEDDED_PARALLEL > 1) exactly when batching measured above 1.2x here
    batches = EMBEDDED_PARALLEL > 1
    rows.append({"figure": "throughput of the 4 quickstart subtasks, batched / one by one", "ratio": round(batched, 3),
                 "absolute": f"{rate('batched'):.1f} vs {rate('serial'):.1f} tokens/s; the worker "
                 + (f"decodes up to {EMBEDDED_PARALLEL} calls together" if batches else "decodes one call at a time"),
                 "met": batches == (batched > 1.2)})  # fmt: skip
    stop, old_stop = median([s["stop_s"] for s in samples]), median([s["old_stop_s"] for s in samples])
    rows.append({"figure": "seconds from a call's timeout to its generation stopping", "ratio": round(stop, 3),
                 "absolute": f"{stop:.3f} s ({sum(s['killed'] for s in samples):.0f} of {len(samples)} by a kill);"
                 f" old thread path {old_stop:.1f} s (until its {60 if quick else 300} "
                 "tokens were done)", "met": stop <= 1.0})  # fmt: skip
    return {"rows": rows}


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(measure(parser.parse_args().quick)))
