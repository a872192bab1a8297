"""A workflow run for an MCP call: on an event loop of its own in a worker thread (the server's
loop keeps answering other calls), its progress hook (the engine's `Progress`) turned into one
line per node started or finished and handed to the server's loop, where the lines become MCP
progress notifications in order. A cancelled call stops its run as Ctrl-C does: what finished is
checkpointed and `orchestrator resume RUN_ID` finishes it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from pathlib import Path

from orchestrator.errors import printable
from orchestrator.runtime import RunOptions, RunOutcome, new_run_id, run_workflow_async
from orchestrator.runtime.checkpoints import run_data_dir
from orchestrator.workflow import Workflow

Post = Callable[[str], None]  # hands one line to the server's loop (thread-safe)


class ProgressLines:
    """The run's progress hook: each event as one printable line, posted to the server."""

    def __init__(self, post: Post) -> None:
        self.post = post

    def started(self, node: str, key: str, model: str) -> None:
        self.post(f"started {_label(node, key)} on {printable(model)}")

    def finished(self, node: str, key: str, status: str, model: str | None, latency_ms: int, tokens: int) -> None:
        took = f"{printable(model or '-')}, {latency_ms / 1000:.1f}s, {tokens} tokens"
        self.post(f"finished {_label(node, key)}: {printable(status)} ({took})")

    def note(self, message: str) -> None:
        self.post(f"note: {printable(message)}")


def _label(node: str, key: str) -> str:
    return printable(node if key == node else f"{node}[{key}]")


def output_dir(workflow: Workflow, run_id: str, inline: bool) -> Path:
    """Each MCP run writes its outputs in a folder of its own: under the spec's `output.dir`, or
    for an inline call (no spec file), under the workspace's run data folder."""
    loaded = workflow.loaded
    if inline:
        folder, _ = run_data_dir(loaded.workspace, workflow.operator.untrusted)
        return folder / "mcp-runs" / run_id
    return loaded.base_dir / loaded.spec.output.dir / run_id


class RunThread:
    """One run, called in a worker thread; `cancel` may be called from any thread."""

    def __init__(self, workflow: Workflow, inline: bool, post: Post) -> None:
        self.run_id = new_run_id()
        self.output_dir = output_dir(workflow, self.run_id, inline)
        self.workflow = workflow
        self.options = RunOptions(output_dir=self.output_dir, run_id=self.run_id, progress=ProgressLines(post))
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
        task = asyncio.create_task(run_workflow_async(self.workflow, self.options))
        with self._lock:
            self._loop, self._task = asyncio.get_running_loop(), task
            if self._cancelled:
                task.cancel()
        return await task

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # its loop has already closed: the run is over
                loop.call_soon_threadsafe(task.cancel)
