"""A workflow run for an MCP call: on an event loop of its own in a worker thread (the server's
loop keeps answering other calls), its progress hook (the engine's `Progress`) turned into
events: one line per node started or finished, kept for `get_run` and handed to the server's
loop, where `run_workflow` sends them as MCP progress notifications in order. A cancelled call
(or `cancel_run`) stops its run as Ctrl-C does: what finished is checkpointed and `orchestrator
resume RUN_ID` finishes it.

Progress as MCP wants it (a value that increases with every notification, out of a total): the
total is the calls known so far plus one for the end of the run (verification and the outputs),
so it grows as the planner plans; the value is the calls finished, plus a fraction that grows
with every other notification (a call started, a note, a heartbeat) and never reaches the next
call, and at the end the total itself."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import printable

if TYPE_CHECKING:
    from orchestrator.runtime import RunOutcome
    from orchestrator.workflow import Workflow

KEPT_LINES = 200  # the newest progress lines a run keeps for get_run


@dataclass(frozen=True)
class Event:
    kind: str  # started | finished | note | done
    label: str  # node or node[key] ("" for a note)
    line: str  # what a person reads
    model: str = ""


class Tally:
    """What a sequence of events says: calls known, finished and in flight, and the progress."""

    def __init__(self) -> None:
        self.calls = 0
        self.done = 0
        self.since_finish = 0  # notifications since the last call finished
        self.over = False
        self.running: dict[str, tuple[str, float]] = {}  # label -> (model, since, monotonic)

    def see(self, event: Event) -> None:
        if event.kind == "started":
            if event.label not in self.running:  # (a fallback to the next model is the same call)
                self.calls += 1
                self.running[event.label] = (event.model, time.monotonic())
            else:
                self.running[event.label] = (event.model, self.running[event.label][1])
            self.since_finish += 1
        elif event.kind == "finished":
            if self.running.pop(event.label, None) is None:  # a call that never said it started
                self.calls += 1
            self.done += 1
            self.since_finish = 0
        elif event.kind == "done":
            self.over = True
        else:
            self.since_finish += 1

    def beat(self) -> None:
        """A heartbeat: one more notification while nothing else happened."""
        self.since_finish += 1

    @property
    def total(self) -> int:
        return self.calls + 1

    @property
    def value(self) -> float:
        if self.over:
            return float(self.total)
        n = self.since_finish
        return self.done + 0.9 * n / (n + 1)

    def in_flight(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        return [
            {"call": label, "model": model, "seconds": round(now - since, 1)}
            for label, (model, since) in self.running.items()
        ]

    def heartbeat_line(self, elapsed_s: float) -> str:
        calls = ", ".join(f"{c['call']} on {c['model']} ({c['seconds']:.0f}s)" for c in self.in_flight())
        return f"running {elapsed_s:.0f}s: " + (calls or "between calls")


class RunProgress:
    """The engine's progress hook for one run (called from the run's thread): each event kept
    (the tally, the newest lines) and handed to the listener, if any (the server's loop)."""

    def __init__(self, listener: Callable[[Event], None] | None = None) -> None:
        self.listener = listener
        self.tally = Tally()
        self.lines: deque[str] = deque(maxlen=KEPT_LINES)
        self.began = time.monotonic()
        self._lock = threading.Lock()

    def add(self, event: Event) -> None:
        with self._lock:
            self.tally.see(event)
            self.lines.append(event.line)
        if self.listener is not None:
            self.listener(event)

    def snapshot(self) -> dict[str, Any]:
        """Where the run is: calls finished out of those known, the calls in flight, the last lines."""
        with self._lock:
            return {
                "calls_finished": self.tally.done,
                "calls_known": self.tally.calls,
                "progress": round(self.tally.value, 3),
                "total": self.tally.total,
                "running": self.tally.in_flight(),
                "elapsed_s": round(time.monotonic() - self.began, 1),
                "lines": list(self.lines)[-20:],
            }

    # the engine's Progress protocol

    def started(self, node: str, key: str, model: str) -> None:
        label = _label(node, key)
        self.add(Event("started", label, f"started {label} on {printable(model)}", printable(model)))

    def finished(self, node: str, key: str, status: str, model: str | None, latency_ms: int, tokens: int) -> None:
        label = _label(node, key)
        took = f"{printable(model or '-')}, {latency_ms / 1000:.1f}s, {tokens} tokens"
        self.add(Event("finished", label, f"finished {label}: {printable(status)} ({took})"))

    def note(self, message: str) -> None:
        self.add(Event("note", "", f"note: {printable(message)}"))


def _label(node: str, key: str) -> str:
    return printable(node if key == node else f"{node}[{key}]")


def output_dir(workflow: Workflow, run_id: str, inline: bool) -> Path:
    """Each MCP run writes its outputs in a folder of its own: under the spec's `output.dir`, or
    for an inline call (no spec file), under the workspace's run data folder."""
    from orchestrator.runtime.checkpoints import run_data_dir

    loaded = workflow.loaded
    if inline:
        folder, _ = run_data_dir(loaded.workspace, workflow.operator.untrusted)
        return folder / "mcp-runs" / run_id
    return loaded.base_dir / loaded.spec.output.dir / run_id


class RunThread:
    """One run, called in a worker thread; `cancel` may be called from any thread."""

    def __init__(self, workflow: Workflow, inline: bool, progress: RunProgress) -> None:
        from orchestrator.runtime import RunOptions, new_run_id

        self.run_id = new_run_id()
        self.output_dir = output_dir(workflow, self.run_id, inline)
        self.workflow = workflow
        self.progress = progress
        self.options = RunOptions(output_dir=self.output_dir, run_id=self.run_id, progress=progress)
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._cancelled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[RunOutcome] | None = None

    def __call__(self) -> RunOutcome:
        try:
            return asyncio.run(self._main())
        finally:
            self.done.set()

    async def _main(self) -> RunOutcome:
        from orchestrator.runtime import run_workflow_async

        task = asyncio.create_task(run_workflow_async(self.workflow, self.options))
        with self._lock:
            self._loop, self._task = asyncio.get_running_loop(), task
            if self._cancelled:
                task.cancel()
        return await task

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # its loop has already closed: the run is over
                loop.call_soon_threadsafe(task.cancel)
