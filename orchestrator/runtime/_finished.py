"""The finished-node store: each node's update kept the moment the node returns, before the next
node starts. LangGraph saves a finished task's writes in the background; a SIGKILL in between lost
finished subtasks, and a stop by a signal could leave one out of the partial report. Keyed by
LangGraph's task id, which a resumed run reaches again.

Stored once: where this store sits beside the checkpoint (SQLite, or memory), the checkpointer
skips its own copy of a task's writes when the store holds them (`holds`), and a resumed run gets
them back from here (the node returns its kept update without a call). On disk, a writer thread
commits in batches to SQLite in WAL mode with `synchronous=NORMAL`: a node waits for its commit
(a SIGKILL after it loses nothing: the write is in the file, whatever the process does next)
without blocking the event loop, and no commit waits for the disk to flush (a power cut may lose
the last commits, as it may lose LangGraph's own)."""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from orchestrator.engine.state import CallRecord, PlanRecord
from orchestrator.errors import CheckpointError, storage_failure


class NodeUpdate(BaseModel):
    """What a node may return (the parts of the graph state our nodes write)."""

    model_config = ConfigDict(extra="forbid")

    results: list[CallRecord] | None = None
    outputs: dict[str, CallRecord] | None = None
    visits: dict[str, int] | None = None
    plan: PlanRecord | None = None
    aggregate: CallRecord | None = None

    def as_update(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in type(self).model_fields if getattr(self, key) is not None}


class KeptInMemory:
    """One run's finished nodes while the run lasts (checkpoints in memory): a dict, nothing
    serialised, for the partial report of a stopped run."""

    def __init__(self) -> None:
        self.kept: dict[str, dict[str, Any]] = {}

    def get(self, task_id: str) -> dict[str, Any] | None:
        return self.kept.get(task_id)

    async def put(self, task_id: str, node: str, update: dict[str, Any]) -> None:
        if update:
            self.kept[task_id] = update

    def holds(self, task_id: str) -> bool:
        return task_id in self.kept

    def updates(self) -> list[dict[str, Any]]:
        return list(self.kept.values())

    def close(self) -> None:
        pass


TABLE = "CREATE TABLE IF NOT EXISTS finished (task TEXT PRIMARY KEY, node TEXT, update_json TEXT)"
_Write = tuple[str, str, str, asyncio.AbstractEventLoop, "asyncio.Future[None]"]
_Flush = threading.Event


class FinishedStore:
    """One run's finished nodes in `path` (a file of the run's data folder)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = _connect(path)
            self.conn.execute(TABLE)
            self.conn.commit()
        except (OSError, sqlite3.Error) as exc:  # a folder that is a file, no permission: exit 3 before any call
            raise CheckpointError(f"cannot keep the run's finished nodes in {path}: {exc}") from None
        self.held: set[str] = set()
        self.queue: queue.SimpleQueue[_Write | _Flush | None] = queue.SimpleQueue()
        self.writer: threading.Thread | None = None

    def get(self, task_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT update_json FROM finished WHERE task = ?", (task_id,)).fetchone()
        if row is None:
            return None
        self.held.add(task_id)
        return NodeUpdate.model_validate_json(row[0]).as_update()

    async def put(self, task_id: str, node: str, update: dict[str, Any]) -> None:
        """Returns once the update is committed; cancelled, the commit still happens."""
        if not update:
            return
        # serialised here: the writer thread holds the GIL as little as it can (the loop waits on it)
        data = NodeUpdate.model_validate(update).model_dump_json(exclude_none=True)
        if self.writer is None:
            self.writer = threading.Thread(target=self._write, name="finished-store", daemon=True)
            self.writer.start()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self.queue.put((task_id, node, data, loop, done))
        await done
        self.held.add(task_id)  # only once it is kept: a failed commit leaves the task's writes to the checkpoint

    def holds(self, task_id: str) -> bool:
        return task_id in self.held

    def updates(self) -> list[dict[str, Any]]:
        self.flush()
        rows = self.conn.execute("SELECT update_json FROM finished ORDER BY rowid").fetchall()
        return [NodeUpdate.model_validate_json(row[0]).as_update() for row in rows]

    def flush(self) -> None:
        """Wait until every update put so far is committed."""
        if self.writer is not None and self.writer.is_alive():
            flushed = threading.Event()
            self.queue.put(flushed)
            flushed.wait()

    def close(self) -> None:
        """Every update committed, the files closed (closing twice is closing once)."""
        if self.writer is not None and self.writer.is_alive():
            self.queue.put(None)
            self.writer.join()
        self.conn.close()

    def _write(self) -> None:
        """The writer thread: whatever is queued, one transaction; then each waiting node is told."""
        conn: sqlite3.Connection | None = None
        opening: Exception | None = None
        try:
            conn = _connect(self.path)
        except (OSError, sqlite3.Error) as exc:
            opening = CheckpointError(f"cannot keep the run's finished nodes in {self.path}: {exc}")
        stopping = False
        while not stopping:
            batch = [self.queue.get()]
            while not self.queue.empty():
                batch.append(self.queue.get())
            writes = [item for item in batch if isinstance(item, tuple)]
            error = opening
            try:
                rows = [(task, node, data) for task, node, data, _, _ in writes]
                if conn is not None and rows:
                    with conn:
                        conn.executemany("INSERT OR REPLACE INTO finished VALUES (?, ?, ?)", rows)
            except (OSError, sqlite3.Error) as exc:  # a full disk: the nodes waiting on it fail (exit 3)
                # a storage failure stays itself: the run says what finished is checkpointed, and how to resume
                error = (
                    exc
                    if storage_failure(exc)
                    else CheckpointError(f"cannot keep the run's finished nodes in {self.path}: {exc}")
                )
            for _, _, _, loop, done in writes:
                if not loop.is_closed():
                    loop.call_soon_threadsafe(_settle, done, error)
            for item in batch:
                if isinstance(item, threading.Event):
                    item.set()
            stopping = any(item is None for item in batch)
        if conn is not None:
            conn.close()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA trusted_schema = OFF")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _settle(done: asyncio.Future[None], error: Exception | None) -> None:
    if done.done():  # the node was cancelled while it waited
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
