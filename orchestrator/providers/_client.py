"""The parent's side of the embedded model's worker processes (`_worker.py`).

One worker per model file, started on first use (starting never waits: calls queue in its pipe
while it loads the model), reused by every later call of the process, stopped at exit. Answers
come back on a reader thread that resolves `concurrent.futures.Future`s, so any event loop (or a
plain thread) can wait for them without blocking.

- **Serving**: the worker says when it starts serving a call (admitted: prompt evaluation begins)
  and how it progresses; each call's `Serving` record (models/_serving.py) is kept up to date
  from the reader thread, so its caller can tell waiting from serving and keep its bounds.
- **Cancellation**: a cancelled call (its timeout fired, or the run stopped) tells the worker to
  stop that generation; when the worker has not confirmed within a grace (`CANCEL_GRACE_S`, or a
  few of its recent steps when a busy machine makes a step longer), it is killed (and the next
  call starts a fresh one).
- **Crashes**: a worker that dies (crash, SIGKILL, out of memory) fails its calls in flight with
  `ModelWorkerLost`, which `models/failure.py` classifies as `unavailable`: the chain retries it,
  and the retry gets a fresh worker.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from typing import IO, Any

from orchestrator.models._serving import Serving

CANCEL_GRACE_S = 5.0  # a worker so busy that it cannot stop a call in this long is killed...
CANCEL_STEPS = 4  # ...or in this many of its longest recent steps
# the most calls one worker decodes together; how many it does is measured (_width.py)
PARALLEL = 4
STOP_GRACE_S = 2.0


class ModelWorkerLost(ConnectionError):
    """The worker process stopped while calls were in flight (classified `unavailable`). When it
    was stopped for being slow to stop a call, not for being broken, it says so (`breaks`): the
    calls it took down do not cool the model down."""

    def __init__(self, why: str, breaks: bool = True) -> None:
        super().__init__(why)
        self.breaks = breaks


class ModelWorkerError(RuntimeError):
    """The worker refused or failed one call (it carries the worker's message)."""


class ModelWorker:
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.providers._worker", json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
        self.pid = self.process.pid
        self.pending: dict[int, Future[dict[str, Any]]] = {}
        self.serving: dict[int, Serving] = {}  # the calls in flight, as the worker reports them
        self.steps: collections.deque[float] = collections.deque(maxlen=50)  # its recent steps, s
        self.cancelled_at: dict[int, float] = {}
        self.stop_delays: collections.deque[float] = collections.deque(maxlen=100)  # cancel -> stopped, s
        self.kills = 0  # times it was killed for not stopping a cancelled call in time
        self.ready = threading.Event()
        self.lost: str | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        assert self.process.stdout is not None and self.process.stderr is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True, name="model-worker").start()
        threading.Thread(target=self._drain, args=(self.process.stderr,), daemon=True, name="model-worker-err").start()

    @property
    def alive(self) -> bool:
        return self.lost is None and self.process.poll() is None

    def submit(self, request: dict[str, Any], serving: Serving | None = None) -> tuple[int, Future[dict[str, Any]]]:
        """Queue a call; `serving` is kept up to date with its waiting and progress."""
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            ident = next(self._ids)
            if self.lost is not None:
                future.set_exception(ModelWorkerLost(self.lost))
                return ident, future
            self.pending[ident] = future
            if serving is not None:
                serving.reported = True
                self.serving[ident] = serving
        self._send({**request, "op": "generate", "id": ident})
        return ident, future

    def cancel(self, ident: int) -> None:
        """Stop a call's generation; kill the worker if it has not stopped within the grace."""
        with self._lock:
            if ident not in self.pending:
                return
            self.cancelled_at[ident] = time.perf_counter()
        self._send({"op": "cancel", "id": ident})
        timer = threading.Timer(self.grace_s(), self._enforce, args=(ident,))
        timer.daemon = True
        timer.start()

    def grace_s(self) -> float:
        """How long a cancelled call may take to stop: longer when the machine makes steps slow."""
        return max(CANCEL_GRACE_S, CANCEL_STEPS * max(self.steps, default=0.0))

    def _enforce(self, ident: int) -> None:
        with self._lock:
            late = ident in self.pending
            started = self.cancelled_at.pop(ident, None)
        if late and self.alive:
            self.kill(f"it did not stop a cancelled call within {self.grace_s():.1f} s", broken=False)
            if started is not None:  # killed: stopped now
                self.stop_delays.append(time.perf_counter() - started)
            self.kills += 1

    def kill(self, why: str, broken: bool = True) -> None:
        self._lose(f"the embedded model's worker (pid {self.pid}) was stopped: {why}", broken)
        if self.process.poll() is None:
            self.process.kill()

    def stop(self) -> None:
        """Close its stdin (it exits at once), then make sure."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._lose("the embedded model's worker was stopped")

    def _send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            with self._lock:
                assert self.process.stdin is not None
                self.process.stdin.write(data)
        except (OSError, ValueError) as exc:  # broken pipe or closed: the worker is gone
            self._lose(f"the embedded model's worker (pid {self.pid}) is gone: {exc}")

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            op = message.get("op")
            if op == "ready":
                self.ready.set()
                continue
            ident = int(message.get("id") or 0)
            if op in ("started", "progress"):
                self._progress(ident, message)
                continue
            with self._lock:
                future = self.pending.pop(ident, None)
                started = self.cancelled_at.pop(ident, None)
                serving = self.serving.pop(ident, None)
            if serving is not None:
                serving.end()
            if started is not None:
                self.stop_delays.append(time.perf_counter() - started)
            if future is None or future.done():
                continue
            if op == "done":
                future.set_result(message)
            elif op == "error":
                future.set_exception(ModelWorkerError(f"{message.get('type')}: {message.get('message')}"))
            elif op == "cancelled":
                future.cancel()
        code = self.process.wait()
        tail = " | ".join(self._stderr)[-600:]
        self._lose(
            f"the embedded model's worker (pid {self.pid}) exited with code {code}" + (f": {tail}" if tail else "")
        )

    def _progress(self, ident: int, message: dict[str, Any]) -> None:
        with self._lock:
            serving = self.serving.get(ident)
        if message.get("op") == "started":
            if serving is not None:
                serving.start()
            return
        self.steps.append(float(message.get("step_s") or 0.0))
        if serving is not None:
            serving.progress(int(message.get("tokens") or 0))

    def _drain(self, stream: IO[bytes]) -> None:
        for line in stream:
            text = line.decode("utf-8", errors="replace").strip()
            if text:
                self._stderr.append(text[:300])

    def _lose(self, why: str, broken: bool = True) -> None:
        with self._lock:
            if self.lost is None:
                self.lost = why
            waiting, self.pending = self.pending, {}
            self.serving = {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(ModelWorkerLost(why, breaks=broken))


_workers: dict[str, ModelWorker] = {}
_workers_lock = threading.Lock()


def worker_options(path: str, window: int, parallel: int = 1, constraint: str = "llguidance") -> dict[str, Any]:
    return {
        "path": path,
        "window": window,
        "parallel": parallel,
        "constraint": constraint,
        "threads": max(1, os.cpu_count() or 1),
    }


def worker_for(options: dict[str, Any]) -> ModelWorker:
    """The process's worker for these options, started (again) when there is none alive."""
    key = json.dumps(options, sort_keys=True)
    with _workers_lock:
        worker = _workers.get(key)
        if worker is None or not worker.alive:
            if not _workers:
                atexit.register(stop_workers)
            worker = _workers[key] = ModelWorker(options)
        return worker


def workers() -> list[ModelWorker]:
    with _workers_lock:
        return list(_workers.values())


def stop_workers() -> None:
    with _workers_lock:
        running = list(_workers.values())
        _workers.clear()
    for worker in running:
        worker.stop()
