"""The embedded model's worker process: `python -m orchestrator.providers._worker OPTIONS_JSON`.

One worker per model, started by the parent on first use (`_client.py`). It speaks JSON lines:
requests on stdin, answers on the descriptor that was its stdout (native libraries' own prints are
sent to stderr instead, so they cannot corrupt the protocol).

    parent -> worker  {"op": "generate", "id": 7, "messages": [...], "response_format": ..., ...}
                      {"op": "cancel", "id": 7}
    worker -> parent  {"op": "ready", "pid": ...}
                      {"op": "started", "id": 7}        admitted: its prompt evaluation begins
                      {"op": "progress", "id": 7, "tokens": 12, "prompt_left": 0, "step_s": 0.05}
                                                        a prompt chunk or tokens since the last one
                                                        (at most every PROGRESS_S per call)
                      {"op": "done", "id": 7, "text": ..., "finish_reason": ..., "prompt_tokens": ...}
                      {"op": "cancelled", "id": 7}      once the generation has stopped
                      {"op": "error", "id": 7, "type": "ValueError", "message": ...}

A reader thread takes requests off stdin into a queue and marks cancellations at once (the
engine checks them between steps and inside long prompt evaluations); the main thread runs the
engine. When stdin closes (the parent exited or stopped it) the worker exits at once.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import threading
import time
from typing import Any, TextIO

PROGRESS_S = 0.5  # the most often one call's progress is reported


def _reader(inbox: queue.Queue[dict[str, Any] | None], cancelled: set[int]) -> None:
    for line in sys.stdin:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if message.get("op") == "cancel":
            cancelled.add(int(message["id"]))
        inbox.put(message)
    os._exit(0)  # the parent is gone: nothing to answer to


def serve(options: dict[str, Any], out: TextIO) -> None:
    from orchestrator.providers._engine import Engine

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message, ensure_ascii=False) + "\n")
        out.flush()

    engine = Engine(
        options["path"],
        int(options["window"]),
        parallel=int(options.get("parallel", 1)),
        threads=int(options.get("threads") or os.cpu_count() or 1),
        constraint=str(options.get("constraint", "llguidance")),
        adapt_width=bool(options.get("adapt_width", True)),
    )
    engine.on_start = lambda ident: send({"op": "started", "id": ident})
    inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
    threading.Thread(target=_reader, args=(inbox, engine.cancelled), daemon=True, name="requests").start()
    send({"op": "ready", "pid": os.getpid()})
    answered: set[int] = set()
    reported: dict[int, float] = {}  # call -> when its progress was last reported
    while True:
        message = inbox.get() if engine.idle() else _next(inbox)
        while message is not None:
            _take(engine, message, send, answered)
            message = _next(inbox)
        try:
            ended = engine.step()
        except Exception as exc:  # a bug must fail the calls in flight, not hang them
            for sequence in [*engine.active, *engine.waiting]:
                send({"op": "error", "id": sequence.id, "type": type(exc).__name__, "message": str(exc)})
            raise
        _report(engine, send, reported, {sequence.id for sequence, _ in ended})
        for sequence, how in ended:
            answered.add(sequence.id)
            reported.pop(sequence.id, None)
            if how == "done":
                send({"op": "done", "id": sequence.id, **sequence.result()})
            elif how == "cancelled":
                send({"op": "cancelled", "id": sequence.id})
            else:
                send({"op": "error", "id": sequence.id, "type": "RuntimeError", "message": how})


def _report(engine: Any, send: Any, reported: dict[int, float], ended: set[int]) -> None:
    """Tell the parent which calls made progress (throttled)."""
    now = time.monotonic()
    for sequence in engine.active:
        due = now - reported.get(sequence.id, 0.0) >= PROGRESS_S
        if due and sequence.id in engine.moved and sequence.id not in ended:
            reported[sequence.id] = now
            engine.moved.discard(sequence.id)
            message = {"id": sequence.id, "tokens": len(sequence.out), "prompt_left": len(sequence.pending)}
            send({"op": "progress", **message, "step_s": round(engine.step_s, 4)})
    engine.moved.intersection_update(s.id for s in engine.active)


def _next(inbox: queue.Queue[dict[str, Any] | None]) -> dict[str, Any] | None:
    try:
        return inbox.get_nowait()
    except queue.Empty:
        return None


def _take(engine: Any, message: dict[str, Any], send: Any, answered: set[int]) -> None:
    if message.get("op") == "cancel":
        ident = int(message["id"])
        if ident in answered:  # answered before the cancellation arrived
            engine.cancelled.discard(ident)
        return
    if message.get("op") != "generate":
        return
    try:
        engine.submit(message)
    except Exception as exc:  # noqa: BLE001 - a request (its schema) the engine cannot take fails alone
        answered.add(int(message.get("id", -1)))
        send({"op": "error", "id": message.get("id"), "type": type(exc).__name__, "message": str(exc)})


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # llama.cpp and friends print to stdout: keep the protocol clean
    serve(json.loads(sys.argv[1]), out)


if __name__ == "__main__":
    main()
